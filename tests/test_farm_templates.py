"""The farm job templates in examples/farm/: the Open Job Description template runs end to end
here with ``openjd run``; the OpenCue and Deadline submissions are checked for their shape."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from facepipe.io.media import probe

FARM = Path(__file__).resolve().parents[1] / "examples" / "farm"
TEMPLATE = FARM / "facepipe-edit.openjd.yaml"
REPO = Path(__file__).resolve().parents[1]


def openjd() -> str:
    exe = shutil.which("openjd") or shutil.which("openjd", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("openjd-cli is not installed (pip install 'facepipe[farm]')")
    return exe


def test_openjd_template_is_valid():
    res = subprocess.run([openjd(), "check", str(TEMPLATE)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_openjd_template_runs_prepare_chunks_and_assemble(tmp_path, shared_clips):
    """The whole job on frames 0-23 of a shared clip: prepare, 3 chunk tasks, assemble."""
    exe = openjd()
    clip = shared_clips / "lp_d0_grin.mp4"
    if not clip.exists():
        pytest.skip(f"{clip.name} is not in ../shared/data/clips")
    last = 23
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    params = {"Clip": clip, "ShotName": "sh010", "Emotion": "happy", "OutDir": tmp_path / "out", "WorkDir": tmp_path / "work",
              "LastFrame": last, "ChunkSize": 8, "Python": sys.executable}
    args = [a for k, v in params.items() for a in ("-p", f"{k}={v}")]
    res = subprocess.run([exe, "run", str(TEMPLATE), "--step", "assemble", "--run-dependencies", *args],
                         capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "openjd_progress: 100" in res.stdout
    out = tmp_path / "out" / "sh010.happy.mp4"
    assert len(list((tmp_path / "out" / "sh010.happy.frames").glob("sh010.*.png"))) == last + 1
    info, src = probe(out), probe(clip)
    assert info.frame_count == last + 1 and info.fps == src.fps
    assert [p - info.frame_pts[0] for p in info.frame_pts] == [p - src.frame_pts[0] for p in src.frame_pts[: last + 1]]


def rendered_openjd_commands(tmp_path, **params) -> list[str]:
    """The facepipe command lines the template's prepare and edit tasks run (``Python=echo``
    prints them instead), one per task."""
    params = {"Clip": tmp_path / "sh010.mov", "OutDir": tmp_path / "out", "WorkDir": tmp_path / "work", "LastFrame": 59,
              "ChunkSize": 30, "Python": "echo", **params}  # fmt: skip
    args = [a for k, v in params.items() for a in ("-p", f"{k}={v}")]
    res = subprocess.run([openjd(), "run", str(TEMPLATE), "--step", "edit", "--run-dependencies", *args],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return [line.split("\t")[-1] for line in res.stdout.splitlines() if "-m facepipe " in line]


def test_openjd_template_passes_the_deblur_flags_to_prepare_and_every_chunk(tmp_path):
    commands = rendered_openjd_commands(tmp_path, DeblurMethod="gan", DeblurWeights="/farm/deblur.pt", Deblur="deblur")
    prepare, chunks = commands[0], commands[1:]
    assert "facepipe prepare" in prepare and len(chunks) == 2 and all("facepipe edit" in c for c in chunks)
    for command in commands:  # the method and checkpoint key the tracking: prepare and the chunks must agree
        assert "--deblur-method gan --deblur-weights /farm/deblur.pt" in command
    assert all(" --deblur " in c for c in chunks)
    default = rendered_openjd_commands(tmp_path)
    assert all("--deblur-method none" in c for c in default) and all(" --no-deblur " in c for c in default[1:])


def test_opencue_outline_has_three_dependent_layers(monkeypatch, tmp_path):
    layers = []

    class Shell:
        def __init__(self, name, range, command, chunk=1):
            self.name, self.range, self.command, self.chunk, self.depends = name, range, command, chunk, []
            layers.append(self)

        def depend_on(self, other):
            self.depends.append(other.name)

    class Outline:
        def __init__(self, name, shot=None):
            self.name, self.layers = name, []

        def add_layer(self, layer):
            self.layers.append(layer)

    outline = types.ModuleType("outline")
    outline.Outline = Outline
    monkeypatch.setitem(sys.modules, "outline", outline)
    monkeypatch.setitem(sys.modules, "outline.modules", types.ModuleType("outline.modules"))
    shell = types.ModuleType("outline.modules.shell")
    shell.Shell = Shell
    monkeypatch.setitem(sys.modules, "outline.modules.shell", shell)
    spec = importlib.util.spec_from_file_location("opencue_facepipe", FARM / "opencue_facepipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    job = module.build(Path("/shots/sh010.mov"), "sad", 240, Path("/renders"), Path("/work"), 50, "python3")
    assert [l.name for l in job.layers] == ["prepare", "edit", "assemble"]
    prepare, edit, assemble = job.layers
    assert (edit.range, edit.chunk, edit.depends, assemble.depends) == ("1-240", 50, ["prepare"], ["edit"])
    assert "#FRAME_START#-#FRAME_END#" in edit.command and "--frame-base" in assemble.command
    assert "--deblur-method none" in " ".join(prepare.command) and "--no-deblur" in edit.command
    layers.clear()
    job = module.build(Path("/shots/sh010.mov"), "sad", 240, Path("/renders"), Path("/work"), 50, "python3",
                       "gan", "/farm/deblur.pt", True)  # fmt: skip
    prepare, edit, _ = job.layers
    flags = "--deblur-method gan --deblur-weights /farm/deblur.pt"
    assert flags in " ".join(prepare.command) and flags in " ".join(edit.command) and "--deblur" in edit.command


def test_deadline_submission_is_three_dependent_commandline_jobs():
    script = (FARM / "deadline" / "submit.sh").read_text()
    assert "-SubmitMultipleJobs -dependent" in script
    for step in ("prepare", "edit", "assemble"):
        job = dict(l.split("=", 1) for l in (FARM / "deadline" / f"{step}.job.txt").read_text().splitlines() if "=" in l)
        plugin = dict(l.split("=", 1) for l in (FARM / "deadline" / f"{step}.plugin.txt").read_text().splitlines() if "=" in l)
        assert job["Plugin"] == "CommandLine" and f"-m facepipe {step}" in plugin["Arguments"]
        assert "--progress-format deadline" in plugin["Arguments"]
        assert f"{step}.job.txt {step}.plugin.txt" in script
    edit = (FARM / "deadline" / "edit.plugin.txt").read_text()
    assert "--frames <STARTFRAME>-<ENDFRAME>" in edit
    prepare = (FARM / "deadline" / "prepare.plugin.txt").read_text()
    method = re.search(r"--deblur-method \S+", prepare)
    assert method and method.group(0) in edit  # prepare and the chunks key the same tracking
