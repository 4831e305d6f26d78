"""SMPTE timecode <-> frame numbers at a rational frame rate (drop-frame aware)."""

from __future__ import annotations

import re
from fractions import Fraction

from facepipe.errors import RequestError

_TC = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.])(\d{2,3})$")


def nominal_fps(fps: Fraction) -> int:
    """Frames per timecode second: 24000/1001 counts as 24, 22.13 as 22."""
    return max(1, round(fps))


def _is_drop_frame(fps: Fraction, separator: str) -> bool:
    return separator == ";" and nominal_fps(fps) in (30, 60)


def timecode_to_frames(tc: str, fps: Fraction) -> int:
    """Frame number of timecode ``tc`` (``HH:MM:SS:FF``, ``;`` before FF means drop-frame)."""
    m = _TC.match(tc.strip())
    if not m:
        raise RequestError(f"not a timecode: {tc!r} (expected HH:MM:SS:FF)")
    hh, mm, ss, sep, ff = int(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])
    base = nominal_fps(fps)
    frames = ((hh * 60 + mm) * 60 + ss) * base + ff
    if _is_drop_frame(fps, sep):
        drop = 2 * base // 30
        total_minutes = hh * 60 + mm
        frames -= drop * (total_minutes - total_minutes // 10)
    return frames


def frames_to_timecode(frames: int, fps: Fraction, drop_frame: bool = False) -> str:
    """Inverse of :func:`timecode_to_frames`."""
    base = nominal_fps(fps)
    sep = ":"
    if drop_frame and base in (30, 60):
        sep = ";"
        drop = 2 * base // 30
        per_10min = base * 600 - drop * 9
        per_min = base * 60 - drop
        tens, rem = divmod(frames, per_10min)
        frames += drop * 9 * tens
        if rem > drop:
            frames += drop * ((rem - drop) // per_min)
    ff = frames % base
    total_s = frames // base
    return f"{total_s // 3600 % 24:02d}:{total_s // 60 % 60:02d}:{total_s % 60:02d}{sep}{ff:02d}"


def offset_timecode(tc: str, frames: int, fps: Fraction) -> str:
    """``tc`` moved on by ``frames`` frames, keeping its drop-frame flavour."""
    return frames_to_timecode(timecode_to_frames(tc, fps) + frames, fps, drop_frame=";" in tc)
