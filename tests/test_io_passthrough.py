"""The foundation's promise on real footage: a pass-through edit keeps frame count, per-frame pts
(as rationals), duration, timecode and audio packets exactly, and the pictures within the codec's
tolerance (lossless codecs: exactly). One short clip by default; every clip with ``-m slow``.
"""

from fractions import Fraction

import numpy as np
import pytest
from conftest import FAST_CLIP, SHARED_CLIPS, leftovers

from facepipe import api
from media_checks import audio_packets, frame_psnr, frame_times, timing_report
from facepipe.io.media import probe
from facepipe.io.reader import VideoReader

H264_MIN_PSNR = 38.0  # dB, every frame, CRF 16 against the decoded source


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """One artifact cache for the module: the scan of a clip is made once and reused."""
    return tmp_path_factory.mktemp("footage-work")


def passthrough(src, out, workdir, **kw):
    return api.edit(src, emotion="neutral", intensity=0.0, out=out, force=True, workdir=workdir, progress="off",
                    log=lambda *a: None, **kw)


def check_passthrough(src, out):
    report = timing_report(str(src), str(out))
    a, b = probe(src), probe(out)
    assert report.frame_count[0] == report.frame_count[1] == a.frame_count
    assert frame_times(a) == frame_times(b) and all(isinstance(t, Fraction) for t in frame_times(b))
    assert report.duration[0] == report.duration[1]
    assert report.timecode[0] == report.timecode[1]
    assert report.audio_identical and report.audio_packets[0] == report.audio_packets[1] == sum(
        s.packets for s in a.audio)
    assert b.fps == a.fps
    assert (b.width, b.height, b.rotation) == (a.width, a.height, a.rotation)
    assert report.ok
    psnr = frame_psnr(str(src), str(out))
    assert len(psnr) == a.frame_count
    assert psnr.min() > H264_MIN_PSNR, f"worst frame {int(psnr.argmin())}: {psnr.min():.2f} dB"


def test_passthrough_fast_clip(shared_clips, tmp_path, work):
    src = shared_clips / FAST_CLIP
    assert probe(src).audio, "the fast clip is chosen for its audio"
    out = tmp_path / "out.mp4"
    result = passthrough(src, out, work)
    assert result.frames_written == probe(src).frame_count
    check_passthrough(src, out)
    assert audio_packets(str(src)) == audio_packets(str(out))
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("codec, ext", [("h264-lossless", ".mp4"), ("ffv1", ".mkv"), ("png", ".%04d.png"),
                                        ("tiff", ".%04d.tif")])
def test_lossless_codecs_are_exact_on_footage(shared_clips, tmp_path, work, codec, ext):
    src = shared_clips / FAST_CLIP
    out = tmp_path / f"out{ext}"
    passthrough(src, out, work, codec=codec, frames="20-24")
    want = VideoReader(probe(src)).read(np.arange(20, 25)).numpy()
    if "%" in ext:
        got = np.stack([_read_image(tmp_path / f"out.{n:04d}{ext[-4:]}") for n in range(20, 25)])
    else:
        info = probe(out)
        assert info.frame_count == 5
        got = VideoReader(info).read(np.arange(5)).numpy()
    assert np.abs(got - want).max() < 1e-6


def _read_image(path):
    import av

    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
    high = "48" in frame.format.name
    arr = frame.to_ndarray(format="rgb48le" if high else "rgb24").astype(np.float32)
    return arr.transpose(2, 0, 1) / (65535.0 if high else 255.0)


def _all_clips():
    return sorted(p.name for p in SHARED_CLIPS.glob("*.mp4")) if SHARED_CLIPS.is_dir() else ["(no shared clips)"]


@pytest.mark.slow
@pytest.mark.footage
@pytest.mark.parametrize("name", _all_clips())
def test_passthrough_every_shared_clip(shared_clips, tmp_path, work, name):
    src = shared_clips / name
    if not src.exists():
        pytest.skip(f"{src} not found")
    out = tmp_path / "out.mp4"
    passthrough(src, out, work)
    check_passthrough(src, out)
    # and exactly, through a lossless codec, on a few frames from the middle
    n = probe(src).frame_count
    lossless = tmp_path / "exact.mkv"
    passthrough(src, lossless, work, codec="ffv1", frames=f"{n // 2}-{n // 2 + 2}")
    want = VideoReader(probe(src)).read(np.arange(n // 2, n // 2 + 3)).numpy()
    assert np.array_equal(VideoReader(probe(lossless)).read(np.arange(3)).numpy(), want)
