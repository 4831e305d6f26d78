"""Small synthetic clips for tests and benchmarks, made from photos scikit-image ships.

A real face (the astronaut photo's head) is pasted onto a smooth random background along a
path of positions, so tests can make a face move, leave the frame, come back, or vanish,
without any footage; :func:`face_mesh` gives the face model's canonical mesh in frame pixels for
tests of the renderer's layers.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def astronaut_head() -> np.ndarray:
    """(H,W,3) uint8 crop of scikit-image's astronaut photo around her head (face ~90 px wide)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[25:235, 135:315])


def background(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(H,W,3) uint8 smooth random colour field (no faces)."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(40, 215, size=(max(2, height // 48), max(2, width // 48), 3)).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def paste(canvas: np.ndarray, patch: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """``canvas`` with ``patch`` centred at (cx, cy), clipped at the borders (in place)."""
    h, w = canvas.shape[:2]
    ph, pw = patch.shape[:2]
    x0, y0 = int(round(cx - pw / 2)), int(round(cy - ph / 2))
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    dx1, dy1 = min(w, x0 + pw), min(h, y0 + ph)
    if dx1 > dx0 and dy1 > dy0:
        canvas[dy0:dy1, dx0:dx1] = patch[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0]
    return canvas


def face_path_frames(centers, size=(320, 240), head_width: int = 150, seed: int = 0, head=None) -> list[np.ndarray]:
    """Frames (H,W,3) uint8 with the head pasted at each centre (None: no face in that frame)."""
    import cv2

    w, h = size
    head = astronaut_head() if head is None else head
    s = head_width / head.shape[1]
    patch = cv2.resize(head, (head_width, int(round(head.shape[0] * s))), interpolation=cv2.INTER_AREA)
    bg = background(h, w, seed)
    frames = []
    for c in centers:
        f = bg.copy()
        if c is not None:
            paste(f, patch, c[0], c[1])
        frames.append(f)
    return frames


def write_clip(path: str | Path, frames: list[np.ndarray], fps: Fraction | int = 25, crf: int = 12) -> Path:
    """Encode RGB frames to an H.264 .mp4 (yuv420p; sizes rounded down to even)."""
    from facepipe.demo import write_h264

    return write_h264(Path(path), frames, Fraction(fps), crf=crf)


def still_then_moving_centers(still: int, moving: int, x0: float, step: float = 9.0, y: float = 120.0) -> list:
    """A path: ``still`` frames at (x0, y), then ``moving`` frames moving right ``step`` px/frame
    (fast enough for the deblur node's motion threshold)."""
    return [(x0, y)] * still + [(x0 + step * (k + 1), y) for k in range(moving)]


def leave_and_return_centers(n: int = 36, size=(320, 240), away: int = 6) -> list:
    """A path: centre -> off the right edge -> ``away`` frames gone -> back to the centre."""
    w, h = size
    go = (n - away) // 2
    back = n - away - go
    xs_out = np.linspace(w / 2, w + 120, go)
    xs_in = np.linspace(w + 120, w / 2, back)
    centers = [(float(x), h / 2) for x in xs_out] + [None] * away + [(float(x), h / 2) for x in xs_in]
    return centers


def face_mesh(rig, au: dict[str, float]):
    """The canonical face of ``rig`` with AU deltas, frontal, large (eyes about 60 px wide, in a
    400 x 400 frame): (468,2) pixels, (468,) depth, (F,3) triangles."""
    import torch

    v = rig.template.copy()
    for name, val in au.items():
        v = v + val * rig.au_deltas[rig.au_index(name)]
    v = torch.tensor(v)
    scale = 200.0
    xy = torch.stack([200.0 + scale * v[:, 0], 230.0 - scale * v[:, 1]], 1)
    return xy, -scale * v[:, 2], torch.tensor(rig.triangles)
