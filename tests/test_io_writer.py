"""Encoding: every codec preset, image sequences, frame ranges, and the metadata an output keeps.

Outputs are made through ``api.edit`` (the pass-through edit) and checked with PyAV and, where an
independent view helps (rotation, EXR channel order), with the ffmpeg binary.
"""

import glob
import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import ffmpeg_decode, leftovers, pattern

from facepipe import api
from facepipe.errors import RequestError
from facepipe.io.codecs import CODECS
from media_checks import audio_packets, frame_psnr, timing_report
from facepipe.io.media import probe
from facepipe.io.reader import VideoReader

#: Minimum per-frame PSNR (dB) of lossy presets on the synthetic clips (sharp edges, tiny frames).
LOSSY_PSNR = {"h264": 32, "h265": 32, "prores": 40, "prores4444": 40, "dnxhr": 38}


def passthrough(src, out, **kw):
    kw.setdefault("workdir", Path(out).parent / "work")
    return api.edit(src, emotion="neutral", intensity=0.0, out=out, progress="off", log=lambda *a: None, **kw)


def decoded(path, indices=None) -> np.ndarray:
    info = probe(path)
    return VideoReader(info).read(np.arange(info.frame_count) if indices is None else indices).numpy()


def read_image(path) -> np.ndarray:
    """One image file as (3,H,W) float64 0..1, through PyAV at its own bit depth."""
    import av

    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
    name = frame.format.name
    if "f32" in name:
        return frame.to_ndarray().transpose(2, 0, 1).astype(np.float64)  # gbrpf32: PyAV gives R, G, B
    high = any(m in name for m in ("48", "64", "16"))
    arr = frame.to_ndarray(format="rgb48le" if high else "rgb24").astype(np.float64)
    return arr.transpose(2, 0, 1) / (65535.0 if high else 255.0)


def comment(info) -> str:
    meta = {k.lower(): v for k, v in info.metadata.items()}
    return meta.get("comment") or meta.get("product_version") or ""  # MXF keeps it in its identification


# ---------------------------------------------------------------------------------------- presets


@pytest.mark.parametrize("name", [n for n, c in CODECS.items() if not c.image_sequence])
def test_every_movie_preset_writes_a_readable_output(make_clip, tmp_path, name):
    spec = CODECS[name]
    size = dict(width=256, height=120) if spec.min_size else {}
    src = make_clip(frames=8, audio=True, timecode="01:00:00:00", **size)
    out = tmp_path / f"out{spec.containers[0]}"
    result = passthrough(src, out, codec=name)
    assert result.output == out and result.frames_written == 8
    info = probe(out)
    assert info.frame_count == 8
    assert info.timecode == "01:00:00:00"
    assert comment(info).startswith("facepipe")
    assert json.loads(comment(info).split(" ", 1)[1])["codec"] == name
    if spec.lossless:
        assert np.array_equal(decoded(out), decoded(src)), f"{name} is lossless: frames must be exact"
    else:
        assert frame_psnr(str(src), str(out)).min() > LOSSY_PSNR[name]
    report = timing_report(str(src), str(out))
    if out.suffix != ".mkv":  # Matroska stores milliseconds: see test_matroska_timing
        assert report.ok, report
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("ext", [".mov", ".mxf"])
def test_dnxhr_containers_and_size_limit(make_clip, tmp_path, ext):
    src = make_clip(width=256, height=120, frames=4)
    info = probe(passthrough(src, tmp_path / f"big{ext}", codec="dnxhr").output)
    assert info.codec == "dnxhd" and info.frame_count == 4
    small = make_clip(frames=4)  # 64x48: DNxHR's smallest frame is 256x120
    with pytest.raises(RequestError, match="at least 256x120.*64x48"):
        passthrough(small, tmp_path / f"small{ext}", codec="dnxhr")
    assert not (tmp_path / f"small{ext}").exists() and not leftovers(tmp_path)


def test_matroska_timing(make_clip, tmp_path):
    """Matroska keeps times in milliseconds: FFV1 frames stay exact, times to within a millisecond."""
    src = make_clip(frames=10, fps=30, time_base=Fraction(1, 30))
    out = tmp_path / "out.mkv"
    passthrough(src, out, codec="ffv1")
    a, b = probe(src), probe(out)
    assert b.frame_count == 10
    assert max(abs(a.frame_time(i) - b.frame_time(i)) for i in range(10)) <= Fraction(1, 1000)
    assert np.array_equal(decoded(out), decoded(src))


@pytest.mark.parametrize("name", ["png", "tiff", "exr"])
def test_image_sequence_presets(make_clip, tmp_path, name):
    spec = CODECS[name]
    src = make_clip(frames=6)
    pattern_path = tmp_path / "seq" / f"sh010.%04d{spec.containers[0]}"
    pattern_path.parent.mkdir()
    result = passthrough(src, pattern_path, frames="2-5")
    assert result.frames_written == 4
    files = sorted(pattern_path.parent.glob(f"sh010.*{spec.containers[0]}"))
    assert [f.name for f in files] == [f"sh010.{n:04d}{spec.containers[0]}" for n in (2, 3, 4, 5)]
    ref = decoded(src, [2, 3, 4, 5])
    for f, want in zip(files, ref):
        got = read_image(f)
        if name == "exr":  # float: exact to float32 precision
            assert np.abs(got - want).max() < 1e-6
        else:
            assert np.abs(got - want).max() < 1e-6, f"{name} is lossless"
    sidecar = json.loads((pattern_path.parent / "sh010.facepipe.json").read_text())
    assert sidecar["tool"] == "facepipe" and sidecar["frames"] == "2-5" and sidecar["codec"] == name
    assert not leftovers(tmp_path)


def test_exr_channel_order_matches_ffmpeg(make_clip, tmp_path):
    """EXR planes are stored G, B, R: check R, G, B come back in place with ffmpeg itself."""
    import imageio_ffmpeg

    src = make_clip(frames=1)
    out = tmp_path / "f.%04d.exr"
    passthrough(src, out)
    raw = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "f.0000.exr"),
         "-f", "rawvideo", "-pix_fmt", "gbrpf32le", "-"], capture_output=True, check=True,
    ).stdout
    g, b, r = np.frombuffer(raw, np.float32).reshape(3, 48, 64)
    want = decoded(src)[0]
    assert np.abs(np.stack([r, g, b]) - want).max() < 1e-6


def test_image_sequence_high_bit_depth(make_clip, tmp_path):
    src = make_clip("ten.mkv", codec="ffv1", pix_fmt="yuv444p10le", container_format="matroska", frames=2)
    out = tmp_path / "hi.%04d.png"
    passthrough(src, out)
    got = read_image(tmp_path / "hi.0000.png")
    assert np.abs(got - decoded(src)[0]).max() < 1e-6  # 16-bit PNG holds the 10-bit source exactly
    assert np.abs(got * 255 - np.round(got * 255)).max() > 0.25


def test_image_sequence_timecode_numbering(make_clip, tmp_path):
    src = make_clip(frames=12, timecode="01:00:00:00")  # frame 0 is 90000 at 25 fps
    out = tmp_path / "tc.%06d.png"
    passthrough(src, out, frames="90004-90006", frame_base="timecode")
    assert sorted(p.name for p in tmp_path.glob("tc.*.png")) == ["tc.090004.png", "tc.090005.png", "tc.090006.png"]
    want = decoded(src, [4])[0]
    assert np.abs(read_image(tmp_path / "tc.090004.png") - want).max() < 1e-6


def test_image_sequence_existing_frames_are_skipped_unless_forced(make_clip, tmp_path):
    """A farm chunk re-run after a kill writes only the frames that are missing."""
    src = make_clip(frames=6)
    out = tmp_path / "x.%04d.png"
    passthrough(src, out, frames="0-3")
    before = (tmp_path / "x.0003.png").stat().st_mtime_ns
    passthrough(src, out, frames="3-5")
    assert (tmp_path / "x.0003.png").stat().st_mtime_ns == before  # existed: not written again
    assert sorted(p.name for p in tmp_path.glob("x.*.png")) == [f"x.{n:04d}.png" for n in range(6)]
    passthrough(src, out, frames="3-5", force=True)
    assert (tmp_path / "x.0003.png").stat().st_mtime_ns != before


def test_image_sequence_frames_are_written_atomically(make_clip, tmp_path, monkeypatch):
    """Each frame appears by a rename of a complete temporary file; a failure mid-sequence leaves
    the finished frames whole and no temporary or partial frame behind."""
    import os

    import facepipe.io.atomic as atomic
    import facepipe.io.writer as writer

    renames = []
    real_replace = os.replace

    def replace(a, b):  # (os is one module: the artifact cache's renames come through here too)
        if Path(b).suffix == ".png":
            renames.append((Path(a), Path(b), Path(a).stat().st_size))
        real_replace(a, b)

    monkeypatch.setattr(atomic.os, "replace", replace)
    calls = {"n": 0}
    real_fresh = writer._fresh_context

    def failing_fresh(cc):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real_fresh(cc)

    monkeypatch.setattr(writer, "_fresh_context", failing_fresh)
    src = make_clip(frames=6)
    with pytest.raises(Exception, match="disk is full|No space"):
        passthrough(src, tmp_path / "a.%04d.png")
    done = sorted(tmp_path.glob("a.*.png"))
    assert [p.name for p in done] == ["a.0000.png", "a.0001.png"]
    assert [final.name for _, final, _ in renames] == ["a.0000.png", "a.0001.png"]
    for tmp, final, size in renames:
        assert ".facepipe-tmp" in tmp.name and tmp.parent == final.parent and final.stat().st_size == size
    assert not leftovers(tmp_path)


# ----------------------------------------------------------------------------------- frame ranges


def test_sub_range_movie(make_clip, tmp_path):
    src = make_clip(frames=25, audio=True, timecode="01:00:00:00")
    out = tmp_path / "sub.mp4"
    passthrough(src, out, frames="10-19")
    a, b = probe(src), probe(out)
    assert b.frame_count == 10
    assert b.frame_time(0) == 0 and b.frame_pts[0] == 0
    assert [b.frame_time(i) for i in range(10)] == [a.frame_time(10 + i) - a.frame_time(10) for i in range(10)]
    assert b.duration == Fraction(10, 25)
    assert b.timecode == "01:00:00:10"
    assert frame_psnr(str(src), str(out), indices=np.arange(10, 20)).min() > 32
    _check_trimmed_audio(a, out, start=a.frame_time(10), end=a.frame_time(20))


def test_sub_range_audio_when_video_starts_late(make_clip, tmp_path):
    """Video whose first frame is at 0.1 s: the range's audio must still line up with its frames."""
    pts = [3000 + 1200 * i for i in range(25)]
    src = make_clip(frames=25, audio=True, pts=pts, time_base=Fraction(1, 30000))
    a = probe(src)
    assert a.frame_pts[0] * a.time_base == Fraction(1, 10)
    out = tmp_path / "late.mp4"
    passthrough(src, out, frames="10-19")
    _check_trimmed_audio(a, out, start=a.frame_time(10), end=a.frame_time(20))


def _check_trimmed_audio(src_info, out, start, end):
    """Output audio = the source packets that start within [start, end) of the video (relative to
    its first frame), byte for byte, at the same place relative to the range's first frame."""
    t0 = src_info.frame_pts[0] * src_info.time_base
    src_packets = audio_packets(src_info.path)[0]
    want = [(data, t - t0 - start) for data, t in src_packets if start <= t - t0 < end]
    got = audio_packets(str(out))[0]
    assert len(want) > 0 and len(got) == len(want)
    assert [d for d, _ in got] == [d for d, _ in want]
    out_t0 = probe(out).frame_pts[0] * probe(out).time_base
    assert all(abs((t - out_t0) - w) < Fraction(1, 48000) for (_, t), (_, w) in zip(got, want))


def test_strided_range(make_clip, tmp_path):
    src = make_clip(frames=20)
    out = tmp_path / "every5.mp4"
    passthrough(src, out, frames="0-19x5", codec="h264-lossless")
    assert probe(out).frame_count == 4
    assert np.array_equal(decoded(out), decoded(src, [0, 5, 10, 15]))


# --------------------------------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    "fps, time_base, tc",
    [(Fraction(25), None, "10:00:00:00"), (Fraction(24000, 1001), Fraction(1, 24000), "01:00:00:00"),
     (Fraction(30000, 1001), Fraction(1, 30000), "00:59:59;28")],
    ids=["25", "23.976", "29.97DF"],
)
@pytest.mark.parametrize("ext", [".mp4", ".mov", ".mkv"])
def test_timecode_kept(make_clip, tmp_path, fps, time_base, tc, ext):
    src = make_clip(frames=6, fps=fps, time_base=time_base, timecode=tc)
    assert probe(src).timecode == tc
    out = tmp_path / f"tc{ext}"
    passthrough(src, out)
    info = probe(out)
    assert info.timecode == tc
    assert info.fps == fps


@pytest.mark.parametrize(
    "colour", [(1, 1, 1, 1), (9, 16, 9, 2), (5, 6, 5, 1), (1, 13, 1, 2)], ids=["709", "2020pq-full", "601", "709-full"]
)
@pytest.mark.parametrize("codec, ext", [("h264", ".mp4"), ("prores", ".mov"), ("h265", ".mkv")])
def test_colour_tags_carried_and_honoured(make_clip, tmp_path, colour, codec, ext):
    src = make_clip(frames=3, colour=colour)
    out = tmp_path / f"c{ext}"
    passthrough(src, out, codec=codec)
    c = probe(out).colour
    want = list(colour)
    want[2] = {5: 6}.get(want[2], want[2]) if codec == "prores" else want[2]  # BT.470BG = SMPTE 170M matrix
    want[3] = 1 if codec == "prores" else want[3]  # ProRes is limited range: full-range sources are converted
    assert (c.primaries, c.transfer, c.matrix, c.range) == tuple(want)
    # the tags are used, not just copied: the picture keeps its colours
    assert frame_psnr(str(src), str(out)).min() > LOSSY_PSNR[codec]


def test_lossless_rgb_codecs_tag_rgb(make_clip, tmp_path):
    """RGB coding must say so (identity matrix), or H.264 decoders read G, B, R as Y, Cb, Cr."""
    src = make_clip(frames=3, colour=(1, 1, 1, 1))
    for codec, ext in (("h264-lossless", ".mp4"), ("ffv1", ".mkv")):
        out = tmp_path / f"rgb_{codec}{ext}"
        passthrough(src, out, codec=codec)
        c = probe(out).colour
        assert (c.primaries, c.transfer, c.matrix) == (1, 1, 0)
        assert np.array_equal(decoded(out), decoded(src))


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotation_kept(make_clip, tmp_path, rotation):
    src = make_clip(frames=4, rotation=rotation, audio=True)
    out = tmp_path / "rot.mp4"
    passthrough(src, out)
    a, b = probe(src), probe(out)
    assert b.rotation == rotation and (b.width, b.height) == (a.width, a.height) == (48, 64)
    assert (b.coded_width, b.coded_height) == (64, 48)
    assert frame_psnr(str(src), str(out)).min() > 32
    shown_src, shown_out = ffmpeg_decode(src, 48, 64), ffmpeg_decode(out, 48, 64)  # as a player shows them
    assert np.abs(shown_src.astype(int) - shown_out).mean() < 3
    assert timing_report(str(src), str(out)).ok


def test_provenance_tag(make_clip, tmp_path):
    src = make_clip(frames=3)
    out = tmp_path / "p.mov"
    passthrough(src, out, codec="prores")
    text = comment(probe(out))
    assert text.startswith("facepipe ")
    tag = json.loads(text.split(" ", 1)[1])
    assert tag["tool"] == "facepipe" and tag["source"] == src.name
    assert tag["request"]["keyframes"][0]["emotion"] == "neutral" and tag["request"]["intensity"] == 0
    from facepipe import __version__

    assert tag["version"] == __version__


# ------------------------------------------------------------------------------- difficult input


@pytest.mark.parametrize("codec, ext", [("h264", ".mp4"), ("h265", ".mp4"), ("prores", ".mov"), ("ffv1", ".mkv")])
def test_ten_bit_source_writes_ten_bit(make_clip, tmp_path, codec, ext):
    src = make_clip(codec="libx265", pix_fmt="yuv420p10le", frames=4)
    out = tmp_path / f"ten{ext}"
    passthrough(src, out, codec=codec)
    info = probe(out)
    assert info.bit_depth > 8, info.pix_fmt
    x = decoded(out)
    assert np.abs(x * 255 - np.round(x * 255)).max() > 0.25  # not squeezed through 8 bits
    if codec == "ffv1":
        assert np.abs(x - decoded(src)).max() < 1e-6  # 16-bit RGB holds the decoded 10-bit exactly
    else:
        assert frame_psnr(str(src), str(out)).min() > LOSSY_PSNR[codec]


def test_encoding_is_deterministic_and_whole(make_clip, tmp_path):
    """720 wide to 10-bit YUV: FFmpeg 8's threaded swscale (PyAV 18.1) writes wrong, run-to-run
    different slices there. The writer converts single-threaded: every run the same, every pixel close."""
    src = make_clip(codec="libx265", pix_fmt="yuv420p10le", width=720, height=64, frames=8)
    want = decoded(src)
    outs = []
    for run in range(4):
        out = tmp_path / f"run{run}.mov"
        passthrough(src, out, codec="prores")
        outs.append(decoded(out))
        assert np.abs(outs[-1] - want).max() < 0.06, f"run {run}: a damaged slice"
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


def test_variable_frame_rate_kept_exactly(make_clip, tmp_path):
    pts = [0, 1000, 2500, 3000, 4700, 5000, 6000, 8000, 9000, 9100, 12000, 13000]
    src = make_clip(pts=pts, time_base=Fraction(1, 30000), frames=len(pts), audio=True)
    out = tmp_path / "vfr.mp4"
    passthrough(src, out)
    b = probe(out)
    assert [b.frame_time(i) for i in range(len(pts))] == [Fraction(p, 30000) for p in pts]
    report = timing_report(str(src), str(out))
    assert report.ok, report


def test_rational_rate_kept(make_clip, tmp_path):
    src = make_clip(fps=Fraction(1350, 61), time_base=Fraction(1, 1350), frames=12, audio=True)
    out = tmp_path / "r2213.mov"
    passthrough(src, out)
    b = probe(out)
    assert b.fps == Fraction(1350, 61)
    assert [b.frame_time(i) for i in range(12)] == [Fraction(61 * i, 1350) for i in range(12)]
    assert timing_report(str(src), str(out)).ok


def test_odd_dimensions_fall_back_to_444(make_clip, tmp_path):
    src = make_clip(width=63, height=47, pix_fmt="yuv444p", frames=4, audio=True)
    out = tmp_path / "odd.mp4"
    passthrough(src, out)
    b = probe(out)
    assert (b.width, b.height, b.pix_fmt) == (63, 47, "yuv444p")
    assert frame_psnr(str(src), str(out)).min() > 32
    assert timing_report(str(src), str(out)).ok


@pytest.mark.parametrize("codec, ext", [("h264-lossless", ".mp4"), ("ffv1", ".mkv")])
def test_odd_dimensions_lossless_exact(make_clip, tmp_path, codec, ext):
    """Padded rows (63 pixels wide): the writer's in-place frame filling must not shift a pixel."""
    src = make_clip(width=63, height=47, pix_fmt="yuv444p", frames=3, rotation=90)
    out = tmp_path / f"odd{ext}"
    passthrough(src, out, codec=codec)
    assert np.array_equal(decoded(out), decoded(src))


def test_writer_clamps_out_of_range_values(make_clip, tmp_path):
    """Frames from later stages may leave 0..1: they are clamped, not wrapped around."""
    import torch

    from facepipe.io.writer import MovieWriter

    src = make_clip(frames=2)
    info = probe(src)
    frames = torch.full((2, 3, 48, 64), 0.5)
    frames[0, 0, :10] = -0.7
    frames[0, 1, :10] = 1.9
    frames[1, 2] = float("inf")
    out = tmp_path / "clamped.mp4"
    with MovieWriter(out, info, CODECS["h264-lossless"], [0, 1], {"tool": "facepipe"}) as w:
        w.write(frames, [0, 1])
    got = decoded(out)
    assert got[0, 0, :10].max() == 0 and got[0, 1, :10].min() == 1
    assert np.all(got[1, 2] == 1) and np.allclose(got[0, 2], 128 / 255)


def test_default_output_name_and_codec(make_clip, tmp_path):
    src = make_clip("clip.mp4", frames=3)
    result = api.edit(src, emotion="neutral", intensity=0.0, workdir=tmp_path / "w", progress="off", log=lambda *a: None)
    assert result.output == src.with_name("clip.neutral.mp4") and probe(result.output).codec == "h264"
    hevc = make_clip("h.mkv", codec="libx265", container_format="matroska", frames=3)
    out = tmp_path / "h.out.mkv"
    passthrough(hevc, out)
    assert probe(out).codec == "hevc"  # like the source
    assert glob.glob(str(tmp_path / "*.facepipe-tmp*")) == []


def test_pattern_is_asymmetric():
    """The test picture must show rotations and flips, or the rotation tests prove nothing."""
    img = pattern(0, 64, 48)
    assert not np.array_equal(img, img[::-1]) and not np.array_equal(img, img[:, ::-1])
