"""Small geometry on landmark arrays and boxes: IoU, head pose from mesh points, face size."""

from __future__ import annotations

import numpy as np

from facepipe.tracking.schemes import MESH_MIDLINE, MESH_SYMMETRIC_PAIRS, LandmarkScheme, get_scheme


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (A,4) and b (B,4) (x0,y0,x1,y1) -> (A,B)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def box_size(box: np.ndarray) -> np.ndarray:
    """Geometric-mean side length of (...,4) boxes."""
    box = np.asarray(box, np.float64)
    return np.sqrt(np.clip(box[..., 2] - box[..., 0], 0, None) * np.clip(box[..., 3] - box[..., 1], 0, None))


#: MediaPipe's mesh depth is flattened: with z doubled, the yaw from the mesh's own axes agrees
#: with the 2D nose-offset estimate below and with the documented head turns of the shared
#: clips (e.g. about +-40 degrees in lp_d3_talk_glasses); with z as given it reads about half.
MESH_DEPTH_GAIN = 2.0
#: Nose-tip protrusion in front of the eye corners, as a fraction of the eye-corner distance
#: (anthropometric average; for the 2D yaw estimate of 68-point schemes).
NOSE_DEPTH_RATIO = 0.3


def head_pose(points: np.ndarray, scheme: LandmarkScheme | str = "mediapipe-478") -> np.ndarray:
    """(..., 3) yaw, pitch, roll in degrees from (..., N, 3) landmarks; NaN where points are NaN.

    Mesh schemes: the face's own axes (left-right from symmetric vertex pairs, up-down along the
    mid-line, forward as their cross product) with the mesh depth scaled by
    :data:`MESH_DEPTH_GAIN`. Stable under expressions (only rigid structure is used).
    68-point schemes: yaw from the nose tip's sideways offset from the eye centre (2D), roll
    from the eyes, pitch NaN.

    yaw > 0: the nose points towards the image's right; pitch > 0: the face looks up;
    roll > 0: the face is turned clockwise in the image. Good to roughly +-10 degrees: enough
    to flag profile views, not a head-pose measurement.
    """
    scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
    p = np.asarray(points, np.float64)
    if scheme.n_points == 68:
        right, left = scheme.outer_eye_corners
        d = p[..., left, :2] - p[..., right, :2]
        iod = np.linalg.norm(d, axis=-1)
        ex = d / np.where(iod > 0, iod, 1.0)[..., None]
        centre = p[..., 36:48, :2].mean(axis=-2)
        offset = np.sum((p[..., 30, :2] - centre) * ex, axis=-1)
        yaw = np.degrees(np.arctan(offset / (NOSE_DEPTH_RATIO * np.where(iod > 0, iod, np.nan))))
        roll = np.degrees(np.arctan2(d[..., 1], d[..., 0]))
        return np.stack([yaw, np.full_like(yaw, np.nan), roll], axis=-1).astype(np.float32)
    p = p.copy()
    p[..., 2] *= MESH_DEPTH_GAIN
    pairs = np.array(MESH_SYMMETRIC_PAIRS)
    x_axis = (p[..., pairs[:, 1], :] - p[..., pairs[:, 0], :]).sum(axis=-2)  # towards the subject's left
    y_axis = p[..., MESH_MIDLINE[-1], :] - p[..., MESH_MIDLINE[0], :]  # forehead -> chin
    x_axis = x_axis / (np.linalg.norm(x_axis, axis=-1, keepdims=True) + 1e-12)
    y_axis = y_axis - x_axis * np.sum(y_axis * x_axis, axis=-1, keepdims=True)
    y_axis = y_axis / (np.linalg.norm(y_axis, axis=-1, keepdims=True) + 1e-12)
    back = np.cross(x_axis, y_axis)  # into the head (away from the camera when frontal)
    yaw = np.degrees(np.arctan2(-back[..., 0], back[..., 2]))
    pitch = np.degrees(np.arcsin(np.clip(back[..., 1], -1, 1)))
    roll = np.degrees(np.arctan2(x_axis[..., 1], x_axis[..., 0]))
    return np.stack([yaw, pitch, roll], axis=-1).astype(np.float32)
