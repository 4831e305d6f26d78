"""Progress for farm managers: one monotonic 0..100 over a job, in each manager's line format."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from facepipe.demo import make_demo_clip
from facepipe.pipeline.progress import FORMATS, JobProgress, job_progress, make_progress

LINE = {
    "plain": re.compile(r"^Progress: (\d+)% \(\w+ \d+/\d+\)$"),
    "deadline": re.compile(r"^Progress: (\d+)%$"),
    "openjd": re.compile(r"^openjd_progress: (\d+)$"),
    "tractor": re.compile(r"^ALF_PROGRESS (\d+)%$"),
}


def run_job(fmt: str, steps: dict, opened: list[tuple[str, int]]) -> list[str]:
    out = io.StringIO()
    job = JobProgress(steps, fmt, stream=out)
    for desc, total in opened:
        bar = make_progress(total, desc, job)
        for _ in range(total):
            bar.update()
        bar.close()
    job.finish()
    return out.getvalue().splitlines()


def percentages(lines: list[str], fmt: str) -> list[int]:
    return [int(m[1]) for m in map(LINE[fmt].match, lines) if m]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_one_monotonic_percentage_over_the_whole_job(fmt):
    lines = run_job(fmt, {"track": 3, "fit3d": 1, "edit": 6}, [("track", 50), ("fit3d", 20), ("edit", 40)])
    pct = percentages(lines, fmt)
    assert pct == sorted(set(pct)) and pct[0] <= 2 and pct[-1] == 100
    assert all(LINE[fmt].match(l) or l.startswith("openjd_status: ") for l in lines), lines
    if fmt == "openjd":
        assert [l for l in lines if l.startswith("openjd_status")] == [f"openjd_status: {s}" for s in ("track", "fit3d", "edit")]


def test_cached_steps_drop_out_and_unknown_steps_do_not_move_the_job():
    lines = run_job("plain", {"track": 3, "fit3d": 1, "edit": 6}, [("scan", 10), ("edit", 10)])
    assert percentages(lines, "plain") == list(range(10, 101, 10))  # the chunk counts over its render alone
    # a step that ran part way, then the next: still monotonic, 100 at the end
    lines = run_job("deadline", {"track": 1, "edit": 1}, [("track", 4), ("track", 4), ("edit", 2)])
    pct = percentages(lines, "deadline")
    assert pct == sorted(set(pct)) and pct[-1] == 100


def test_modes_bar_and_off_stay_per_step_and_a_job_passes_through():
    assert job_progress("edit", "off", "openjd") == "off"
    assert job_progress("edit", "bar", "plain") == "bar"
    job = job_progress("edit", "plain", "tractor")
    assert isinstance(job, JobProgress) and job_progress("edit", job) is job
    assert isinstance(job_progress("edit", "auto", "openjd"), JobProgress)  # a farm format means lines
    with pytest.raises(ValueError):
        job_progress("edit", "plain", "alfred")


def test_cli_prints_openjd_progress_for_the_whole_edit(tmp_path):
    clip = make_demo_clip(tmp_path / "c.mp4", seconds=0.5, size=64, audio=False)
    res = subprocess.run([sys.executable, "-m", "facepipe", "edit", str(clip), "--emotion", "neutral", "--intensity", "0",
                          "--workdir", str(tmp_path / "w"), "--progress-format", "openjd"],
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = [l for l in res.stdout.splitlines() if l.startswith("openjd_")]
    pct = percentages(lines, "openjd")
    assert pct and pct == sorted(set(pct)) and pct[-1] == 100
    assert not [l for l in res.stdout.splitlines() if l.startswith("Progress:")]
