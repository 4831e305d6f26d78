"""Frames that repeat the one before: pulled-down or frame-doubled footage (vr_face4 is 30 fps
made from ~24, every fourth frame a re-encoded copy). The edit must not render such a frame
afresh (new grain and tracking noise would pop where the plate stands still) but give it its
predecessor's edit again.

A frame's *step* is the mean absolute change inside the face's box from the frame before. A
frame repeats when its step is below ``max_step`` (fraction of full scale) and below
``max_ratio`` of the median of the last ``history`` steps of frames that were not repeats (at
least ``min_history`` of them; a repeat's near-zero step would drag the median down). In the
shared clips repeats change by 0.07 code values at most and real frames by 0.11 at least (a
still three-quarter view), 0.6-1.2 in the median, so both tests are needed.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from facepipe.face.extent import face_box


def face_step(frame: torch.Tensor, previous: torch.Tensor, mesh) -> float:
    """Mean absolute change (0..1) of frame (3,H,W) from ``previous`` (3,H,W) inside the box of
    the face's ``mesh`` (N,2) px; NaN when the box is empty."""
    x0, y0, x1, y1 = face_box([torch.as_tensor(mesh, dtype=torch.float32)], 0.0, tuple(frame.shape[-2:]))
    if x1 <= x0 or y1 <= y0:
        return float("nan")
    return float((frame[:, y0:y1, x0:x1] - previous[:, y0:y1, x0:x1]).abs().mean())


def repeat_flags(steps: np.ndarray, max_step: float = 0.1 / 255, max_ratio: float = 0.05, history: int = 8,
                 min_history: int = 4) -> np.ndarray:  # fmt: skip
    """(T,) bool: which frames repeat the one before, from their steps (T,) (NaN: no face, or no
    previous frame: the history restarts there)."""
    recent: deque[float] = deque(maxlen=history)
    out = np.zeros(len(steps), bool)
    for t, step in enumerate(np.asarray(steps, np.float64)):
        if not np.isfinite(step):
            recent.clear()
            continue
        known = len(recent) >= min_history
        out[t] = known and step < max_step and step < max_ratio * float(np.median(recent))
        if not out[t]:
            recent.append(step)
    return out
