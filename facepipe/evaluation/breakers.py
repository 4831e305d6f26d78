"""Deliberately broken edits, to check that the harness catches what it should.

Each writes a clip the way ``facepipe edit`` writes one (same writer, same codec preset, audio
copied), so only the breakage differs from a pass-through:

- :func:`shifted_edit`: every frame shows the source ``shift`` frames later (speech out of sync);
- :func:`blurred_face_edit`: the face is Gaussian-blurred inside a feathered matte (detail lost).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from facepipe.analysis.regions import hull_mask
from facepipe.io.codecs import choose_codec
from facepipe.io.media import probe
from facepipe.io.reader import VideoReader
from facepipe.io.writer import MovieWriter
from facepipe.tracking.schemes import inter_ocular


def _write(source, out, frames_iter, codec: str | None, provenance: dict) -> Path:
    info = probe(source)
    out = Path(out)
    spec = choose_codec(codec, info, out)
    indices = np.arange(info.frame_count)
    with MovieWriter(out, info, spec, indices, {"tool": "facepipe.evaluation.breakers", **provenance}) as writer:
        for frames, idx in frames_iter(info):
            writer.write(frames, idx)
    return out


def shifted_edit(source, out, shift: int = 5, codec: str | None = None) -> Path:
    """Frame t of ``out`` is source frame min(t + shift, T-1) (shift >= 0): the picture runs
    ``shift`` frames early against the audio and the source."""
    if shift < 0:
        raise ValueError("shift must be >= 0")

    def frames(info):
        t = 0
        last = None
        for chunk in VideoReader(info).chunks(np.arange(min(shift, info.frame_count), info.frame_count), chunk_size=16):
            yield chunk.frames, np.arange(t, t + len(chunk))
            t += len(chunk)
            last = chunk.frames[-1:]
        while t < info.frame_count:
            yield last if last is not None else torch.zeros(1, 3, info.height, info.width), np.array([t])
            t += 1

    return _write(source, out, frames, codec, {"breakage": f"shift {shift}"})


def face_mattes(landmarks: np.ndarray, height: int, width: int, feather: float = 0.15) -> np.ndarray:
    """(T,H,W) float32 0..1 soft face mattes inside the landmarks' convex hull: the hull shrunk by
    2 ``feather`` and feathered by a Gaussian of ``feather`` (x inter-ocular distance), so the
    matte is ~0 on and outside the hull (0 where no face)."""
    out = np.zeros((len(landmarks), height, width), np.float32)
    for i, p in enumerate(landmarks):
        m = hull_mask(p, height, width, grow=-2 * feather).astype(np.float32)
        if m.any():
            s = max(0.5, feather * float(inter_ocular(np.asarray(p, np.float64))))
            out[i] = cv2.GaussianBlur(m, (0, 0), s) * hull_mask(p, height, width)
    return out


def blurred_face_edit(source, out, landmarks: np.ndarray, sigma: float = 0.03, codec: str | None = None) -> Path:
    """The face (hull of ``landmarks`` (T,N,3) px of the source, e.g. its tracks) blurred with a
    Gaussian of ``sigma`` x inter-ocular distance inside a feathered matte; the rest untouched
    (pixels outside the feathered matte are the decoded source exactly)."""
    def frames(info):
        for chunk in VideoReader(info).chunks(chunk_size=16):
            f = chunk.frames.numpy().copy()
            lms = landmarks[chunk.indices]
            mattes = face_mattes(lms, info.height, info.width)
            for k in range(len(f)):
                if not mattes[k].any():
                    continue
                s = max(0.5, sigma * float(inter_ocular(np.asarray(lms[k], np.float64))))
                img = f[k].transpose(1, 2, 0)
                blurred = cv2.GaussianBlur(img, (0, 0), s)
                a = mattes[k][..., None]
                f[k] = (img * (1 - a) + blurred * a).transpose(2, 0, 1)
            yield torch.from_numpy(f), chunk.indices

    return _write(source, out, frames, codec, {"breakage": f"face blur {sigma} IOD"})
