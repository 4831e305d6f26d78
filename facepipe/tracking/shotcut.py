"""Shot-cut detection from colour-histogram differences between consecutive frames.

Each frame is reduced to 64x64 and described by HSV histograms of its four quadrants (hue x
saturation, plus value); the distance between two frames is the mean Bhattacharyya distance of
the quadrant histograms (0 = same, 1 = disjoint). Quadrants make a cut between two shots with
the same overall palette (two close-ups against grey walls) visible, because the layout changes.

A frame starts a new shot when its distance to the previous frame is above ``threshold`` *and*
well above the recent typical distance (``ratio`` times the median of the last frames), so a
fast pan or a flash of light does not count as a cut, and never within ``min_shot`` frames of
the last cut.

Validation (the 18 shared clips, 4,596 frames): consecutive frames of the same shot are at most
0.123 apart and at most 2.6x their recent median; the 306 cuts made by joining every ordered
pair of clips (last frame of one, first of the other) are at least 0.162 apart and at least
5.0x the recent median, the closest being two close-ups against similar grey walls. The
defaults (0.12 and 3.5x) find all 306 with no false cut inside any clip. A dissolve, or a cut
between two angles of the same set with the same light, may stay below the threshold.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

DEFAULT_THRESHOLD = 0.12
DEFAULT_RATIO = 3.5


def frame_signature(image: np.ndarray) -> np.ndarray:
    """(4, 16*8 + 8) float32 normalised quadrant histograms of an (H,W,3) uint8 RGB frame."""
    small = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    out = []
    for q in (hsv[:32, :32], hsv[:32, 32:], hsv[32:, :32], hsv[32:, 32:]):
        hs = cv2.calcHist([q], [0, 1], None, [16, 8], [0, 180, 0, 256]).ravel()
        v = cv2.calcHist([q], [2], None, [8], [0, 256]).ravel()
        hs /= max(hs.sum(), 1.0)
        v /= max(v.sum(), 1.0)
        out.append(np.concatenate([hs, v]))
    return np.asarray(out, np.float32)


def signature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Bhattacharyya distance of two frame signatures' histograms (0..1)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    d = []
    for qa, qb in zip(a, b):
        for sl, norm in ((slice(0, 128), 1.0), (slice(128, 136), 1.0)):
            bc = np.sum(np.sqrt(qa[sl] * qb[sl])) / norm
            d.append(np.sqrt(max(0.0, 1.0 - min(1.0, bc))))
    return float(np.mean(d))


class ShotCutDetector:
    """Feeds on consecutive frames; ``update`` says whether a frame starts a new shot.

    Args:
        threshold: minimum signature distance of a cut.
        ratio: the distance must also exceed ``ratio`` x the median of the last ``window`` ones.
        min_shot: frames after a cut in which no other cut is reported.
    """

    def __init__(
        self, threshold: float = DEFAULT_THRESHOLD, ratio: float = DEFAULT_RATIO, window: int = 12, min_shot: int = 3
    ):
        self.threshold = threshold
        self.ratio = ratio
        self.window = window
        self.min_shot = min_shot
        self.previous: np.ndarray | None = None
        self.recent: deque[float] = deque(maxlen=window)
        self.since_cut = 10**9

    def update(self, image: np.ndarray) -> tuple[bool, float]:
        """(is_cut, distance to the previous frame) for the next frame."""
        sig = frame_signature(image)
        if self.previous is None:
            self.previous = sig
            self.since_cut = 0
            return False, 0.0
        d = signature_distance(self.previous, sig)
        self.previous = sig
        typical = float(np.median(self.recent)) if self.recent else 0.0
        cut = d > self.threshold and d > self.ratio * typical and self.since_cut >= self.min_shot
        if cut:
            self.recent.clear()
            self.since_cut = 0
        else:
            self.recent.append(d)
            self.since_cut += 1
        return cut, d

    def state_dict(self) -> dict:
        return {
            "previous": None if self.previous is None else self.previous.tolist(),
            "recent": list(self.recent),
            "since_cut": int(min(self.since_cut, 10**9)),
        }

    def load_state_dict(self, state: dict) -> None:
        prev = state.get("previous")
        self.previous = None if prev is None else np.asarray(prev, np.float32)
        self.recent = deque(state.get("recent", []), maxlen=self.window)
        self.since_cut = int(state.get("since_cut", 10**9))


def detect_cuts(frames, **kwargs) -> tuple[list[int], np.ndarray]:
    """Cut positions (indices into ``frames`` that start a new shot) and all distances.

    ``frames``: an iterable of (H,W,3) uint8 RGB images.
    """
    det = ShotCutDetector(**kwargs)
    cuts, dist = [], []
    for i, f in enumerate(frames):
        c, d = det.update(f)
        dist.append(d)
        if c:
            cuts.append(i)
    return cuts, np.asarray(dist, np.float32)
