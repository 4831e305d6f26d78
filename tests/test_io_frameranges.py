"""Frame ranges in farm syntax and SMPTE timecode arithmetic (pure functions, no media)."""

from fractions import Fraction

import numpy as np
import pytest

from facepipe.errors import RequestError
from facepipe.io.frameranges import contiguous_runs, first_frame_number, parse_frame_range
from facepipe.io.timecode import frames_to_timecode, offset_timecode, timecode_to_frames


@pytest.mark.parametrize(
    "spec, count, first, expected",
    [
        ("7", 20, 0, [7]),
        ("0-4", 20, 0, [0, 1, 2, 3, 4]),
        ("1-10x3", 20, 0, [1, 4, 7, 10]),
        ("1-100x5", 101, 0, list(range(1, 101, 5))),
        ("3,7,10-12", 20, 0, [3, 7, 10, 11, 12]),
        (" 10-12 , 3 ", 20, 0, [3, 10, 11, 12]),  # sorted, spaces ignored
        ("2-4,3-5", 20, 0, [2, 3, 4, 5]),  # overlaps merge
        ("15-", 20, 0, [15, 16, 17, 18, 19]),  # open end: to the last frame
        ("1001-1005", 20, 1001, [0, 1, 2, 3, 4]),  # timecode / farm numbering
        ("1010-", 20, 1001, list(range(9, 20))),
        ("1-3", 5, 1, [0, 1, 2]),  # --frame-base 1
    ],
)
def test_parse_frame_range_forms(spec, count, first, expected):
    got = parse_frame_range(spec, count, first)
    assert got.dtype == np.int64
    assert got.tolist() == expected


@pytest.mark.parametrize(
    "spec, count, first, message",
    [
        ("5-2", 20, 0, "end comes before the start"),
        ("abc", 20, 0, "bad frame range"),
        ("", 20, 0, "bad frame range"),
        ("1-5,,7", 20, 0, "bad frame range"),
        ("1-10x0", 20, 0, "step"),
        ("0-20", 20, 0, "outside the clip (frames 0-19)"),
        ("-3", 20, 0, "outside the clip"),
        ("1000-1005", 20, 1001, "outside the clip (frames 1001-1020)"),
        ("1.5", 20, 0, "bad frame range"),
    ],
)
def test_parse_frame_range_errors(spec, count, first, message):
    with pytest.raises(RequestError) as err:
        parse_frame_range(spec, count, first)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_parse_frame_range_empty_clip():
    with pytest.raises(RequestError, match="no frames"):
        parse_frame_range("0-3", 0)


def test_first_frame_number():
    assert first_frame_number("index", "01:00:00:00", Fraction(25)) == 0
    assert first_frame_number("1", None, Fraction(25)) == 1
    assert first_frame_number("timecode", "01:00:00:00", Fraction(25)) == 90000
    assert first_frame_number("timecode", "01:00:00:00", Fraction(24000, 1001)) == 86400
    with pytest.raises(RequestError, match="no timecode"):
        first_frame_number("timecode", None, Fraction(25))
    with pytest.raises(RequestError, match="frame-base"):
        first_frame_number("seconds", None, Fraction(25))


def test_contiguous_runs():
    assert contiguous_runs(np.array([1, 2, 3, 7, 9, 10])) == [(1, 3), (7, 7), (9, 10)]
    assert contiguous_runs(np.array([], np.int64)) == []


@pytest.mark.parametrize(
    "tc, fps, frames",
    [
        ("00:00:00:00", Fraction(25), 0),
        ("01:00:00:00", Fraction(25), 90000),
        ("00:00:01:05", Fraction(24000, 1001), 29),  # 23.976 counts 24 frames per timecode second
        ("00:00:01:00", Fraction(1350, 61), 22),  # 22.13 fps counts 22
        # 29.97 drop-frame: frames 00 and 01 are skipped at each minute except every tenth
        ("00:01:00;02", Fraction(30000, 1001), 1800),
        ("00:10:00;00", Fraction(30000, 1001), 17982),
        ("01:00:00;00", Fraction(30000, 1001), 107892),
        ("00:01:00:00", Fraction(30000, 1001), 1800),  # ':' means non-drop even at 29.97
        ("00:01:00;04", Fraction(60000, 1001), 3600),  # 59.94 drops 4
    ],
)
def test_timecode_to_frames(tc, fps, frames):
    assert timecode_to_frames(tc, fps) == frames
    assert frames_to_timecode(frames, fps, drop_frame=";" in tc) == tc


def test_drop_frame_round_trip_and_skipped_labels():
    fps = Fraction(30000, 1001)
    labels = [frames_to_timecode(n, fps, drop_frame=True) for n in range(0, 40000, 7)]
    assert all(timecode_to_frames(tc, fps) == n for tc, n in zip(labels, range(0, 40000, 7)))
    assert frames_to_timecode(1799, fps, True) == "00:00:59;29"
    assert frames_to_timecode(1800, fps, True) == "00:01:00;02"  # ;00 and ;01 do not exist


def test_offset_timecode_keeps_flavour():
    assert offset_timecode("01:00:00:00", 10, Fraction(25)) == "01:00:00:10"
    assert offset_timecode("00:59:59;28", 3, Fraction(30000, 1001)) == "01:00:00;01"  # minute 60: no drop
    assert offset_timecode("00:00:59;28", 3, Fraction(30000, 1001)) == "00:01:00;03"  # skips ;00 ;01
    assert offset_timecode("23:59:59:24", 1, Fraction(25)) == "00:00:00:00"  # wraps at 24 h


def test_bad_timecode():
    with pytest.raises(RequestError, match="not a timecode"):
        timecode_to_frames("1:00:00", Fraction(25))
