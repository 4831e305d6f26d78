"""Every script in examples/ runs on a short clip and does what it says."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from facepipe.demo import make_demo_clip
from facepipe.io.media import probe

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_demo_clip(tmp_path_factory.mktemp("examples") / "astro.mp4", seconds=0.8, size=192, audio=True)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {**os.environ, "FACEPIPE_WORKDIR": str(tmp_path_factory.mktemp("work"))}


def run(script: str, *args, env) -> str:
    res = subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], capture_output=True, text=True,
                         env=env, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_every_example_is_tested():
    tested = {"edit_clip.py", "keyframed_edit.py", "preview_range.py", "batch_folder.py"}
    assert {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")} == tested


def test_edit_clip(clip, env, tmp_path):
    out = run("edit_clip.py", clip, "--emotion", "happy", "--out", tmp_path, env=env)
    assert "mode edit" in out and "report:" in out
    assert probe(tmp_path / "astro.happy.mp4").frame_count == probe(clip).frame_count


def test_keyframed_edit(clip, env, tmp_path):
    out = run("keyframed_edit.py", clip, "--out", tmp_path, env=env)
    assert "happy: frames 0-" in out and "sad: frames" in out
    assert (tmp_path / "astro.keyframes.json").exists() and (tmp_path / "astro.happy-sad.mp4").exists()


def test_preview_range(clip, env, tmp_path):
    out = run("preview_range.py", clip, "--frames", "2-9", "--out", tmp_path, env=env)
    assert "real time" in out
    info = probe(tmp_path / "astro.surprised.preview.mp4")
    assert info.frame_count == 8 and info.width == 2 * 96


def test_batch_folder_skips_what_is_done(clip, env, tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(clip, folder / name)
    (folder / "notes.txt").write_text("not a clip")
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.sad.mp4").write_text("finished earlier")
    run("batch_folder.py", folder, "--emotion", "sad", "--frames", "0-5", "--out", out, env=env)
    rows = {r["clip"]: r for r in csv.DictReader(open(out / "batch.csv"))}
    assert rows["a.mp4"]["status"] == "edit" and rows["a.mp4"]["frames"] == "6"
    assert rows["b.mp4"]["status"].startswith("skipped") and (out / "b.sad.mp4").read_text() == "finished earlier"
