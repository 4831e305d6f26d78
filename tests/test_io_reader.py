"""VideoReader: frame-exact decoding into (T,3,H,W) float32 chunks, upright, at full precision."""

from fractions import Fraction

import numpy as np
import pytest
from conftest import ffmpeg_decode, pattern

from facepipe.io.media import probe
from facepipe.io.reader import VideoReader, stored, upright


def as_uint8(frames) -> np.ndarray:
    """(T,3,H,W) float 0..1 tensor -> (T,H,W,3) uint8."""
    return np.round(frames.numpy().transpose(0, 2, 3, 1) * 255).astype(np.uint8)


def test_chunks_cover_selection_in_order(make_clip):
    info = probe(make_clip(frames=20))
    chunks = list(VideoReader(info).chunks(chunk_size=6))
    assert [len(c) for c in chunks] == [6, 6, 6, 2]
    idx = np.concatenate([c.indices for c in chunks])
    assert idx.tolist() == list(range(20))
    assert np.concatenate([c.pts for c in chunks]).tolist() == list(info.frame_pts)
    f = chunks[0].frames
    assert tuple(f.shape) == (6, 3, 48, 64) and str(f.dtype) == "torch.float32"
    assert 0.0 <= float(f.min()) and float(f.max()) <= 1.0


def test_frames_match_ffmpeg_and_source(make_clip):
    """Lossless 4:4:4 source: decoded frames equal ffmpeg's decode and the picture that was encoded."""
    clip = make_clip(frames=8, pix_fmt="yuv444p", options={"crf": "0", "preset": "veryfast", "bf": "2", "threads": "1"})
    info = probe(clip)
    ours = as_uint8(VideoReader(info).read(np.arange(8)))
    assert np.array_equal(ours, ffmpeg_decode(clip, 64, 48))
    for i in range(8):  # RGB -> YUV 4:4:4 -> RGB costs at most a code value or two
        assert np.abs(ours[i].astype(int) - pattern(i, 64, 48)).max() <= 3


def test_seeking_selection_equals_full_decode(make_clip):
    """Frames picked from the middle (after a seek, across B-frames) are the same frames as in order."""
    clip = make_clip(frames=30, options={"crf": "18", "preset": "veryfast", "bf": "3", "g": "8", "threads": "1"})
    reader = VideoReader(probe(clip))
    full = reader.read(np.arange(30)).numpy()
    pick = [3, 9, 10, 11, 17, 25, 29]
    chunks = list(reader.chunks(pick, chunk_size=4))
    assert np.concatenate([c.indices for c in chunks]).tolist() == pick
    got = np.concatenate([c.frames.numpy() for c in chunks])
    assert np.array_equal(got, full[pick])


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_display_rotation_decodes_upright(make_clip, rotation):
    lossless = {"crf": "0", "preset": "veryfast", "threads": "1"}
    clip = make_clip(frames=3, rotation=rotation, pix_fmt="yuv444p", options=lossless)
    info = probe(clip)
    assert info.rotation == rotation
    ours = as_uint8(VideoReader(info).read(np.arange(3)))
    assert ours.shape[1:3] == ((64, 48) if rotation in (90, 270) else (48, 64))
    # FFmpeg's display matrix angle is counter-clockwise: upright = np.rot90(stored, k=angle/90)
    expected = np.rot90(pattern(0, 64, 48), k=rotation // 90)
    assert np.abs(ours[0].astype(int) - expected).max() <= 3
    assert np.array_equal(ours, ffmpeg_decode(clip, info.width, info.height))  # as ffmpeg shows it


def test_upright_and_stored_are_inverse():
    img = np.arange(4 * 6 * 3).reshape(4, 6, 3)
    for rotation in (0, 90, 180, 270):
        assert np.array_equal(stored(upright(img, rotation), rotation), img)
    assert np.array_equal(upright(img, 90), np.rot90(img))


def test_ten_bit_source_decodes_above_eight_bit_precision(make_clip):
    clip = make_clip("ten.mkv", codec="ffv1", pix_fmt="yuv444p10le", container_format="matroska", frames=2)
    info = probe(clip)
    assert info.bit_depth > 8
    x = VideoReader(info).read([0]).numpy()[0].transpose(1, 2, 0)
    ref = pattern(0, 64, 48, high_bit=True) / 65535.0
    # not on the 8-bit grid, and closer to the 16-bit original than 8 bits could be
    assert np.abs(x * 255 - np.round(x * 255)).max() > 0.25
    eight_bit_error = np.abs(np.round(ref * 255) / 255 - ref).mean()
    assert np.abs(x - ref).mean() < 0.6 * eight_bit_error


def test_variable_frame_rate_chunks_carry_exact_pts(make_clip):
    pts = [0, 1000, 2500, 3000, 4700, 5000, 6000, 8000]
    info = probe(make_clip(pts=pts, time_base=Fraction(1, 30000), frames=len(pts)))
    chunks = list(VideoReader(info).chunks(chunk_size=3))
    times = [Fraction(int(p)) * info.time_base for c in chunks for p in c.pts]
    assert times == [Fraction(p, 30000) for p in pts]


def test_scaled_chunks(make_clip):
    info = probe(make_clip(frames=4, rotation=90))
    chunk = next(VideoReader(info).chunks(scale=0.5))
    assert tuple(chunk.frames.shape) == (4, 3, 32, 24)


def test_read_ahead_gives_the_same_chunks_and_stops_cleanly(make_clip):
    import threading

    info = probe(make_clip(frames=20))
    reader = VideoReader(info)
    plain = [c.frames.numpy() for c in reader.chunks(chunk_size=3, read_ahead=0)]
    ahead = [c.frames.numpy() for c in reader.chunks(chunk_size=3, read_ahead=2)]
    assert len(plain) == len(ahead) == 7 and all(np.array_equal(a, b) for a, b in zip(plain, ahead))
    for chunk in reader.chunks(chunk_size=3):  # leave early: the decoding thread must stop
        break
    del chunk
    assert not [t for t in threading.enumerate() if t.name == "facepipe-read-ahead"]


def test_read_ahead_passes_errors_on(make_clip, monkeypatch):
    from facepipe.errors import MediaError

    info = probe(make_clip(frames=12))
    reader = VideoReader(info)
    real = reader._decode_run

    def failing(start, end, size):
        for n, item in enumerate(real(start, end, size)):
            if n == 7:
                raise MediaError("damaged at frame 7")
            yield item

    monkeypatch.setattr(reader, "_decode_run", failing)
    got = []
    with pytest.raises(MediaError, match="damaged at frame 7"):
        for chunk in reader.chunks(chunk_size=3):
            got.extend(chunk.indices.tolist())
    assert got == [0, 1, 2, 3, 4, 5]
