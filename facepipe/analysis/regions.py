"""Face measurements from landmarks: mouth opening, face mattes.

Landmarks are ``(T,N,>=2)`` float pixels (NaN rows where no face) in any scheme
:mod:`facepipe.tracking.schemes` knows (mediapipe-468/478 or ibug-68). The face size they are
measured in is :func:`facepipe.tracking.schemes.inter_ocular`.
"""

from __future__ import annotations

import cv2
import numpy as np

from facepipe.tracking.schemes import inter_ocular

#: Inner-lip vertex pairs (upper, lower) across the mouth: right of centre, centre, left of centre.
MESH_LIP_GAP_PAIRS = ((82, 87), (13, 14), (312, 317))
IBUG_LIP_GAP_PAIRS = ((61, 67), (62, 66), (63, 65))


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """(T,) inner lip gap / inter-ocular distance (NaN where no face).

    The gap is the mean distance of three upper/lower inner-lip pairs across the mouth, so a
    lopsided opening still counts; 0 with the lips closed, about 0.3-0.6 on a wide-open vowel.
    """
    p = np.asarray(landmarks, np.float64)[..., :2]
    pairs = IBUG_LIP_GAP_PAIRS if p.shape[-2] == 68 else MESH_LIP_GAP_PAIRS
    up = p[..., [a for a, _ in pairs], :]
    lo = p[..., [b for _, b in pairs], :]
    gap = np.linalg.norm(up - lo, axis=-1).mean(-1)
    size = inter_ocular(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(size > 0, gap / size, np.nan)


def hull_mask(points: np.ndarray, height: int, width: int, grow: float = 0.0) -> np.ndarray:
    """(H,W) bool: the convex hull of one frame's landmarks (N,>=2) px, grown (or shrunk, when
    negative) by ``grow`` x inter-ocular distance. All False when the points are NaN."""
    mask = np.zeros((height, width), np.uint8)
    p = np.asarray(points, np.float64)[..., :2]
    if not np.isfinite(p).all() or len(p) < 3:
        return mask.astype(bool)
    hull = cv2.convexHull(np.round(p).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    if grow:
        r = int(round(abs(grow) * float(inter_ocular(p))))
        if r > 0:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
            mask = cv2.dilate(mask, kernel) if grow > 0 else cv2.erode(mask, kernel)
    return mask.astype(bool)
