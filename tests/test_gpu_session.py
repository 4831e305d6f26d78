"""benchmarks/gpu_session: the prepared GPU session's checks, run here on the CPU (the scripts
themselves are dry-run by hand: benchmarks/README.md, "GPU session")."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from facepipe import api
from facepipe.errors import FacepipeError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_session"))
import session  # noqa: E402


def test_check_cache_passes_a_prepared_clip_and_names_an_unprepared_one(make_clip, tmp_path):
    clip = make_clip("shot.mp4", frames=6)
    with pytest.raises(FacepipeError, match="shot.mp4"):
        session.check_cache([clip], tmp_path / "empty")
    api.prepare(clip, workdir=tmp_path / "work", progress="off", log=lambda *a, **k: None)
    assert session.check_cache([clip], tmp_path / "work") == [{"clip": "shot.mp4", "frames": 6, "fitted": 0}]


def test_imports_blocked_restores_modules():
    before = sys.modules.get("mediapipe")
    with session.imports_blocked():
        with pytest.raises(ImportError):
            import mediapipe  # noqa: F401
    assert sys.modules.get("mediapipe") is before


def test_inference_speed_reports_each_batch():
    report = session.inference_speed("cpu", repeats=1, batches=(1,))
    assert report["config"] == {"size": 256, "width": 64, "levels": 4}
    assert not report["autocast_fp16"]
    assert [r["batch"] for r in report["rows"]] == [1] and report["rows"][0]["crops_per_s"] > 0


def test_edits_run_from_the_cache_and_come_back_as_a_tar_per_clip(tmp_path, monkeypatch, one_torch_thread):
    """The device step: a clip whose analysis and renderer are in the work dir is edited to each
    emotion with the tracking backends blocked (as on the GPU machine); one tar holds the edits
    and their reports."""
    import tarfile

    from facepipe.demo import make_demo_clip

    work = tmp_path / "work"
    clip = make_demo_clip(tmp_path / "astro.mp4", seconds=0.4, size=160, audio=False)
    api.train_renderer(clip, actor="astro", steps=1, size=32, width=8, workdir=work, progress="off", log=lambda m: None)
    monkeypatch.setenv("FACEPIPE_WORKDIR", str(work))
    (tar,) = session.neural_edits([clip], tmp_path / "out", "cpu")
    assert tar.name == "edits_astro.tar"
    with tarfile.open(tar) as t:
        names = sorted(t.getnames())
    assert names == sorted(f"astro.{e}.neural_gpu{suffix}" for e in session.EMOTIONS for suffix in (".mkv", ".report.json"))


def test_the_edit_clips_are_among_the_carried_clips():
    """run.sh trains the edits' renderers on the carried clips (clips/NAME.mp4) they were cut from."""
    assert {c.name for c in session.default_clips()} >= set(session.EDIT_CLIPS)
