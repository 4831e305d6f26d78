"""The command line as a user meets it: start-up, the demo, progress lines, kill and resume."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from facepipe.demo import make_demo_clip
from media_checks import timing_report
from facepipe.io.media import probe
from facepipe.io.reader import VideoReader

FACEPIPE = [sys.executable, "-m", "facepipe"]


def run_cli(*args, env=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(FACEPIPE + [str(a) for a in args], capture_output=True, text=True, env=env, **kwargs)


def test_help_and_version_do_not_import_heavy_libraries():
    code = "import sys, facepipe.cli; print(sorted({'torch','av','mediapipe','cv2'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    res = run_cli("--version")
    assert res.returncode == 0 and "facepipe" in res.stdout


def test_demo_makes_and_edits_a_clip_with_identical_timing(tmp_path):
    res = run_cli("demo", "--out", tmp_path / "demo", "--workdir", tmp_path / "work")
    assert res.returncode == 0, res.stderr
    assert "timing identical" in res.stdout
    report = timing_report(str(tmp_path / "demo" / "astronaut.mp4"), str(tmp_path / "demo" / "astronaut.happy.mp4"))
    assert report.ok and report.audio_packets[0] > 0


def test_progress_is_plain_lines_when_not_a_terminal(tmp_path):
    clip = make_demo_clip(tmp_path / "c.mp4", seconds=1.0, size=64, audio=False)
    res = run_cli("edit", clip, "--emotion", "neutral", "--intensity", "0", "--workdir", tmp_path / "w")
    assert res.returncode == 0, res.stderr
    lines = [l for l in res.stdout.splitlines() if l.startswith("Progress: ")]
    assert lines and lines[-1].startswith("Progress: 100%")


def test_bad_edit_requests_fail_in_one_line_before_any_analysis(tmp_path):
    clip = make_demo_clip(tmp_path / "c.mp4", seconds=0.5, size=64, audio=False)
    cases = {
        ("--emotion", "joyful"): "unknown emotion",
        ("--emotion", "happy", "--intensity", "1.5"): "out of range",
        ("--emotion", "happy@0s-9s",): "past the clip's end",
        ("--emotion", "happy@0-8", "--emotion", "sad@5-10"): "overlap",
        ("--au", "AU99=0.5"): "unknown AU",
    }
    for args, words in cases.items():
        res = run_cli("edit", clip, *args, "--workdir", tmp_path / "w")
        assert res.returncode != 0, args
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr
        assert words in res.stderr, (args, res.stderr)
    assert not list(tmp_path.glob("c.*.mp4")) and not list(tmp_path.glob("c.*.json"))
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").rglob("track*")), "a bad request ran the analysis"


def _frames(path: Path) -> np.ndarray:
    return VideoReader(probe(path)).read(range(probe(path).frame_count)).numpy()


def test_killed_run_resumes_from_the_cache_and_gives_the_same_output(tmp_path):
    clip = make_demo_clip(tmp_path / "long.mp4", seconds=8, size=256, audio=True)
    work = tmp_path / "work"
    out = tmp_path / "out.mp4"
    args = FACEPIPE + ["edit", str(clip), "--emotion", "happy", "--appearance", "0", "--out", str(out),
                       "--workdir", str(work), "--chunk-mb", "8", "--progress", "plain"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    killed_at = None
    for line in proc.stdout:
        step = re.match(r"Progress: \d+% \(track (\d+)/(\d+)\)", line)  # the job's %, then the step's count
        if step and int(step[1]) >= 0.3 * int(step[2]):
            proc.kill()
            killed_at = line.strip()
            break
        assert time.time() < deadline
    proc.wait()
    assert killed_at, "the run finished before it could be killed"
    assert not out.exists() and not list(tmp_path.glob("*facepipe-tmp*"))

    resumed = subprocess.run(args, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    chunks_resumed = int(resumed.stdout.split(" chunks resumed")[0].rsplit(", ", 1)[1])
    assert chunks_resumed >= 1, resumed.stdout

    clean = tmp_path / "clean.mp4"
    fresh = subprocess.run(args[:9] + ["--out", str(clean), "--workdir", str(tmp_path / "fresh"), "--progress", "off"],
                           capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr
    assert timing_report(str(clip), str(out)).ok
    np.testing.assert_array_equal(_frames(out), _frames(clean))
