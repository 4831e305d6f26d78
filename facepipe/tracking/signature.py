"""A small re-identification signature of a face, to give a face that comes back its old track id.

The face is warped by a similarity transform from five landmarks (eye centres, nose tip, mouth
corners) onto a fixed 32x32 template, so the signature does not depend on where the face is,
how big, or how rolled. Each colour channel is normalised to zero mean and unit variance (so
exposure changes matter little); similarity is the normalised cross-correlation (-1..1).
On the shared clips consecutive frames of the same face score at least 0.84, the last frame of
one clip against the first of another (a different person) at most 0.77; across big turns and
laughs the same face can drop to ~0.4. It is not an identity model: the tracker combines it
with the shot and the size the face had when it was last seen.
"""

from __future__ import annotations

import cv2
import numpy as np

from facepipe.tracking.schemes import MESH_LEFT_EYE, MESH_RIGHT_EYE, LandmarkScheme

SIZE = 32
# ArcFace's 112x112 five-point template, scaled to SIZE (subject's right eye first).
_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float32
) * (SIZE / 112.0)


def five_points(points: np.ndarray, scheme: LandmarkScheme) -> np.ndarray:
    """(5,2) right eye centre, left eye centre, nose tip, right and left mouth corners."""
    p = np.asarray(points)[:, :2]
    if scheme.n_points >= 468:
        return np.stack([p[list(MESH_RIGHT_EYE)].mean(0), p[list(MESH_LEFT_EYE)].mean(0), p[1], p[61], p[291]]).astype(
            np.float32
        )
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]]).astype(np.float32)


def signature(image: np.ndarray, points: np.ndarray, scheme: LandmarkScheme) -> np.ndarray | None:
    """(SIZE*SIZE*3,) float32 unit-norm signature vector of the face (its normalised pixels), or None if degenerate."""
    src = five_points(points, scheme)
    if not np.isfinite(src).all():
        return None
    m, _ = cv2.estimateAffinePartial2D(src, _TEMPLATE, method=cv2.LMEDS)
    if m is None:
        return None
    crop = cv2.warpAffine(image, m, (SIZE, SIZE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    x = crop.astype(np.float32).reshape(-1, 3)
    x -= x.mean(0)
    x /= x.std(0) + 1.0
    v = x.ravel()
    n = np.linalg.norm(v)
    return (v / n).astype(np.float32) if n > 0 else None


def similarity(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Normalised cross-correlation of two signatures (-1..1); -1 when either is missing."""
    if a is None or b is None:
        return -1.0
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return -1.0
    return float(np.dot(a, b) / (na * nb))
