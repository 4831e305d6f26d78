"""How much of a restored face a delivered frame shows: a ramp in the blur estimate, smoothed in time.

The deblur node restores a face when it moves at least a threshold (3 px/frame). Delivered as an
on/off switch, footage whose face speed hovers around the threshold alternates restored and
unrestored frames, and the restoration's own look (sharper edges, Richardson-Lucy's ringing)
flickers on and off. Delivered frames instead blend the restoration in by a weight that rises
smoothly with the blur (:func:`smoothstep` from ``low`` to ``high`` px/frame) and is averaged
over a centred window of ``window`` frames, so two adjacent frames' weights differ by at most
1/``window``. ``high == low`` and ``window == 1`` is the plain switch.
"""

from __future__ import annotations

import numpy as np

#: Face speed (px/frame, full resolution) at which a delivered restoration reaches full weight.
RAMP_HIGH = 6.0
#: Frames the delivered weight is averaged over (centred, odd).
RAMP_WINDOW = 5


def smoothstep(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """x (T,) -> (T,) float32: 0 below ``low``, 1 from ``high``, 3t^2 - 2t^3 in between; a step
    at ``low`` when ``high == low``."""
    x = np.asarray(x, np.float64)
    if high <= low:
        return (x >= low).astype(np.float32)
    t = np.clip((x - low) / (high - low), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def blend_weights(speed: np.ndarray, present: np.ndarray, low: float, high: float, window: int) -> np.ndarray:
    """speed (T,) px/frame of consecutive frames, present (T,) bool where a face was found ->
    (T,) float32 in 0..1: the restoration's weight per frame, :func:`smoothstep` of the speed
    averaged over a centred ``window`` (odd; edges repeat the end frames). Frames without a
    face get 0: there is no square to restore."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the ramp's window must be odd and at least 1, not {window}")
    weight = smoothstep(speed, low, high) * np.asarray(present, bool)
    half = window // 2
    padded = np.pad(weight, half, mode="edge") if len(weight) else weight
    smoothed = np.convolve(padded, np.full(window, 1.0 / window), mode="valid") if len(weight) else weight
    return (smoothed * np.asarray(present, bool)).astype(np.float32)
