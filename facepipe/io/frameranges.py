"""Frame ranges in render-farm syntax: ``1001-1100``, ``1-100x5``, ``7``, ``1-10,20-30``, ``40-``.

Ranges are inclusive. Numbers are in the user's numbering (``--frame-base``): 0-based source
index by default, or timecode-based frame numbers, and are mapped to 0-based source indices.
"""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np

from facepipe.errors import RequestError
from facepipe.io.timecode import timecode_to_frames

_PART = re.compile(r"^(-?\d+)(?:-(\d*)(?:x(\d+))?)?$")


def parse_frame_range(spec: str, frame_count: int, first_number: int = 0) -> np.ndarray:
    """Source frame indices selected by ``spec``.

    Args:
        spec: farm syntax, e.g. ``"1001-1100"``, ``"1-100x5"``, ``"3,7,10-12"``, ``"40-"`` (to end).
        frame_count: frames in the source.
        first_number: the number the user's numbering gives source frame 0 (0 for index-based,
            the timecode's frame number for timecode-based numbering).

    Returns:
        (N,) int64 sorted unique 0-based source indices.
    """
    if frame_count <= 0:
        raise RequestError("the clip has no frames to select from")
    last_number = first_number + frame_count - 1
    picked: list[np.ndarray] = []
    for part in (p.strip() for p in spec.split(",")):
        m = _PART.match(part)
        if not m:
            raise RequestError(f"bad frame range {part!r}: use forms like 1001-1100, 1-100x5, 7 or 40-")
        start = int(m[1])
        end = start if m[2] is None else (int(m[2]) if m[2] else last_number)
        step = int(m[3]) if m[3] else 1
        if step < 1:
            raise RequestError(f"bad frame range {part!r}: the step after 'x' must be 1 or more")
        if end < start:
            raise RequestError(f"bad frame range {part!r}: the end comes before the start")
        if start < first_number or end > last_number:
            raise RequestError(
                f"frame range {part!r} is outside the clip (frames {first_number}-{last_number})"
            )
        picked.append(np.arange(start, end + 1, step, dtype=np.int64) - first_number)
    return np.unique(np.concatenate(picked))


def first_frame_number(frame_base: str, timecode: str | None, fps: Fraction) -> int:
    """The number of source frame 0 under ``--frame-base`` (``index``, ``1`` or ``timecode``)."""
    if frame_base == "index":
        return 0
    if frame_base == "1":
        return 1
    if frame_base == "timecode":
        if timecode is None:
            raise RequestError("--frame-base timecode: the clip has no timecode; use --frame-base index")
        return timecode_to_frames(timecode, fps)
    raise RequestError(f"unknown --frame-base {frame_base!r}: use index, 1 or timecode")


def contiguous_runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) runs of consecutive indices, e.g. [1,2,3,7] -> [(1,3),(7,7)]."""
    if len(indices) == 0:
        return []
    breaks = np.flatnonzero(np.diff(indices) != 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(indices) - 1]])
    return [(int(indices[s]), int(indices[e])) for s, e in zip(starts, ends)]
