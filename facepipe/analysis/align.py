"""Face alignment for the expression classifier: 64x64 greyscale crops from landmarks.

The crop is an eye-centre similarity alignment: the line between the two eye centres is made
level, scaled to ``eye_dist`` of the crop width, and centred at height ``eye_y``. This is how
FER-2013-style training crops look on average (a detector box around brows to chin, upright),
but without a detector's jitter. The defaults were chosen on the shared clips and photos by
``python benchmarks/crop_study.py`` (a grid over eye distance 0.27-0.44 and eye height
0.24-0.42, plain vs FER-like 48 px resampling): eye distance 0.33 and eye line at 0.27 kept the
smiling photos happy (mean P 0.94) and the others not (0.05; 10/10 photos right), separated
lp_d0_grin's grin (0.88) from its neutral ends (0.04), and kept a talking anchor woman
(hdtf_aoc_talk) mostly neutral (76% of frames). Tighter crops (0.30) score grins higher but also
call talking faces happy (P 0.19-0.36); looser ones (0.40+) lose smiles on the photos; the
48 px resampling inflates happy everywhere (the classifier rewards blur).

Crops are resampled in two steps (a bilinear warp at 3x the output size, then an area
downscale) so large faces do not alias; greyscale is ITU-R 601 luma, as fer's ``cv2`` path.
"""

from __future__ import annotations

import cv2
import numpy as np

from facepipe.tracking.schemes import MESH_LEFT_EYE, MESH_RIGHT_EYE, to_ibug68

#: Output side in pixels (mini-Xception input).
CROP_SIZE = 64
#: Distance between the eye centres as a fraction of the crop width.
EYE_DIST = 0.33
#: Height of the eye line as a fraction of the crop height, from the top.
EYE_Y = 0.27
#: Oversampling of the intermediate warp before the area downscale.
SUPERSAMPLE = 3

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def eye_centres(points: np.ndarray, scheme: str = "mediapipe-478") -> np.ndarray:
    """(..., 2, 2) centres of the subject's right eye (image left) and left eye, from
    (..., N, >=2) landmarks of ``scheme`` (mediapipe-468/478, ibug-68 or anything
    :func:`facepipe.tracking.schemes.to_ibug68` maps). NaN where the points are NaN."""
    p = np.asarray(points, np.float64)[..., :2]
    n = p.shape[-2]
    if n in (468, 478):
        right, left = p[..., list(MESH_RIGHT_EYE), :], p[..., list(MESH_LEFT_EYE), :]
    else:
        if n != 68:
            p = np.asarray(to_ibug68(np.asarray(points), scheme), np.float64)[..., :2]
        right, left = p[..., 36:42, :], p[..., 42:48, :]
    return np.stack([right.mean(-2), left.mean(-2)], axis=-2)


def alignment_matrix(
    eyes: np.ndarray, size: int = CROP_SIZE, eye_dist: float = EYE_DIST, eye_y: float = EYE_Y
) -> np.ndarray:
    """(2,3) affine matrix mapping image pixels to crop pixels for eye centres ``eyes`` (2,2)
    (subject's right eye first), or ``None``-free NaN matrix when the eyes are NaN/degenerate.

    Pixel-centre convention on both sides: crop pixel (0,0) is centred on crop coordinate 0.
    """
    er, el = np.asarray(eyes, np.float64)
    d = el - er
    dist = float(np.hypot(*d))
    if not np.isfinite(dist) or dist < 1e-3:
        return np.full((2, 3), np.nan)
    s = eye_dist * size / dist
    c, sn = d / dist  # cos, sin of the eye line's angle
    rot = s * np.array([[c, sn], [-sn, c]])  # rotate by -angle, scale
    mid = (er + el) / 2
    target = np.array([(size - 1) / 2, eye_y * size - 0.5])
    return np.concatenate([rot, (target - rot @ mid)[:, None]], axis=1)


def grey(image: np.ndarray) -> np.ndarray:
    """(H,W) float32 luma (0.299 R + 0.587 G + 0.114 B) from (H,W,3) RGB or (3,H,W) planes."""
    a = np.asarray(image, np.float32)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        return np.tensordot(_LUMA, a, axes=(0, 0))
    return a @ _LUMA


def align_face(
    image_grey: np.ndarray, eyes: np.ndarray, size: int = CROP_SIZE, eye_dist: float = EYE_DIST, eye_y: float = EYE_Y
) -> np.ndarray | None:
    """(size,size) float32 crop of an (H,W) float32 greyscale image, or None for NaN eyes.

    Pixels outside the image repeat the border (a face at the frame edge keeps its shape)."""
    m = alignment_matrix(eyes, size, eye_dist, eye_y)
    if not np.isfinite(m).all():
        return None
    big = size * SUPERSAMPLE
    src = np.ascontiguousarray(image_grey, np.float32)
    # Scale into the supersampled crop, keeping pixel centres aligned: x_big = k (x + 0.5) - 0.5.
    k = SUPERSAMPLE
    mb = m * k
    mb[:, 2] += (k - 1) / 2
    # If the face is much larger than the supersampled crop, halve the source first (no aliasing).
    scale = float(np.hypot(*mb[0, :2]))
    while scale < 0.5 and min(src.shape) > 2 * big:
        src = cv2.pyrDown(src)
        mb[:, :2] *= 2.0  # cv2.pyrDown's pixel i is centred on source pixel 2i: x_src = 2 x_half
        scale *= 2.0
    warped = cv2.warpAffine(src, mb, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)


def align_faces(
    frames,
    landmarks: np.ndarray,
    scheme: str = "mediapipe-478",
    size: int = CROP_SIZE,
    eye_dist: float = EYE_DIST,
    eye_y: float = EYE_Y,
) -> tuple[np.ndarray, np.ndarray]:
    """Crops of every frame's face.

    frames: (T,3,H,W) float32 0..1 (torch or numpy), the frames the landmarks are in.
    landmarks: (T,N,>=2) pixels in those frames, NaN rows where no face.
    Returns ``crops (T,1,size,size) float32 0..1`` (zeros where no face) and ``valid (T,) bool``.
    """
    arr = frames.detach().cpu().numpy() if hasattr(frames, "detach") else np.asarray(frames)
    t = len(arr)
    eyes = eye_centres(landmarks, scheme)
    crops = np.zeros((t, 1, size, size), np.float32)
    valid = np.zeros(t, bool)
    for i in range(t):
        crop = align_face(grey(arr[i]), eyes[i], size, eye_dist, eye_y)
        if crop is not None:
            crops[i, 0] = np.clip(crop, 0.0, 1.0)
            valid[i] = True
    return crops, valid
