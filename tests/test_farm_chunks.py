"""Render-farm chunks: a shot edited in frame-range chunks gives the frames of one whole run,
a killed chunk re-run finishes only what is missing, and a chunk without a face passes through."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from skimage import data

from facepipe import api
from facepipe.errors import OutputExistsError
from facepipe.demo import camera_move, write_h264
from facepipe.io.media import probe
from facepipe.io.reader import VideoReader

QUIET = {"progress": "off", "log": lambda m: None}
N = 30
#: Frames that repeat the one before (pulled-down footage); 10 sits where chunk 15-29's context starts.
REPEATS = (7, 10, 14, 21)


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """A 30-frame face shot with repeated frames (re-encoded copies, as pulled-down footage has)."""
    photo = data.astronaut()
    frames, view = [], 0
    for i in range(N):
        if i not in REPEATS:
            view += 1
        frames.append(camera_move(photo, view / N, 192))
    return write_h264(tmp_path_factory.mktemp("shot") / "shot.mp4", frames, Fraction(25), crf=12)


@pytest.fixture(scope="module")
def work(tmp_path_factory, shot):
    folder = tmp_path_factory.mktemp("work")
    api.prepare(shot, workdir=folder, **QUIET)
    return folder


def sequence(folder, pattern="f.%04d.png"):
    return {p.name: VideoReader(probe(p)).read([0])[0] for p in sorted(folder.glob(pattern.replace("%04d", "*")))}


@pytest.fixture(scope="module")
def whole(tmp_path_factory, shot, work):
    folder = tmp_path_factory.mktemp("whole")
    result = api.edit(shot, emotion="happy", out=folder / "f.%04d.png", workdir=work, **QUIET)
    assert result.report["render"]["frames_held"] >= 2  # the repeats were found
    return sequence(folder)


def test_chunks_give_the_frames_of_one_run(shot, work, whole, tmp_path):
    for frames in ("0-11", "12-14", "15-29"):
        api.edit(shot, emotion="happy", frames=frames, out=tmp_path / "f.%04d.png", workdir=work, **QUIET)
    chunked = sequence(tmp_path)
    assert sorted(chunked) == sorted(whole) and len(whole) == N
    differ = [name for name in whole if not (whole[name] == chunked[name]).all()]
    assert not differ, f"frames differ from the whole run: {differ}"
    assert len(list(tmp_path.glob("f.*.report.json"))) == 3  # one report per chunk
    movie = api.assemble(tmp_path / "f.%04d.png", like=shot, out=tmp_path / "shot.happy.mkv", codec="ffv1", progress="off")
    assembled = VideoReader(probe(movie.output)).read(range(N))
    assert all((assembled[k] == whole[f"f.{k:04d}.png"]).all() for k in range(N))
    out, src = probe(movie.output), probe(shot)
    assert [out.frame_time(k) for k in range(N)] == [src.frame_time(k) for k in range(N)]


def test_a_killed_chunk_rerun_renders_only_the_missing_frames(shot, work, whole, tmp_path):
    out = tmp_path / "f.%04d.png"
    api.edit(shot, emotion="happy", frames="15-29", out=out, workdir=work, **QUIET)
    for n in range(20, 25):  # as if killed after frame 19
        (tmp_path / f"f.{n:04d}.png").unlink()
    kept = {n: (tmp_path / f"f.{n:04d}.png").stat().st_mtime_ns for n in (15, 19, 25, 29)}
    again = api.edit(shot, emotion="happy", frames="15-29", out=out, workdir=work, **QUIET)
    assert again.frames_written == 5
    assert all((tmp_path / f"f.{n:04d}.png").stat().st_mtime_ns == t for n, t in kept.items())
    chunked = sequence(tmp_path)
    assert all((chunked[name] == whole[name]).all() for name in chunked)
    done = api.edit(shot, emotion="happy", frames="15-29", out=out, workdir=work, **QUIET)
    assert done.frames_written == 0 and done.report["mode"] == "done"


def test_a_chunk_without_a_face_passes_through_with_a_warning(tmp_path):
    photo = data.astronaut()
    frames = [camera_move(photo, i / 20, 160) for i in range(10)] + [np.full((160, 160, 3), 90, np.uint8)] * 10
    clip = write_h264(tmp_path / "half.mp4", frames, Fraction(25), crf=12)
    messages = []
    result = api.edit(clip, emotion="happy", frames="12-19", out=tmp_path / "h.%04d.png", workdir=tmp_path / "w",
                      progress="off", log=messages.append)  # fmt: skip
    assert result.report["render"]["edited"] == 0 and any("passed through" in m for m in messages)
    src = VideoReader(probe(clip)).read(range(12, 20))
    out = sequence(tmp_path, "h.%04d.png")
    assert all((out[f"h.{12 + k:04d}.png"] == src[k]).all() for k in range(8))


def test_frames_of_another_edit_are_not_mixed_in(shot, work, tmp_path):
    out = tmp_path / "f.%04d.png"
    api.edit(shot, emotion="happy", frames="0-4", out=out, workdir=work, **QUIET)
    with pytest.raises(OutputExistsError, match="another edit"):
        api.edit(shot, emotion="sad", frames="0-9", out=out, workdir=work, **QUIET)
    assert not (tmp_path / "f.0005.png").exists()
    assert api.edit(shot, emotion="sad", frames="0-9", out=out, workdir=work, force=True, **QUIET).frames_written == 10
