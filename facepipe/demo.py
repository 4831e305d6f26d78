"""A short demo clip made from a real photo that a package ships (scikit-image's astronaut).

The camera slowly pans and zooms over the photo, and a quiet tone plays, so the clip exercises
motion, timing and audio copy without any footage of the user's own.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import cv2
import numpy as np
from skimage import data


def camera_move(photo: np.ndarray, t: float, size: int) -> np.ndarray:
    """A (size,size,3) uint8 view of ``photo`` at time ``t`` in 0..1 (pan + slow zoom)."""
    h, w = photo.shape[:2]
    zoom = 1.0 + 0.15 * t
    crop = int(min(h, w) / zoom)
    cx = w / 2 + 30 * np.sin(2 * np.pi * t)
    cy = h / 2 + 15 * np.cos(2 * np.pi * t) - 5
    x0 = int(np.clip(cx - crop / 2, 0, w - crop))
    y0 = int(np.clip(cy - crop / 2, 0, h - crop))
    return cv2.resize(photo[y0 : y0 + crop, x0 : x0 + crop], (size, size), interpolation=cv2.INTER_AREA)


def write_h264(path: Path, frames: Iterable[np.ndarray], fps: Fraction, crf: int = 18,
               tone_hz: float | None = None) -> Path:
    """Encode (H,W,3) uint8 RGB frames to H.264 yuv420p (sizes rounded down to even), with an
    optional quiet AAC sine tone as long as the video. Frame i gets pts i in a 1/fps time base."""
    fps = Fraction(fps)
    frames = iter(frames)
    first = next(frames)
    h, w = first.shape[0] - first.shape[0] % 2, first.shape[1] - first.shape[1] % 2
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height = w, h
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": str(crf), "preset": "veryfast"}
        if tone_hz is not None:
            rate = 48000
            aus = out.add_stream("aac", rate=rate)
            aus.layout = "mono"
        n = 0
        for i, img in enumerate(itertools.chain([first], frames)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:h, :w]), format="rgb24")
            frame.pts = i
            frame.time_base = 1 / fps
            for p in vs.encode(frame):
                out.mux(p)
            n = i + 1
        for p in vs.encode(None):
            out.mux(p)
        if tone_hz is not None:
            samples = int(rate * n / fps)
            tone = (0.1 * np.sin(2 * np.pi * tone_hz * np.arange(samples) / rate)).astype(np.float32)
            for start in range(0, samples, 1024):
                af = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
                af.sample_rate = rate
                af.pts = start
                for p in aus.encode(af):
                    out.mux(p)
            for p in aus.encode(None):
                out.mux(p)
    return Path(path)


def make_demo_clip(path: Path, seconds: float = 2.0, fps: Fraction = Fraction(25), size: int = 384,
                   audio: bool = True, photo: np.ndarray | None = None) -> Path:
    """Write an H.264 (+AAC tone) clip of the astronaut photo with camera motion to ``path``."""
    photo = data.astronaut() if photo is None else photo
    n = max(1, int(round(seconds * fps)))
    frames = (camera_move(photo, i / max(1, n - 1), size) for i in range(n))
    return write_h264(path, frames, fps, crf=18, tone_hz=440.0 if audio else None)
