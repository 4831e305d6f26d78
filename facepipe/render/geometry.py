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

The edit's gain (:data:`EDIT_GAIN`): the plan's targets are AU intensities as the fit reads a
real face, and the edit should read back the same. But a change drawn on the actor's pixels reaches
the tracker only in part (FaceMesh smooths the cheeks, lids and brows it re-finds on a warped face),
and the fit then reads less again, so each AU's planned change ``target - source`` is scaled by its
gain before it moves pixels::

    dst = landmarks + P_t(shape(drawn_t)) - P_t(shape(source_t))
    drawn_t = source_t + g * (target_t - source_t), not below 0 where the AU relaxes

(the gain makes up for what the tracker misses of a change; relaxing an AU it must not carry the
face past the actor's rest pose: an actor's full brow raise relaxed by "happy" with AU1's gain 2
would otherwise be drawn as a frown.)

The forehead moves with the brows (:func:`forehead_follow`): FaceMesh holds its forehead
landmarks nearly still when a real brow rises (lp_d7's brow raise lifts the brows 0.045 IOD, the
forehead row above them 0.003-0.010), so the rig's brow AUs hardly move them, and a warp that
follows the rig alone pushes the brows into a static forehead (at 1E+2E the skin between brow and
the first forehead row shrank by half). On a real face the frontalis lifts the brow together with
the skin above it, which bunches towards the hairline. So the edited mesh's forehead vertices
take the model-space change of the brow below them, weighted from 1 at the brow line to 0 at the
mesh's top edge (the displacement reaches 0 where the face matte does, so nothing ghosts there).

The eye opens at both lids (:data:`EDIT_SHAPES`): the rig's AU5 lifts only the upper lid (the fit
cannot read lids finer than that, AUS.md), but a real surprise also drops the lower lid, by about as
much again (tracked on lp_d7's brow raise: upper lid +0.015, lower lid -0.016 to -0.023 IOD). The
edited mesh adds that drop to AU5's change, so "surprised" widens the eye instead of lifting its
upper edge alone. The fit never sees it (the rig is unchanged).

Gains were measured with ``benchmarks/expression_amplitudes.py`` (AU read back from a refit of
the edited clip / planned, median over clips; AUS.md, "Edit gains"). AUs not listed have gain 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facepipe.face import topology as tp
from facepipe.face.camera import project
from facepipe.face.facs import rig_index
from facepipe.face.model import FaceModel
from facepipe.face.rig import Handle, handle_field

#: FACS number -> gain of the AU's planned change on the edited mesh (both sides of a sided AU).
#: See the module docstring and AUS.md ("Edit gains") for how each was measured.
EDIT_GAIN: dict[int, float] = {1: 2.0, 2: 1.8, 4: 2.0, 5: 3.0, 6: 2.0, 12: 1.0, 15: 1.6}


#: Edit-only shape parts: FACS number -> handles (as the rig's, written for the subject's right
#: side and mirrored) whose displacement the edited mesh adds to the AU's drawn change. AU5: the lower
#: lid drops 1.3x the rig's upper-lid rise per unit (0.0137 IOD at the lid's middle) -- lp_d7's
#: tracked surprise, above. AU6: the upper lid follows the eye corners down (the rig's AU6, measured
#: on lp_d0's grin, drops the corners 0.0126 IOD and leaves the upper lid, so drawn alone it opened
#: the eye: tracked, happy edits' eyes were 4-16% wider than the source's on lp_d9 and lp_d19) and
#: descends 0.0044 more at its middle, as the tracked upper lid does in real grins relative to the
#: corners (lp_d0; their eye opening is 6-23% narrower on lp_d0, lp_d5, lp_d19, lp_s29). Small
#: sigma: the geodesic falloff must not reach the lower lid round the corners.
EDIT_SHAPES: dict[int, tuple[Handle, ...]] = {
    5: (Handle(tp.LOWER_LID_R, (0.0, -0.018, 0.0), 0.035, "arc"),),
    6: (Handle(tp.UPPER_LID_R, (0.0, -0.0125, 0.0), 0.02, "flat"), Handle(tp.UPPER_LID_R, (0.0, -0.0044, 0.0), 0.02, "arc")),
}


def edit_shapes(model: FaceModel, table: dict[int, tuple[Handle, ...]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The edit-only shape parts of ``model``'s AUs: columns (E,) int64 and displacements (E,V,3)
    float32 at intensity 1 (``table`` keyed by FACS number; default :data:`EDIT_SHAPES`)."""
    table = EDIT_SHAPES if table is None else table
    cols, shapes = [], []
    for num, sides in rig_index(model.au_names).items():
        for side, col in sides.items():
            handles = table.get(num, ())
            if not handles:
                continue
            on = ("R", "L") if side == "" else (side,)
            field = sum(handle_field(model.template, model.triangles, model.mirror, h, s) for h in handles for s in on)
            cols.append(col)
            shapes.append(field)
    n = model.n_vertices
    return np.array(cols, np.int64), np.array(shapes, np.float32).reshape(-1, n, 3)


def edit_gains(au_names, table: dict[int, float] | None = None) -> np.ndarray:
    """(K,) float32 gain of each rig AU column (``table`` keyed by FACS number; default
    :data:`EDIT_GAIN`; 1 for AUs it does not list)."""
    table = EDIT_GAIN if table is None else table
    out = np.ones(len(au_names), np.float32)
    for num, sides in rig_index(au_names).items():
        for col in sides.values():
            out[col] = table.get(num, 1.0)
    return out


def drawn_aus(source: np.ndarray, target: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """(T,K) the AUs the edited mesh is drawn with: source + gain * (target - source), where an AU
    relaxes (target < source) never below min(target, 0), the actor's rest pose."""
    drawn = source + gain * (target - source)
    return np.where(target < source, np.maximum(drawn, np.minimum(target, 0.0)), drawn).astype(np.float32)


@dataclass(frozen=True)
class SkinFollow:
    """Vertices that follow others: ``vertices`` (F,) take ``weight`` (F,) of the change of the
    blend of ``anchors`` (F,2) with ``mix`` (F,2) (rows sum to 1), the rest of their own."""

    vertices: np.ndarray
    anchors: np.ndarray
    mix: np.ndarray
    weight: np.ndarray

    def apply(self, delta: np.ndarray) -> np.ndarray:
        """delta (...,V,3) model-space change of the mesh -> the same with the followers moved."""
        if not len(self.vertices):
            return delta
        out = delta.copy()
        lead = (delta[..., self.anchors, :] * self.mix[:, :, None]).sum(-2)  # (...,F,3)
        w = self.weight[:, None]
        out[..., self.vertices, :] = (1.0 - w) * delta[..., self.vertices, :] + w * lead
        return out


def forehead_follow(template: np.ndarray, above: float = 0.02) -> SkinFollow:
    """The forehead vertices of ``template`` (V,3) (more than ``above`` over the brows' upper edge,
    :data:`~facepipe.face.topology.BROW_UPPER_R` / ``_L``, within its width plus the brow's
    thickness) following the brow line below them (linear in X between its two nearest vertices),
    with weight 1 at the brow line falling linearly to 0 at the mesh's top."""
    brow = np.array(tuple(reversed(tp.BROW_UPPER_R)) + tuple(tp.BROW_UPPER_L))  # subject's right -> left, by X
    bx, by = template[brow, 0], template[brow, 1]
    order = np.argsort(bx)
    brow, bx, by = brow[order], bx[order], by[order]
    top = float(template[:, 1].max())
    x, y = template[: tp.N_VERTICES, 0], template[: tp.N_VERTICES, 1]
    xc = np.clip(x, bx[0], bx[-1])
    line = np.interp(xc, bx, by)
    margin = 0.5 * float(np.diff(bx).mean())
    keep = (y > line + above) & (x >= bx[0] - margin) & (x <= bx[-1] + margin)
    verts = np.flatnonzero(keep)
    j = np.clip(np.searchsorted(bx, xc[verts]), 1, len(bx) - 1)
    t = ((xc[verts] - bx[j - 1]) / (bx[j] - bx[j - 1])).clip(0, 1)
    anchors = np.stack([brow[j - 1], brow[j]], 1)
    mix = np.stack([1 - t, t], 1)
    weight = ((top - y[verts]) / np.maximum(top - line[verts], 1e-6)).clip(0, 1)
    return SkinFollow(verts.astype(np.int64), anchors.astype(np.int64), mix.astype(np.float32), weight.astype(np.float32))


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
    edit changes (a face is tracked there and the plan's weight is above 0); au: (T,K) float32
    the AUs the edited mesh is drawn with (the neural renderer's code); irises: (T,10,2) float32
    pixels of the tracked irises at the render scale (:data:`~facepipe.face.topology.IRIS_R`, then
    ``IRIS_L``), NaN where the track has none (scheme ``mediapipe-468``, other topologies);
    source_depth: (T,N) float32 depth of the source mesh; source_au: (T,K) float32 the fitted AUs.
    """

    positions: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    depth: np.ndarray
    edit: np.ndarray
    au: np.ndarray
    irises: np.ndarray
    source_depth: np.ndarray
    source_au: np.ndarray


class EditGeometry:
    """Source and edited meshes of a shot, frame by frame.

    landmarks: (T,N,3) tracked pixels (NaN where no face); fit arrays as in
    :class:`~facepipe.face.fit.ShotFit` (rotation (T,3), translation (T,3), scale (T,), identity
    (V,3), source AUs (T,K)); target: (T,K) planned AUs; weight: (T,) plan weight;
    frame_index: (T,) source frame index of each row; gain: (K,) per-AU gain of the planned
    change (None: :func:`edit_gains` of the model's AUs).
    """

    def __init__(self, model: FaceModel, landmarks, fit, target, weight, frame_index, gain=None):
        self.model = model
        self.landmarks = np.asarray(landmarks, np.float32)
        self.fit = fit
        self.target = np.asarray(target, np.float32)
        self.weight = np.asarray(weight, np.float32)
        self.frame_index = np.asarray(frame_index, np.int64)
        self.gain = edit_gains(model.au_names) if gain is None else np.asarray(gain, np.float32)
        self.follow = forehead_follow(model.template) if model.n_vertices == tp.N_VERTICES else None
        self.shape_cols, self.shapes = edit_shapes(model) if model.n_vertices == tp.N_VERTICES else (np.zeros(0, np.int64), None)

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
        au = np.zeros((T, len(self.model.au_names)), np.float32)
        source_au = np.zeros_like(au)
        source_depth = np.zeros((T, n), np.float32)
        irises = np.full((T, len(tp.IRIS_R + tp.IRIS_L), 2), np.nan, np.float32)
        have = pos >= 0
        rows = pos[have]
        lm = self.landmarks[rows, :n] if len(rows) else np.zeros((0, n, 3), np.float32)
        tracked = np.isfinite(lm).all(axis=(1, 2)) if len(rows) else np.zeros(0, bool)
        edit = np.zeros(T, bool)
        edit[have] = tracked & (self.weight[rows] > 0)
        if len(rows):
            fit = self.fit
            pose = [torch.from_numpy(np.asarray(a, np.float32)[rows]) for a in (fit.rotation, fit.translation, fit.scale)]
            fitted_au = np.asarray(fit.au, np.float32)[rows]
            edited_au = drawn_aus(fitted_au, self.target[rows], self.gain)
            au[have], source_au[have] = edited_au, fitted_au
            base_np = self.model.shape(fit.identity, fitted_au)
            change = self.model.shape(fit.identity, edited_au) - base_np
            if len(self.shape_cols):
                drawn = edited_au[:, self.shape_cols] - fitted_au[:, self.shape_cols]  # (R,E)
                change = change + np.einsum("re,evc->rvc", drawn, self.shapes)  # BLAS-free, as FaceModel.shape
            if self.follow is not None:
                change = self.follow.apply(change)
            base = torch.from_numpy(base_np)
            moved = torch.from_numpy(base_np + change)
            delta = (project(moved, *pose) - project(base, *pose)).numpy()  # (R,N,3) px
            lm = np.nan_to_num(lm)
            # pixel centres sit at integers: x -> (x + 0.5) * scale - 0.5
            src[have] = (lm[..., :2] + 0.5) * scale - 0.5
            dst[have] = (lm[..., :2] + delta[..., :2] + 0.5) * scale - 0.5
            if n == tp.N_VERTICES:
                dst[have] = keep_lip_gap(src[have], dst[have])
                if self.landmarks.shape[1] > max(tp.IRIS_L):
                    irises[have] = (self.landmarks[rows][:, tp.IRIS_R + tp.IRIS_L, :2] + 0.5) * scale - 0.5
            depth[have] = (lm[..., 2] + delta[..., 2]) * scale
            source_depth[have] = lm[..., 2] * scale
        return FrameMeshes(pos, src, dst, depth, edit, au, irises, source_depth, source_au)
