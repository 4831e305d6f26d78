"""``facepipe farm edit``: many shots on Dask workers give the frames single local runs give.

The fast tests cover the batch's planning (shot lists, chunk ranges, refusals); the slow ones
run a LocalCluster of two worker processes on two short demo clips, once plainly and once with
a worker killed in the middle of the job.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from facepipe import api
from facepipe.demo import make_demo_clip
from facepipe.errors import FacepipeError, OutputExistsError, RequestError
from facepipe.farm.engine import FarmSettings, chunk_ranges, plan_batch, run_farm
from facepipe.farm.shots import Shot, read_shot_list, shots_from_args
from facepipe.io.media import probe
from facepipe.io.sequence import read_image, sequence_frames
from media_checks import timing_report

EDIT = {"appearance": 0.0}


def test_chunk_ranges_cover_the_shot_in_farm_syntax():
    assert chunk_ranges(np.arange(25), 0, 10) == ["0-9", "10-19", "20-24"]
    assert chunk_ranges(np.arange(5, 12), 1001, 4) == ["1006-1009", "1010-1012"]


def test_shot_lists_from_csv_json_and_timelines(make_clip, tmp_path):
    clip = make_clip("sh010.mp4", frames=30, timecode="01:00:00:00")
    (tmp_path / "list.csv").write_text("clip,emotion,frames\nsh010.mp4,sad,0-9\nsh010.mp4,,\n")
    shots = read_shot_list(tmp_path / "list.csv", "happy")
    assert shots == [Shot(clip, "sad", "0-9"), Shot(clip, "happy", None)]
    (tmp_path / "list.json").write_text(json.dumps([{"clip": str(clip), "emotion": "angry", "name": "a"}, "sh010.mp4"]))
    assert read_shot_list(tmp_path / "list.json", "sad") == [Shot(clip, "angry", None, "a"), Shot(clip, "sad")]
    with pytest.raises(RequestError, match="no emotion"):
        read_shot_list(tmp_path / "list.json", None)
    otio = pytest.importorskip("opentimelineio", reason="timelines need the farm extra (opentimelineio)")
    timeline = otio.schema.Timeline(tracks=[otio.schema.Track(children=[otio.schema.Clip(
        name="sh010", media_reference=otio.schema.ExternalReference(target_url=str(clip)),
        source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(5, 25), otio.opentime.RationalTime(10, 25)))])])
    otio.adapters.write_to_file(timeline, str(tmp_path / "cut.otio"))
    assert read_shot_list(tmp_path / "cut.otio", "happy") == [Shot(clip, "happy", "5-14", "sh010")]
    if "cmx_3600" in otio.adapters.available_adapter_names():
        (tmp_path / "cut.edl").write_text("TITLE: cut\nFCM: NON-DROP FRAME\n\n"
                                          "001  AX       V     C        01:00:00:05 01:00:00:15 00:00:00:00 00:00:00:10\n"
                                          "* FROM CLIP NAME: sh010\n* FROM CLIP: sh010.mp4\n")
        assert read_shot_list(tmp_path / "cut.edl", "sad") == [Shot(clip, "sad", "90005-90014", "sh010", "timecode")]


def test_a_batch_is_refused_before_any_work(make_clip, tmp_path):
    clip = make_clip("sh010.mp4", frames=10)
    settings = FarmSettings(out_dir=tmp_path / "out")
    with pytest.raises(RequestError, match="unknown emotion"):
        plan_batch(shots_from_args([clip], "joyful"), settings)
    with pytest.raises(RequestError, match="two shots would write"):
        plan_batch(shots_from_args([clip, clip], "happy"), settings)
    with pytest.raises(RequestError, match="outside the clip"):
        plan_batch(shots_from_args([clip], "happy", "5-20"), settings)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sh010.happy.mp4").write_bytes(b"x")
    with pytest.raises(OutputExistsError):
        plan_batch(shots_from_args([clip], "happy"), settings)
    plans = plan_batch(shots_from_args([clip], "happy", "2-8"), FarmSettings(out_dir=tmp_path / "out", chunk=3, force=True))
    assert plans[0].ranges == ["2-4", "5-7", "8-8"] and plans[0].pattern.parent.is_dir()


def test_a_shot_s_prepare_runs_the_deblur_method_its_chunks_ask_for(make_clip, tmp_path):
    from facepipe.farm.engine import submit_shot
    from facepipe.farm.tasks import chunk_task, prepare_task

    class Recorder:  # a Dask client that records what it is asked to run
        def __init__(self):
            self.calls = []

        def submit(self, fn, *args, **kwargs):
            self.calls.append((fn, args))
            return len(self.calls)

    clip = make_clip("sh010.mp4", frames=10)
    edit = {"deblur_method": "classical", "deblur": True, "appearance": 0.0}
    settings = FarmSettings(out_dir=tmp_path / "out", chunk=5, edit=edit)
    client = Recorder()
    submit_shot(client, plan_batch(shots_from_args([clip], "happy"), settings)[0], settings, str(tmp_path / "w"), "t")
    prepared = [args for fn, args in client.calls if fn is prepare_task]
    chunks = [args for fn, args in client.calls if fn is chunk_task]
    assert prepared[0][3] == {"deblur_method": "classical"}  # what keys the tracking, not what renders
    assert all(args[4]["deblur_method"] == "classical" and args[4]["deblur"] for args in chunks) and len(chunks) == 2


def test_without_dask_the_error_says_what_to_install(make_clip, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    from facepipe.farm.engine import open_client

    with pytest.raises(FacepipeError, match=r"pip install 'facepipe\[farm\]'"):
        with open_client(None, 1, 1):
            pass


# --- LocalCluster runs -------------------------------------------------------------------------

CHUNK = 10


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    pytest.importorskip("distributed", reason="facepipe farm needs the farm extra (dask distributed)")
    folder = tmp_path_factory.mktemp("farm")
    clips = [make_demo_clip(folder / "sh010.mp4", seconds=1.0, size=256, audio=True),
             make_demo_clip(folder / "sh020.mp4", seconds=0.8, fps=Fraction(24000, 1001), size=256, audio=True)]
    work = folder / "work"
    reference = {}
    for clip in clips:  # local single runs of the same chunks, one after the other
        pattern = folder / "local" / f"{clip.stem}.%06d.png"
        pattern.parent.mkdir(exist_ok=True)
        for frames in chunk_ranges(np.arange(probe(clip).frame_count), 0, CHUNK):
            api.edit(clip, emotion="happy", frames=frames, out=pattern, force=True, workdir=work, progress="off",
                     log=lambda m: None, **EDIT)
        reference[clip.stem] = pixels(pattern)
    return {"clips": clips, "work": work, "folder": folder, "reference": reference}


def pixels(pattern) -> dict[int, np.ndarray]:
    return {n: read_image(p) for n, p in sequence_frames(pattern).items()}


def check_output(result, batch) -> None:
    assert [s.shot.label for s in result.shots] == ["sh010", "sh020"]
    for shot in result.shots:
        clip = shot.shot.clip
        frames = pixels(shot.output.parent / f"{clip.stem}.happy.frames" / f"{clip.stem}.%06d.png")
        expected = batch["reference"][clip.stem]
        assert frames.keys() == expected.keys()
        for n in expected:
            np.testing.assert_array_equal(frames[n], expected[n], err_msg=f"{clip.stem} frame {n}")
        timing = timing_report(str(clip), str(shot.output))
        assert timing.ok and shot.frames == probe(clip).frame_count, timing
        # analysis ran once per shot (its prepare task); no chunk tracked or fitted again
        assert all(not {"track", "fit3d", "repeats"} & set(c["ran"]) for c in shot.chunks)


@pytest.mark.slow
def test_two_workers_give_the_frames_of_local_runs(batch, tmp_path):
    settings = FarmSettings(out_dir=tmp_path / "out", chunk=CHUNK, workdir=batch["work"], edit=dict(EDIT))
    result = run_farm(shots_from_args(batch["clips"], "happy"), settings, workers=2)
    assert result.workers == 2
    check_output(result, batch)
    # and a whole-shot `facepipe edit` gives the same frames: chunk edges are exact
    whole = batch["folder"] / "whole" / "sh010.%06d.png"
    whole.parent.mkdir(exist_ok=True)
    api.edit(batch["clips"][0], emotion="happy", out=whole, force=True, workdir=batch["work"], progress="off",
             log=lambda m: None, **EDIT)
    farm = pixels(result.shots[0].output.parent / "sh010.happy.frames" / "sh010.%06d.png")
    differ = [n for n, img in pixels(whole).items() if not np.array_equal(img, farm[n])]
    assert not differ, f"frames {differ} differ from a whole-shot edit"


def kill_a_worker_running_a_chunk(client, killed: list) -> None:
    deadline = time.time() + 120
    while time.time() < deadline and not killed:
        for address, keys in client.processing().items():
            if any(str(k).startswith("chunk-") for k in keys):
                pid = client.run(os.getpid, workers=[address])[address]
                os.kill(pid, signal.SIGKILL)
                killed.append((address, pid))
                return
        time.sleep(0.05)


@pytest.mark.slow
def test_a_worker_killed_mid_job_changes_nothing(batch, tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        killed: list = []
        killer = threading.Thread(target=kill_a_worker_running_a_chunk, args=(client, killed), daemon=True)
        killer.start()
        settings = FarmSettings(out_dir=tmp_path / "out", chunk=CHUNK, workdir=batch["work"], edit={**EDIT, "threads": 1})
        result = run_farm(shots_from_args(batch["clips"], "happy"), settings, scheduler=cluster.scheduler_address)
        killer.join()
    assert killed, "no worker was running a chunk to kill"
    check_output(result, batch)


def test_cli_refusals_are_one_line_and_exit_codes(make_clip, tmp_path):
    import subprocess

    clip = make_clip("sh010.mp4", frames=10)
    cmd = [sys.executable, "-m", "facepipe", "farm", "edit", "--out", str(tmp_path)]
    no_emotion = subprocess.run(cmd + [str(clip)], capture_output=True, text=True)
    assert no_emotion.returncode == 2 and "--emotion is needed" in no_emotion.stderr
    (tmp_path / "sh010.sad.mp4").write_bytes(b"x")
    exists = subprocess.run(cmd + [str(clip), "--emotion", "sad"], capture_output=True, text=True)
    assert exists.returncode == 3 and len(exists.stderr.strip().splitlines()) == 1, exists.stderr
