"""The source and edited meshes of each frame, in frame pixels, for the re-render.

The source mesh is the tracker's landmarks (they sit on the actor's pixels more exactly than the
fit's projection). The edited mesh adds what the plan changes, measured on the fitted model in
the frame's own pose::

    dst = landmarks + P_t(identity + target_t . D) - P_t(identity + source_t . D)

so the fit's residual cancels and only the planned expression change moves pixels.

The lip gap is speech: the rig's emotional AUs (AU12 most) also part the inner lips a little, so
on a closed mouth "happy" alone opened it by 0.05 IOD. Each pair of facing inner-lip vertices
therefore keeps the source's gap vector and moves only with its edited midpoint
(:func:`keep_lip_gap`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facepipe.face import topology as tp
from facepipe.face.camera import project
from facepipe.face.model import FaceModel

#: Facing inner-lip vertices (upper, lower), right corner to left corner.
LIP_GAP_PAIRS = tuple(zip(tp.LIP_INNER_UPPER_ROW, tp.LIP_INNER_LOWER_ROW))


def keep_lip_gap(src: np.ndarray, dst: np.ndarray, pairs=LIP_GAP_PAIRS) -> np.ndarray:
    """dst (T,N,2) with each (upper, lower) pair re-spread about its edited midpoint by the
    source's gap vector (src (T,N,2)): the mouth opening and lip-gap shape stay the source's."""
    up, lo = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    out = dst.copy()
    mid = 0.5 * (dst[:, up] + dst[:, lo])
    half_gap = 0.5 * (src[:, up] - src[:, lo])
    out[:, up] = mid + half_gap
    out[:, lo] = mid - half_gap
    return out


@dataclass
class FrameMeshes:
    """Meshes of the frames of one chunk.

    positions: (T,) int rows of the shot arrays (fit / tracks / plan) for the chunk's frames;
    src, dst: (T,N,2) float32 pixels (x, y) of the source and edited mesh at the render scale;
    depth: (T,N) float32 depth of the edited mesh (smaller = nearer); edit: (T,) bool frames the
    edit changes (a face is tracked there and the plan's weight is above 0).
    """

    positions: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    depth: np.ndarray
    edit: np.ndarray


class EditGeometry:
    """Source and edited meshes of a shot, frame by frame.

    landmarks: (T,N,3) tracked pixels (NaN where no face); fit arrays as in
    :class:`~facepipe.face.fit.ShotFit` (rotation (T,3), translation (T,3), scale (T,), identity
    (V,3), source AUs (T,K)); target: (T,K) planned AUs; weight: (T,) plan weight;
    frame_index: (T,) source frame index of each row.
    """

    def __init__(self, model: FaceModel, landmarks, fit, target, weight, frame_index):
        self.model = model
        self.landmarks = np.asarray(landmarks, np.float32)
        self.fit = fit
        self.target = np.asarray(target, np.float32)
        self.weight = np.asarray(weight, np.float32)
        self.frame_index = np.asarray(frame_index, np.int64)

    def positions(self, indices) -> np.ndarray:
        """Rows of the shot arrays for source frame ``indices`` (-1 where the shot has none)."""
        idx = np.asarray(indices, np.int64)
        if len(self.frame_index) == 0:
            return np.full(len(idx), -1, np.int64)
        pos = np.searchsorted(self.frame_index, idx).clip(0, len(self.frame_index) - 1)
        return np.where(self.frame_index[pos] == idx, pos, -1)

    def meshes(self, indices, scale: float = 1.0) -> FrameMeshes:
        """:class:`FrameMeshes` for source frame ``indices`` at ``scale`` (frames resized by it)."""
        pos = self.positions(indices)
        n = self.model.n_vertices
        T = len(pos)
        src = np.zeros((T, n, 2), np.float32)
        dst = np.zeros((T, n, 2), np.float32)
        depth = np.zeros((T, n), np.float32)
        have = pos >= 0
        rows = pos[have]
        lm = self.landmarks[rows, :n] if len(rows) else np.zeros((0, n, 3), np.float32)
        tracked = np.isfinite(lm).all(axis=(1, 2)) if len(rows) else np.zeros(0, bool)
        edit = np.zeros(T, bool)
        edit[have] = tracked & (self.weight[rows] > 0)
        if len(rows):
            fit = self.fit
            pose = [torch.from_numpy(np.asarray(a, np.float32)[rows]) for a in (fit.rotation, fit.translation, fit.scale)]
            base = torch.from_numpy(self.model.shape(fit.identity, np.asarray(fit.au, np.float32)[rows]))
            moved = torch.from_numpy(self.model.shape(fit.identity, self.target[rows]))
            delta = (project(moved, *pose) - project(base, *pose)).numpy()  # (R,N,3) px
            lm = np.nan_to_num(lm)
            # pixel centres sit at integers: x -> (x + 0.5) * scale - 0.5
            src[have] = (lm[..., :2] + 0.5) * scale - 0.5
            dst[have] = (lm[..., :2] + delta[..., :2] + 0.5) * scale - 0.5
            if n == tp.N_VERTICES:
                dst[have] = keep_lip_gap(src[have], dst[have])
            depth[have] = (lm[..., 2] + delta[..., 2]) * scale
        return FrameMeshes(pos, src, dst, depth, edit)
