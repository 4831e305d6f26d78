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
