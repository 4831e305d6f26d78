"""A short demo clip made from a real photo that a package ships (scikit-image's astronaut).

The camera slowly pans and zooms over the photo, and a quiet tone plays, so the clip exercises
motion, timing and audio copy without any footage of the user's own.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def camera_move(photo: np.ndarray, t: float, size: int) -> np.ndarray:
    """A (size,size,3) uint8 view of ``photo`` at time ``t`` in 0..1 (pan + slow zoom)."""
    import cv2

    h, w = photo.shape[:2]
    zoom = 1.0 + 0.15 * t
    crop = int(min(h, w) / zoom)
    cx = w / 2 + 30 * np.sin(2 * np.pi * t)
    cy = h / 2 + 15 * np.cos(2 * np.pi * t) - 5
    x0 = int(np.clip(cx - crop / 2, 0, w - crop))
    y0 = int(np.clip(cy - crop / 2, 0, h - crop))
    return cv2.resize(photo[y0 : y0 + crop, x0 : x0 + crop], (size, size), interpolation=cv2.INTER_AREA)


def make_demo_clip(path: Path, seconds: float = 2.0, fps: Fraction = Fraction(25), size: int = 384,
                   audio: bool = True, photo: np.ndarray | None = None) -> Path:
    """Write an H.264 (+AAC tone) clip of the astronaut photo with camera motion to ``path``."""
    import av
    from skimage import data

    photo = data.astronaut() if photo is None else photo
    n = max(1, int(round(seconds * fps)))
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": "18", "preset": "veryfast"}
        if audio:
            rate = 48000
            aus = out.add_stream("aac", rate=rate)
            aus.layout = "mono"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(camera_move(photo, i / max(1, n - 1), size), format="rgb24")
            frame.pts = i
            frame.time_base = 1 / fps
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        if audio:
            samples = int(rate * n / fps)
            tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.float32)
            for start in range(0, samples, 1024):
                af = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
                af.sample_rate = rate
                af.pts = start
                for p in aus.encode(af):
                    out.mux(p)
            for p in aus.encode(None):
                out.mux(p)
    return path
