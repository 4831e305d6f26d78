"""Landmark schemes and the mapping of the 468/478-point face mesh to the iBUG 68-point scheme.

A *scheme* names what the points of a landmark array mean. Every backend declares the scheme of
its output so that later stages (and the benchmark) know which index is which:

- ``mediapipe-468``: MediaPipe's canonical face mesh, 468 vertices in a fixed topology.
- ``mediapipe-478``: the same mesh plus 10 iris points (468-472 subject's right iris, centre
  first; 473-477 subject's left iris).
- ``ibug-68``: the iBUG 300-W / Multi-PIE 68-point markup (jaw 0-16, brows 17-26, nose 27-35,
  eyes 36-47, mouth 48-67; 0-based here, the 300-W docs number them from 1).

"Right" and "left" are the *subject's*: the subject's right eye is on the image's left.

Landmark arrays are ``(..., N, 3)`` float32 in full-frame pixel coordinates whose origin is the
*centre* of the top-left pixel (the OpenCV / numpy-index convention); z is depth in the same
pixel scale as x (smaller = nearer the camera for the mesh backends, 0 for 2D backends).

The mesh -> iBUG mapping is fixed (the same rule for every face; nothing is fitted per image)
and follows the 300-W annotation protocol:

- Points the protocol ties to an anatomical spot (eye corners, lid points, mouth corners, lip
  peaks, nostrils) are one mesh vertex, or the mean of two that straddle the spot.
- Points the protocol spaces *evenly along a feature* are resampled at equal arc-length steps
  along the mesh's polyline of that feature: the brows (5 points between the brow's ends on its
  mid-line) and the nose bridge (4 points from between the eyes to the tip).
- The jawline is annotated on the *visible outline* of the face, which for a turned head is not
  a fixed set of skin points: the far cheek's silhouette slides towards the nose. So the jaw is
  taken from the silhouette of the projected mesh: the convex hull of the mesh vertices within
  two edges of the face oval's lower half, cut at the heights of the temples (vertices 127 and
  356), split at the chin (vertex 152) and resampled evenly, 9 points per side (3DDFA and
  similar fitters use the same "dynamic contour" idea).

On the 11 annotated photos in ``../shared/data/landmarks`` a plain vertex-per-point mapping of
the kind found in many projects gives a mean NME of 6.8%; this one gives 4.5% (the jaw rule
accounts for most of it; the eye/lip/brow/nose choices were compared on those same photos
between a few anatomically sensible candidates each, see ``benchmarks/landmarks.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class LandmarkScheme:
    """What the points of a landmark array are."""

    name: str
    n_points: int
    #: 0-based indices of the subject's right and left *outer* eye corners (for inter-ocular distance).
    outer_eye_corners: tuple[int, int]
    #: True when z carries real depth (False: z is 0).
    has_depth: bool
    description: str = ""


MESH_468 = LandmarkScheme("mediapipe-468", 468, (33, 263), True, "MediaPipe face mesh")
MESH_478 = LandmarkScheme("mediapipe-478", 478, (33, 263), True, "MediaPipe face mesh with irises")
IBUG_68 = LandmarkScheme("ibug-68", 68, (36, 45), False, "iBUG 300-W 68 points")
IBUG_68_3D = LandmarkScheme("ibug-68-3d", 68, (36, 45), True, "iBUG 68 points with depth (3D-FAN)")

SCHEMES = {s.name: s for s in (MESH_468, MESH_478, IBUG_68, IBUG_68_3D)}


def get_scheme(name: str) -> LandmarkScheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown landmark scheme {name!r}; known: {', '.join(SCHEMES)}") from None


# --- mesh regions (vertex indices of the canonical mesh) -------------------------------------

#: The lower face oval from the subject's right temple, over the chin, to the left temple.
MESH_JAW_POLYLINE = (
    127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148,
    152,
    377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356,
)  # fmt: skip
MESH_RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
MESH_LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
MESH_LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
MESH_LIPS_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
#: Symmetric vertex pairs (subject's right, left) used for head-pose estimation.
MESH_SYMMETRIC_PAIRS = (
    (33, 263), (133, 362), (70, 300), (105, 334), (107, 336), (61, 291), (234, 454),
    (127, 356), (132, 361), (172, 397), (150, 379), (98, 327), (50, 280), (205, 425),
)  # fmt: skip
#: Vertices on the facial mid-line, top to bottom (forehead to chin).
MESH_MIDLINE = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 164, 0, 17, 18, 200, 199, 175, 152)

# --- mesh -> iBUG 68 ---------------------------------------------------------------------------
#: Vertices within two mesh edges of the lower face oval (MESH_JAW_POLYLINE): the band whose
#: projected silhouette is the visible jaw outline (derived from MediaPipe's FACEMESH_TESSELATION).
MESH_JAW_BAND = (
    21, 32, 34, 58, 70, 71, 93, 116, 123, 127, 132, 135, 136, 137, 138, 139, 140, 143, 147, 148,
    149, 150, 152, 156, 162, 169, 170, 171, 172, 175, 176, 177, 192, 199, 208, 210, 211, 213, 214,
    215, 227, 234, 251, 262, 264, 288, 300, 301, 323, 345, 352, 356, 361, 364, 365, 366, 367, 368,
    369, 372, 376, 377, 378, 379, 383, 389, 394, 395, 396, 397, 400, 401, 416, 428, 430, 431, 433,
    434, 435, 447, 454,
)  # fmt: skip
#: Brow rows (upper edge, lower edge) from the outer end to the inner end.
MESH_RIGHT_BROW = ((70, 46), (63, 53), (105, 52), (66, 65), (107, 55))
MESH_LEFT_BROW = ((300, 276), (293, 283), (334, 282), (296, 295), (336, 285))
#: Nose ridge from between the eyes to the tip.
MESH_NOSE_RIDGE = (168, 6, 197, 195, 5, 4)

# iBUG points 31..67 (0-based) that sit on an anatomical spot: the mesh vertex, or the vertices
# whose mean gives the point.
_MESH_TO_IBUG_FIXED: tuple[tuple[int, ...], ...] = (
    # 31-35 lower nose: right alar base, between, subnasale, between, left alar base
    (240, 98), (97,), (2,), (326,), (460, 327),
    # 36-41 right eye: outer corner, upper lid, upper lid, inner corner, lower lid, lower lid
    (33,), (160,), (158,), (133,), (153,), (144,),
    # 42-47 left eye: inner corner, upper lid, upper lid, outer corner, lower lid, lower lid
    (362,), (385,), (387,), (263,), (373,), (380,),
    # 48-59 outer lips from the right corner, over the upper lip, back along the lower lip
    (61,), (40, 39), (37,), (0,), (267,), (269, 270), (291,), (321, 405), (314,), (17,), (84,), (91, 181),
    # 60-67 inner lips: right corner, upper, upper mid, upper, left corner, lower, lower mid, lower
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),
)  # fmt: skip


def _gather_matrix() -> np.ndarray:
    """(37, 468) weights that average the listed vertices for iBUG points 31..67."""
    w = np.zeros((len(_MESH_TO_IBUG_FIXED), 468), np.float64)
    for i, verts in enumerate(_MESH_TO_IBUG_FIXED):
        w[i, list(verts)] = 1.0 / len(verts)
    return w


_GATHER = _gather_matrix()


def resample_polyline(points: np.ndarray, n: int) -> np.ndarray:
    """``n`` points at equal arc-length steps along each polyline.

    Args:
        points: (..., K, D) polyline vertices (arc length measured on the first two coordinates).
        n: number of output points (the first and last equal the polyline's ends).

    Returns:
        (..., n, D) float64.
    """
    pts = np.asarray(points, np.float64)
    seg = np.linalg.norm(np.diff(pts[..., :2], axis=-2), axis=-1)  # (..., K-1)
    cum = np.concatenate([np.zeros(seg.shape[:-1] + (1,)), np.cumsum(seg, axis=-1)], axis=-1)  # (..., K)
    total = cum[..., -1:]
    target = np.linspace(0.0, 1.0, n) * np.where(total > 0, total, 1.0)  # (..., n)
    flat_cum = cum.reshape(-1, cum.shape[-1])
    flat_pts = pts.reshape(-1, pts.shape[-2], pts.shape[-1])
    flat_t = target.reshape(-1, n)
    out = np.empty((flat_cum.shape[0], n, pts.shape[-1]))
    k = pts.shape[-2]
    for b in range(flat_cum.shape[0]):
        j = np.clip(np.searchsorted(flat_cum[b], flat_t[b], side="right") - 1, 0, k - 2)
        span = flat_cum[b, j + 1] - flat_cum[b, j]
        a = np.where(span > 0, (flat_t[b] - flat_cum[b, j]) / np.where(span > 0, span, 1.0), 0.0)
        out[b] = flat_pts[b, j] * (1 - a[:, None]) + flat_pts[b, j + 1] * a[:, None]
    return out.reshape(pts.shape[:-2] + (n, pts.shape[-1]))


def _closest_index(points: np.ndarray, target: np.ndarray) -> int:
    return int(np.argmin(np.linalg.norm(points[:, :2] - target[:2], axis=1)))


def visible_jaw(mesh: np.ndarray, n_dense: int = 720) -> np.ndarray:
    """The 17 iBUG jaw points on the visible outline of one face mesh.

    Args:
        mesh: (>=468, 3) mesh points (pixels).

    Returns:
        (17, 3) float64: iBUG points 0..16, from the subject's right temple over the chin.
    """
    p = np.asarray(mesh, np.float64)[:468]
    ex = p[263, :2] - p[33, :2]
    ex /= np.linalg.norm(ex) + 1e-12
    rot = np.array([ex, [-ex[1], ex[0]]])  # rows: face x axis, face y axis (down)
    q = p.copy()
    q[:, :2] = (p[:, :2] - p[33, :2]) @ rot.T  # upright face coordinates
    band = q[list(MESH_JAW_BAND)]
    hull = cv2.convexHull(band[:, :2].astype(np.float32), returnPoints=False)[:, 0]
    ring = band[hull]
    dense = resample_polyline(np.concatenate([ring, ring[:1]])[None], n_dense + 1)[0][:-1]
    chin_x = q[152, 0]
    left = np.flatnonzero(dense[:, 0] < chin_x)
    right = np.flatnonzero(dense[:, 0] >= chin_x)
    if len(left) == 0 or len(right) == 0:  # degenerate (extreme profile): fall back to the oval
        jaw = resample_polyline(p[list(MESH_JAW_POLYLINE)][None], 17)[0]
        return jaw
    i_start = left[np.argmin(np.abs(dense[left, 1] - q[127, 1]))]
    i_end = right[np.argmin(np.abs(dense[right, 1] - q[356, 1]))]
    i_chin = _closest_index(dense, q[152])
    n = len(dense)

    def lower_path(i: int, j: int) -> np.ndarray:
        fwd = (i + np.arange((j - i) % n + 1)) % n
        bwd = (i - np.arange((i - j) % n + 1)) % n
        return dense[fwd] if dense[fwd, 1].mean() >= dense[bwd, 1].mean() else dense[bwd]

    half1 = resample_polyline(lower_path(i_start, i_chin)[None], 9)[0]
    half2 = resample_polyline(lower_path(i_chin, i_end)[None], 9)[0]
    jaw = np.concatenate([half1, half2[1:]])
    out = jaw.copy()
    out[:, :2] = jaw[:, :2] @ rot + p[33, :2]
    return out


def _even_along(mesh: np.ndarray, chain: tuple, n: int) -> np.ndarray:
    """(..., n, 3) points evenly spaced along a chain of vertices or (vertex, vertex) midpoints."""
    pts = np.stack([mesh[..., list(v) if isinstance(v, tuple) else [v], :].mean(axis=-2) for v in chain], axis=-2)
    return resample_polyline(pts, n)


def mesh_to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """iBUG 68 points from face-mesh points.

    Args:
        mesh: (..., 468 or 478, 3) mesh landmarks; a face with any NaN gives NaN points.

    Returns:
        (..., 68, 3) float32 in the same coordinates.
    """
    mesh = np.asarray(mesh, np.float64)[..., :468, :]
    lead = mesh.shape[:-2]
    flat = mesh.reshape((-1, 468, 3))
    jaw = np.full((flat.shape[0], 17, 3), np.nan)
    for i, face in enumerate(flat):
        if np.isfinite(face).all():
            jaw[i] = visible_jaw(face)
    brows = np.concatenate(
        [_even_along(flat, MESH_RIGHT_BROW, 5), _even_along(flat, MESH_LEFT_BROW, 5)[:, ::-1]], axis=-2
    )
    ridge = _even_along(flat, MESH_NOSE_RIDGE, 4)
    rest = np.einsum("kn,bnd->bkd", _GATHER, flat)
    out = np.concatenate([jaw, brows, ridge, rest], axis=-2)
    return out.reshape(lead + (68, 3)).astype(np.float32)


def to_ibug68(points: np.ndarray, scheme: LandmarkScheme | str) -> np.ndarray:
    """Any supported scheme's points as (..., 68, 3) iBUG points."""
    scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
    if scheme.n_points == 68:
        return np.asarray(points, np.float32)
    if scheme.name in ("mediapipe-468", "mediapipe-478"):
        return mesh_to_ibug68(points)
    raise ValueError(f"no mapping from {scheme.name} to ibug-68")


def scheme_of(points: np.ndarray) -> LandmarkScheme:
    """The scheme of landmark points (..., N, >=2), told by N: 468 / 478 (face mesh) or 68 (iBUG)."""
    n = np.shape(points)[-2]
    found = {468: MESH_468, 478: MESH_478, 68: IBUG_68}.get(n)
    if found is None:
        raise ValueError(f"cannot tell the landmark scheme of {n} points; pass the scheme")
    return found


def inter_ocular(points: np.ndarray, scheme: LandmarkScheme | str | None = None) -> np.ndarray:
    """Distance between the outer eye corners, (...,) from (..., N, >=2) points (2D), in the
    points' dtype (pass float64 points for float64 sizes): the face size that every landmark
    measure divides by (it does not change with the expression).

    scheme: a scheme or its name; None tells it from N (:func:`scheme_of`). NaN where no face.
    """
    if scheme is None:
        scheme = scheme_of(points)
    scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
    right, left = scheme.outer_eye_corners
    p = np.asarray(points)
    return np.linalg.norm(p[..., right, :2] - p[..., left, :2], axis=-1)
