"""Rigid head pose and the weak-perspective camera that maps model space to image pixels.

Model space: X towards the subject's left (image right in a frontal view), Y up, Z out of the
face towards the viewer; unit = the template's inter-ocular distance (outer eye corners).
Image space is the tracker's: x right, y down, z in the same pixel scale as x with smaller z
nearer the camera (mediapipe's convention). A pose is a rotation (axis-angle, radians), a scale
s (pixels per model unit) and a translation t (pixels):

    pixel = s * F @ R @ v + t,   F = diag(1, -1, -1)

Weak perspective (one scale per frame, no foreshortening across the face) matches how FaceMesh
itself reports landmarks: x, y in the image and z orthographically in the same scale.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

_FLIP = (1.0, -1.0, -1.0)


def rotvec_to_matrix(rotvec):
    """Rodrigues: rotvec (...,3) float tensor -> rotation matrices (...,3,3); smooth at 0."""
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)[..., None]  # (...,1,1)
    theta = torch.sqrt(theta2 + 1e-12)
    # Taylor expansions keep gradients finite at theta = 0.
    small = theta2 < 1e-6
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-12))
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(k)
    return eye + a * k + b * (k @ k)


def project(verts, rotvec, translation, scale):
    """Model-space vertices (T,V,3) -> image-space points (T,V,3) px.

    rotvec (T,3) radians, translation (T,3) px, scale (T,) px per model unit.
    """
    r = rotvec_to_matrix(rotvec)  # (T,3,3)
    cam = torch.einsum("tij,tvj->tvi", r, verts)
    flip = torch.tensor(_FLIP, dtype=verts.dtype, device=verts.device)
    return cam * (scale[:, None, None] * flip) + translation[:, None, :]


def similarity_align(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None):
    """Least-squares similarity dst ~ s * R @ src + t for batches (Umeyama, no reflection).

    src (V,3) or (T,V,3), dst (T,V,3), weights (V,) -> (R (T,3,3), s (T,), t (T,3)).
    """
    src = np.broadcast_to(src, dst.shape).astype(np.float64)
    dst = dst.astype(np.float64)
    w = np.ones(dst.shape[1]) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s = np.einsum("v,tvi->ti", w, src)
    mu_d = np.einsum("v,tvi->ti", w, dst)
    a = src - mu_s[:, None]
    b = dst - mu_d[:, None]
    cov = np.einsum("v,tvi,tvj->tij", w, b, a)
    u, sig, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    sig = sig * np.stack([np.ones_like(d), np.ones_like(d), d], -1)
    u = u * np.stack([np.ones_like(d), np.ones_like(d), d], -1)[:, None, :]
    r = u @ vt
    var = np.einsum("v,tvi->t", w, a * a)
    s = sig.sum(-1) / var
    t = mu_d - s[:, None] * np.einsum("tij,tj->ti", r, mu_s)
    return r, s, t


def image_to_camera(points: np.ndarray) -> np.ndarray:
    """Image-space points (...,3) px -> a Y-up, Z-towards-viewer frame (apply F; F is its own inverse)."""
    return points * np.asarray(_FLIP, points.dtype)


def matrix_to_rotvec(r: np.ndarray) -> np.ndarray:
    """Rotation matrices (...,3,3) -> axis-angle (...,3) radians."""
    shape = r.shape[:-2]
    return Rotation.from_matrix(r.reshape(-1, 3, 3)).as_rotvec().reshape(*shape, 3)
