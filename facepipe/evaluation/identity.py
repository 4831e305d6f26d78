"""Identity embedding for the harness: dlib's ResNet face descriptor (optional extra).

Needs ``dlib`` (``pip install dlib-bin``, or ``pip install facepipe[eval]``) and the registry's
``dlib-face-recognition-resnet`` and ``dlib-shape-predictor-5`` weights
(``facepipe weights fetch dlib-face-recognition-resnet`` etc.). :func:`identity_unavailable`
says why it cannot run, so the harness skips the measure with that reason instead of failing.
"""

from __future__ import annotations

import numpy as np

from facepipe.tracking.schemes import to_ibug68
from facepipe.weights import is_available, weights_path

MODELS = ("dlib-face-recognition-resnet", "dlib-shape-predictor-5")


def identity_unavailable() -> str | None:
    """None when the embedding can run, else the reason (and what to do)."""
    try:
        import dlib  # noqa: F401
    except ImportError:
        return "dlib is not installed (pip install dlib-bin, or pip install 'facepipe[eval]')"
    missing = [m for m in MODELS if not is_available(m)]
    if missing:
        return f"weights not cached: {', '.join(missing)} (facepipe weights fetch {missing[0]})"
    return None


def face_box(landmarks: np.ndarray, scheme: str = "mediapipe-478") -> np.ndarray | None:
    """x0, y0, x1, y1 of a dlib-detector-like box (the 68-point jaw/brow extent) from (N,3) px."""
    p = np.asarray(landmarks, np.float64)
    if not np.isfinite(p).all():
        return None
    q = (
        np.asarray(to_ibug68(p[None].astype(np.float32), scheme)[0], np.float64)[:, :2]
        if p.shape[0] != 68
        else p[:, :2]
    )
    (x0, y0), (x1, y1) = q.min(0), q.max(0)
    return np.array([x0, y0, x1, y1])


class DlibIdentity:
    """``embed(image (H,W,3) uint8 RGB, landmarks (N,3) px) -> (128,) float64`` (NaN if no face)."""

    def __init__(self):
        import dlib

        self._dlib = dlib
        self.shape_predictor = dlib.shape_predictor(str(weights_path("dlib-shape-predictor-5")))
        self.encoder = dlib.face_recognition_model_v1(str(weights_path("dlib-face-recognition-resnet")))

    def embed(self, image: np.ndarray, landmarks: np.ndarray, scheme: str = "mediapipe-478") -> np.ndarray:
        box = face_box(landmarks, scheme)
        if box is None:
            return np.full(128, np.nan)
        dlib = self._dlib
        rect = dlib.rectangle(*(int(round(v)) for v in box))
        img = np.ascontiguousarray(image, np.uint8)
        shape = self.shape_predictor(img, rect)
        return np.asarray(self.encoder.compute_face_descriptor(img, shape), np.float64)
