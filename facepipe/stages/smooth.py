"""The smooth stage: temporal smoothing of the edit, so render noise does not flicker.

The edit of a frame is its delta from the plate, ``D_t = edited_t - plate_t`` (0 outside the
matte). Tracking noise, donor changes, resampling and grain make ``D_t`` wobble from frame to
frame where the face itself holds still. This stage replaces ``D_t`` (all of it but the finest
detail, below a Gaussian of ``detail_px``, which stays the frame's own so the face keeps its
sharpness) by a weighted mean of it and the deltas of the previous ``window`` frames, each
carried to the current frame along the face's own motion (a flow-guided temporal filter):

- motion: the tracked face mesh of frame ``t - k`` and of frame ``t``; a pixel of the current
  face reads the previous delta where the same mesh point was (barycentric interpolation of the
  vertices' displacement on a coarse grid, ``work_px`` across the face, upsampled; sampled with
  kornia's ``remap``);
- weight of a previous frame, per pixel: ``strength * exp(-(d / tolerance)^2)``, with ``d`` the
  absolute difference of the *plates* after the same alignment (mean over channels): where the
  source itself changed (speech, a blink, a head turn the mesh does not explain, a misaligned
  texture edge) the weight falls to 0 and the current delta stands, so real motion is not
  blurred and detail is not smeared;
- the result is laid in with the frame's matte: pixels outside it are not touched (bit for bit).

The window is finite and reads unsmoothed deltas (no recursion), so a frame's result depends
only on itself and the ``window`` frames before it: a chunk that starts with that many frames of
context gives the same frames as one long run. It is causal, so the preview can use it as is.
Everything is torch on the frames' device.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import kornia
import numpy as np
import torch
import torch.nn.functional as F

from facepipe import defaults
from facepipe.face.extent import Box, bbox_scale
from facepipe.face.model import load_model
from facepipe.pipeline.stage import FrameStage
from facepipe.render.barycentric import box_to_grid, interpolate, rasterize_barycentric
from facepipe.stages.composite import EditedChunk
from facepipe.stages.deblur import unchanged

class _Past(NamedTuple):
    """A previous frame: source index; mesh (N,2) px; box; delta and plate (3,h,w) over the box."""

    index: int
    mesh: torch.Tensor
    box: Box
    delta: torch.Tensor
    plate: torch.Tensor


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(C,h,w) blurred by a Gaussian of ``sigma`` px (replicated borders; none below 0.3 px)."""
    if sigma < 0.3:
        return x
    k = 2 * math.ceil(3.0 * sigma) + 1
    return kornia.filters.gaussian_blur2d(x[None], (k, k), (sigma, sigma), border_type="replicate")[0]


def mesh_flow(mesh: torch.Tensor, past_mesh: torch.Tensor, triangles: torch.Tensor, box: Box, work: tuple[int, int]):
    """Where each pixel of ``box`` was in the past frame: ``(dx, dy)`` (2,h,w) px, from the two
    meshes (N,2) px (barycentric on a ``work`` (h', w') grid, upsampled bilinearly), and (1,h,w)
    the share of the face mesh that covers each pixel (0..1)."""
    x0, y0, x1, y1 = box
    raster = rasterize_barycentric(box_to_grid(mesh, box, work), triangles, work)
    flow = interpolate(past_mesh - mesh, triangles, raster).to(mesh.device)
    stack = torch.cat([flow, raster.mask[None].to(flow.dtype)])[None]
    up = F.interpolate(stack, size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)[0]
    return up[:2], up[2:]


def sample_past(past: _Past, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The past frame's delta and plate (3,h,w) read at frame pixels ``x``, ``y`` (h,w), and
    (h,w) bool where those lie inside its box."""
    x0, y0, x1, y1 = past.box
    u, v = x - x0, y - y0
    inside = (u >= 0) & (u <= x1 - x0 - 1) & (v >= 0) & (v <= y1 - y0 - 1)
    both = torch.cat([past.delta, past.plate])[None]
    read = kornia.geometry.transform.remap(both, u[None], v[None], mode="bilinear", align_corners=True)[0]
    return read[:3], read[3:], inside


class EditSmoother:
    """The smooth stage's transform: :class:`EditedChunk` -> :class:`EditedChunk` (see the
    module doc). landmarks: (T,N,>=2) tracked px at full resolution, rows ``frame_index``;
    triangles (F,3) of the N-vertex mesh; scale: the frames' scale."""

    def __init__(self, landmarks, frame_index, triangles, scale: float, strength: float, window: int,
                 tolerance: float, detail_px: float, work_px: float):  # fmt: skip
        n = int(np.asarray(triangles).max()) + 1
        self.landmarks = np.asarray(landmarks, np.float32)[:, :n]
        self.rows = {int(f): r for r, f in enumerate(frame_index)}
        self.triangles = torch.as_tensor(np.asarray(triangles, np.int64))
        self.scale, self.strength, self.tolerance = scale, strength, tolerance
        self.detail_px, self.work_px = detail_px, work_px
        self.history: deque[_Past] = deque(maxlen=window)
        # (source index, the smoothed delta (3,h,w)) of the last frame smoothed
        self.last: tuple[int, torch.Tensor] | None = None
        #: frames smoothed, and the sum over them of the mean weight previous frames got on the face
        self.stats = {"frames": 0, "weight_sum": 0.0}

    def __call__(self, chunk: EditedChunk) -> EditedChunk:
        for t, index in enumerate(chunk.indices.tolist()):
            if chunk.mattes[t] is None:
                self.history.clear()
                self.last = None
                continue
            (y0, y1, x0, x1), matte = chunk.mattes[t]
            if chunk.held[t] and self.last is not None and self.last[0] == index - 1:
                delta = self.last[1]  # a repeat takes its predecessor's smoothed edit
                if self.history:
                    self.history[-1] = self.history[-1]._replace(index=index)
            else:
                delta = self._smoothed(chunk.frames[t], chunk.plate[t], (x0, y0, x1, y1), index)
            if delta is None:
                self.last = None
                continue
            crop = chunk.frames[t, :, y0:y1, x0:x1]
            plate = chunk.plate[t, :, y0:y1, x0:x1]
            crop.copy_(torch.where(matte > 0, (plate + delta).clamp(0.0, 1.0).to(crop.dtype), crop))
            self.last = (index, delta)
        return chunk

    def _mesh(self, index: int, device) -> torch.Tensor | None:
        row = self.rows.get(index)
        if row is None or not np.isfinite(self.landmarks[row]).all():
            return None
        mesh = (self.landmarks[row, :, :2] + 0.5) * self.scale - 0.5
        return torch.from_numpy(mesh).to(device)

    def _smoothed(self, edited, plate, box: Box, index: int) -> torch.Tensor | None:
        """(3,h,w) the smoothed delta of frame ``index`` over ``box``; None where the frame has no
        mesh (its history restarts)."""
        mesh = self._mesh(index, edited.device)
        if mesh is None or (self.history and self.history[-1].index != index - 1):
            self.history.clear()
        if mesh is None:
            return None
        x0, y0, x1, y1 = box
        plate = plate[:, y0:y1, x0:x1].float()
        delta = edited[:, y0:y1, x0:x1].float() - plate
        base = blur(delta, self.detail_px)  # the part smoothed; finer detail stays the frame's own
        smoothed = self._blend(base, plate, mesh, box) if self.history else base
        self.history.append(_Past(index, mesh, box, base, plate))
        return delta - base + smoothed

    def _blend(self, delta, plate, mesh, box: Box) -> torch.Tensor:
        """The weighted mean of the current delta (3,h,w) and the aligned previous ones."""
        x0, y0, x1, y1 = box
        h, w = y1 - y0, x1 - x0
        s = min(1.0, self.work_px / bbox_scale(mesh))
        work = (max(2, round(h * s)), max(2, round(w * s)))
        tris = self.triangles.to(delta.device)
        xs = torch.arange(x0, x1, device=delta.device, dtype=torch.float32)[None].expand(h, w)
        ys = torch.arange(y0, y1, device=delta.device, dtype=torch.float32)[:, None].expand(h, w)
        acc, total, on_face = delta.clone(), torch.ones_like(delta[:1]), None
        for past in self.history:
            flow, cover = mesh_flow(mesh, past.mesh, tris, box, work)
            d_past, p_past, inside = sample_past(past, xs + flow[0], ys + flow[1])
            diff = (plate - p_past).abs().mean(0, keepdim=True)
            weight = self.strength * torch.exp(-((diff / self.tolerance) ** 2)) * cover * inside[None]
            acc += weight * d_past
            total += weight
            on_face = cover if on_face is None else on_face
        self.stats["frames"] += 1
        self.stats["weight_sum"] += float(((total - 1.0) * on_face).sum() / on_face.sum().clamp_min(1e-6))
        return acc / total


@dataclass
class SmoothStage(FrameStage):
    """Temporal smoothing of the edit (see the module doc).

    Args:
        strength: 0..1 weight of a fully consistent previous frame (0 = off: frames pass).
        window: previous frames averaged with the current one.
        tolerance: absolute difference (0..1) of the aligned plates at which a previous frame's
            weight falls to 1/e of ``strength``.
        detail_px: detail finer than a Gaussian of this many pixels stays the current frame's
            (averaging it too took lp_d0's sharpness from 0.95x to 0.88x the source's).
        work_px: face size in pixels of the grid the face's motion is interpolated on.
    """

    name = "smooth"
    version = "1"
    frames_from = "composite"
    inputs = ("track",)

    strength: float = defaults.SMOOTH
    window: int = 2
    tolerance: float = 0.02
    detail_px: float = 1.0
    work_px: float = 64.0

    def open(self, ctx, inputs, scale):
        if self.strength <= 0:
            return unchanged
        tracks = inputs["track"]
        return EditSmoother(tracks.landmarks, tracks.frame_index, load_model().triangles, scale, self.strength,
                            self.window, self.tolerance, self.detail_px, self.work_px)  # fmt: skip
