"""``facepipe assemble``: a farm's image-sequence chunks back into a movie timed like the source.

The sequences are written by ``facepipe edit ... --out x.%04d.png`` (and ``.exr``) of facepipe's
demo face clip; the assembled movie must equal a plain movie edit: frame count, fps, every
frame's timestamp, the audio packets, and (same codec) the decoded pixels.
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from facepipe import api
from facepipe.demo import make_demo_clip
from facepipe.errors import OutputExistsError, RequestError
from facepipe.io.media import probe
from facepipe.io.reader import VideoReader
from facepipe.io.sequence import frame_path, read_image, sequence_frames
from media_checks import audio_packets, frame_psnr, timing_report

QUIET = {"progress": "off", "log": lambda m: None}
EDIT = {"emotion": "happy", "appearance": 0.0, **QUIET}


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    folder = tmp_path_factory.mktemp("assemble")
    clip = make_demo_clip(folder / "astro.mp4", seconds=1.0, size=256, audio=True)
    work = folder / "work"
    movie = api.edit(clip, out=folder / "astro.happy.mp4", workdir=work, **EDIT).output
    sequences = {}
    for ext in ("png", "exr"):
        (folder / ext).mkdir()
        api.edit(clip, out=folder / ext / f"sh010.%04d.{ext}", workdir=work, **EDIT)
        sequences[ext] = folder / ext / f"sh010.%04d.{ext}"
    return {"clip": clip, "movie": movie, "work": work, "folder": folder, **sequences}


def frames_of(path) -> np.ndarray:
    info = probe(path)
    return VideoReader(info).read(range(info.frame_count)).numpy()


@pytest.mark.parametrize("ext", ["png", "exr"])
def test_assembled_sequence_equals_a_plain_movie_edit(shot, ext, tmp_path):
    out = tmp_path / f"sh010.{ext}.mp4"
    result = api.assemble(shot[ext], like=shot["clip"], out=out, progress="off")
    assert result.frames == probe(shot["clip"]).frame_count == 25
    timing = timing_report(str(shot["clip"]), str(out))
    assert timing.ok and timing.audio_packets[0] > 0, timing
    assert probe(out).fps == probe(shot["movie"]).fps == Fraction(25)
    assert audio_packets(str(out)) == audio_packets(str(shot["movie"]))
    # the same code values reach the same encoder: the decoded frames are identical
    assert np.isinf(frame_psnr(str(shot["movie"]), str(out))).all()


def test_lossless_round_trip_gives_back_the_sequence_pixels(shot, tmp_path):
    out = tmp_path / "sh010.mkv"
    api.assemble(shot["png"], like=shot["clip"], out=out, codec="ffv1", progress="off")
    files = list(sequence_frames(shot["png"]).values())
    pngs = np.stack([read_image(p) for p in files])
    np.testing.assert_array_equal(frames_of(out), pngs)


def test_a_sub_range_keeps_the_timing_and_audio_of_that_range(shot, tmp_path):
    seq = tmp_path / "part" / "sh010.%04d.png"
    seq.parent.mkdir()
    api.edit(shot["clip"], frames="5-14", out=seq, workdir=shot["work"], **EDIT)
    movie = api.edit(shot["clip"], frames="5-14", out=tmp_path / "part.mp4", workdir=shot["work"], **EDIT).output
    out = tmp_path / "assembled.mp4"
    result = api.assemble(seq, like=shot["clip"], out=out, progress="off")
    assert (result.first, result.last, result.frames) == (5, 14, 10)
    assert timing_report(str(movie), str(out)).ok
    assert probe(out).frame_pts == probe(movie).frame_pts
    assert np.isinf(frame_psnr(str(movie), str(out))).all()


def test_timecode_numbered_sequence_keeps_the_range_timecode(make_clip, tmp_path):
    src = make_clip(frames=12, audio=True, timecode="01:00:00:00")  # frame 0 is 90000 at 25 fps
    seq = tmp_path / "tc" / "x.%06d.png"
    seq.parent.mkdir()
    passthrough = {"emotion": "neutral", "intensity": 0.0, "frames": "90004-90009", "frame_base": "timecode", **QUIET}
    api.edit(src, out=seq, **passthrough)
    movie = api.edit(src, out=tmp_path / "tc.mp4", **passthrough).output
    out = api.assemble(seq, like=src, out=tmp_path / "out.mp4", frame_base="timecode", progress="off").output
    assert probe(out).timecode == "01:00:00:04"
    assert timing_report(str(movie), str(out)).ok


def test_missing_frames_wrong_sizes_and_empty_patterns_are_clear_errors(shot, tmp_path, make_clip):
    import shutil

    seq = tmp_path / "gap" / "sh010.%04d.png"
    shutil.copytree(shot["png"].parent, seq.parent)
    frame_path(seq, 7).unlink()
    with pytest.raises(RequestError, match=r"frame 7 is missing: .*sh010\.0007\.png"):
        api.assemble(seq, like=shot["clip"], out=tmp_path / "gap.out.mp4", progress="off")
    with pytest.raises(RequestError, match="no frames match"):
        api.assemble(tmp_path / "gap" / "other.%04d.png", like=shot["clip"], out=tmp_path / "x.out.mp4", progress="off")
    small = make_clip("small.mp4", frames=25)
    with pytest.raises(RequestError, match=r"sh010\.0000\.png is 256x256 but the source is 64x48"):
        api.assemble(shot["png"], like=small, out=tmp_path / "small.out.mp4", progress="off")
    with pytest.raises(RequestError, match="outside the source"):
        api.assemble(shot["png"], like=shot["clip"], out=tmp_path / "r.out.mp4", frame_base="1", progress="off")
    assert not list(tmp_path.glob("*.out.mp4")) and not list(tmp_path.rglob("*facepipe-tmp*"))


def test_cli_exit_codes_existing_output_and_force(shot, tmp_path):
    out = tmp_path / "sh010.mp4"
    cmd = [sys.executable, "-m", "facepipe", "assemble", str(shot["png"]), "--like", str(shot["clip"]), "--out", str(out)]
    first = subprocess.run(cmd + ["--progress", "plain"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-2] == "Progress: 100% (assemble 25/25)"
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 3 and "exists" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    forced = subprocess.run(cmd + ["--force", "--progress-format", "tractor"], capture_output=True, text=True)
    assert forced.returncode == 0 and "ALF_PROGRESS 100%" in forced.stdout.splitlines()
    missing = subprocess.run(cmd[:4] + [str(tmp_path / "none.%04d.png")] + cmd[5:], capture_output=True, text=True)
    assert missing.returncode == 2 and "no frames match" in missing.stderr
    with pytest.raises(OutputExistsError):
        api.assemble(shot["png"], like=shot["clip"], out=out, progress="off")
