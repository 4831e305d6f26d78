"""probe(): the facts of a media file, read from its packets with PyAV."""

from fractions import Fraction

import numpy as np
import pytest

from facepipe.errors import MediaError
from media_checks import audio_packets
from facepipe.io.media import probe


def test_probe_basic_clip(make_clip):
    info = probe(make_clip(frames=12, audio=True))
    assert (info.width, info.height) == (64, 48)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and info.bit_depth == 8
    assert info.fps == Fraction(25) and isinstance(info.fps, Fraction)
    assert info.frame_count == 12
    steps = set(np.diff(info.frame_pts).tolist())
    assert len(steps) == 1 and steps.pop() * info.time_base == Fraction(1, 25)
    assert info.duration == Fraction(12, 25)
    assert info.rotation == 0 and not info.variable_frame_rate
    assert len(info.audio) == 1
    a = info.audio[0]
    assert (a.codec, a.sample_rate, a.channels) == ("aac", 48000, 1)
    assert a.packets == len(audio_packets(info.path)[0]) > 0


@pytest.mark.parametrize(
    "fps, time_base",
    [(Fraction(24000, 1001), Fraction(1, 24000)), (Fraction(30000, 1001), Fraction(1, 30000)),
     (Fraction(1350, 61), Fraction(1, 1350))],
    ids=["23.976", "29.97", "22.13"],
)
def test_probe_rational_rates(make_clip, fps, time_base):
    info = probe(make_clip(fps=fps, time_base=time_base, frames=10))
    assert info.fps == fps
    assert [info.frame_time(i) for i in range(10)] == [i / fps for i in range(10)]
    assert info.duration == 10 / fps


def test_probe_variable_frame_rate(make_clip):
    pts = [0, 1000, 2500, 3000, 4700, 5000, 6000, 8000, 9000, 9100, 12000, 13000]
    info = probe(make_clip(pts=pts, time_base=Fraction(1, 30000), frames=len(pts)))
    assert info.variable_frame_rate
    assert [info.frame_time(i) for i in range(len(pts))] == [Fraction(p, 30000) for p in pts]
    assert info.frame_durations[:-1] == tuple(np.diff(info.frame_pts).tolist())


def test_probe_timecode_rotation_colour_bit_depth(make_clip):
    info = probe(make_clip(timecode="01:00:00:00", rotation=90, colour=(1, 1, 1, 1)))
    assert info.timecode == "01:00:00:00"
    assert info.rotation == 90
    assert (info.width, info.height, info.coded_width, info.coded_height) == (48, 64, 64, 48)
    assert (info.colour.primaries, info.colour.transfer, info.colour.matrix, info.colour.range) == (1, 1, 1, 1)
    ten = probe(make_clip(codec="libx265", pix_fmt="yuv420p10le", frames=4))
    assert ten.pix_fmt == "yuv420p10le" and ten.bit_depth > 8


def test_probe_summary_is_json_friendly(make_clip):
    import json

    s = probe(make_clip(fps=Fraction(24000, 1001), time_base=Fraction(1, 24000), frames=5)).summary()
    assert s["fps"] == "24000/1001" and s["frame_count"] == 5
    json.dumps(s, default=str)


def test_probe_errors(tmp_path, make_clip):
    with pytest.raises(MediaError, match="no such file"):
        probe(tmp_path / "missing.mp4")
    with pytest.raises(MediaError, match="directory"):
        probe(tmp_path)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(MediaError, match="empty"):
        probe(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("not a movie\n" * 20)
    with pytest.raises(MediaError, match="not a readable media file"):
        probe(text)


def test_probe_rejects_truncated_files(tmp_path, make_clip):
    """Cut in half: with the index at the end the file cannot be opened; with the index first
    (faststart) it opens, and the frames its index lists but that are missing give it away."""
    for options in (None, {"movflags": "faststart"}):
        clip = make_clip(frames=30, audio=True, container_options=options)
        data = clip.read_bytes()
        cut = tmp_path / f"cut_{clip.name}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(MediaError, match="not a readable media file|truncated|damaged"):
            probe(cut)


def test_probe_zero_frame_video_stream(make_clip):
    clip = make_clip("empty_video.mkv", container_format="matroska", video_packets=False, audio=True)
    with pytest.raises(MediaError, match="no frames"):
        probe(clip)
