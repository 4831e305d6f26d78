"""The render stage of the synthesis pass: frames in, frames with the edited face out.

Per frame the edit changes (:class:`~facepipe.render.geometry.FrameMeshes`):

1. warp: the actor's own pixels move from the source mesh to the edited mesh
   (:func:`facepipe.render.warp.warp_field`, fold-free, rigid mouth interior and eyes);
2. appearance (optional): donor regions from the actor's own frames are laid over the warped
   face (an :class:`AppearanceSource`, e.g. :class:`facepipe.render.transfer` through
   ``facepipe.stages.appearance``), with the plate's motion blur re-applied to them (``shutter``);
3. composite: a soft matte from the edited mesh, stabilised over time, and a Laplacian blend
   with grain matched to the plate. Pixels outside the matte are the decoded source pixels.

Frames the edit does not change are returned as decoded, bit for bit. The renderer keeps state
between chunks (matte stabiliser), so it must see the chunks in order.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from facepipe.composite import MatteStabilizer, composite, face_matte, reblur
from facepipe.composite.reblur import blur_vectors
from facepipe.composite.blend import composite_box
from facepipe.face.topology import outer_boundary
from facepipe.io.reader import FrameChunk
from facepipe.render.geometry import EditGeometry
from facepipe.render.warp import apply_warp, warp_field


Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) frame pixels, half-open


class AppearanceSource(Protocol):
    """Transferred appearance for one frame in the frame's edited geometry: ``(box, layer (3,h,w),
    alpha (1,h,w))`` over the box it touches, or None where nothing is transferred. ``pos`` is
    the frame's row in the shot arrays; ``dst`` (N,2) the edited mesh at the render scale;
    ``warped`` (3,H,W) the warped frame."""

    def __call__(self, warped: torch.Tensor, pos: int, dst: torch.Tensor) -> tuple[Box, torch.Tensor, torch.Tensor] | None: ...


@dataclass(frozen=True)
class RenderOptions:
    """shutter: degrees, for re-blurring transferred appearance with the plate's motion (180 =
    half the frame interval; 0 = none). grain: match the plate's grain on the new face.
    work_px: face size in pixels of the grid the warp is built on. matte_memory: how much of the
    previous frame's matte is kept (0 = none; steadies the edge over time)."""

    shutter: float = 180.0
    grain: bool = True
    work_px: float = 96.0
    matte_memory: float = 0.5


@dataclass
class RenderStats:
    """What the renderer did, for the edit report."""

    frames: int = 0
    edited: int = 0
    min_edit_scale: float = 1.0
    scaled_down: int = 0  # frames whose edit was scaled down to avoid fold-over
    repaired: int = 0  # frames whose warp needed local relaxation
    mouth_stretched: int = 0  # frames whose edited mouth opens beyond the source's
    transferred: int = 0  # frames with transferred appearance
    regions: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {
            "frames": self.frames,
            "edited": self.edited,
            "min_edit_scale": round(self.min_edit_scale, 3),
            "frames_scaled_down": self.scaled_down,
            "frames_repaired": self.repaired,
            "frames_mouth_stretched": self.mouth_stretched,
            "frames_transferred": self.transferred,
        }


class FaceRenderer:
    """A frame transform for :func:`facepipe.pipeline.synthesis.render_frames`.

    geometry: the shot's source and edited meshes; triangles: (F,3) of the mesh; velocity: (T,2)
    face motion px/frame at full resolution per shot row; scale: the render scale (frames decoded
    at that scale); appearance: transferred appearance or None (warp only); seed: grain noise.
    """

    def __init__(
        self,
        geometry: EditGeometry,
        triangles: np.ndarray,
        velocity: np.ndarray,
        options: RenderOptions = RenderOptions(),
        scale: float = 1.0,
        appearance: AppearanceSource | None = None,
        seed: int = 0,
    ):
        self.geometry = geometry
        self.triangles = torch.as_tensor(np.asarray(triangles, np.int64))
        outline = outer_boundary(np.asarray(triangles))
        # of the source and the edited mesh, concatenated as in __call__
        self.outlines = (outline, outline + geometry.model.n_vertices)
        self.velocity = np.nan_to_num(np.asarray(velocity, np.float32)) * scale
        self.options = options
        self.scale = scale
        self.appearance = appearance
        self.seed = seed
        self.stabilizer = MatteStabilizer(options.matte_memory)
        self.stats = RenderStats()

    def __call__(self, chunk: FrameChunk) -> torch.Tensor:
        """frames (T,3,H,W) float 0..1 -> (T,3,H,W) with the edited face."""
        frames = chunk.frames
        T, _, H, W = frames.shape
        self.stats.frames += T
        meshes = self.geometry.meshes(chunk.indices, self.scale)
        dev = frames.device
        tris = self.triangles.to(dev)
        layers, mattes, centres, rows = [], [], [], []
        for t in range(T):
            if not meshes.edit[t]:
                self.stabilizer.prev = None  # the matte history ends where the edit pauses
                continue
            src = torch.from_numpy(meshes.src[t]).to(dev)
            dst = torch.from_numpy(meshes.dst[t]).to(dev)
            depth = torch.from_numpy(meshes.depth[t]).to(dev)
            fld = warp_field(src, dst, tris, (H, W), depth, work_px=self.options.work_px)
            self._count_warp(fld)
            face = apply_warp(frames[t : t + 1], fld)[0]
            face = self._lay_appearance(face, int(meshes.positions[t]), dst)
            matte = face_matte(torch.cat([src, dst]), torch.cat([tris, tris + len(src)]), (H, W), outlines=self.outlines)
            layers.append(face)
            mattes.append(matte)
            centres.append(dst.mean(0))
            rows.append(t)
        if not rows:
            return frames
        self.stats.edited += len(rows)
        idx = torch.as_tensor(rows, device=dev)
        mattes = self.stabilizer(torch.stack(mattes), torch.stack(centres))
        out = frames.clone()
        box = composite_box(mattes)
        if box is None:
            return out
        # the composite only reads around the faces: crop once instead of carrying whole frames
        y0, y1, x0, x1 = box
        out[idx, :, y0:y1, x0:x1] = composite(
            torch.stack([layer[:, y0:y1, x0:x1] for layer in layers]), frames[idx, :, y0:y1, x0:x1],
            mattes[..., y0:y1, x0:x1], color=False, grain=self.options.grain, seed=self.seed,
            frame_indices=[int(chunk.indices[t]) for t in rows],
        ).to(frames.dtype)  # fmt: skip
        return out

    def _count_warp(self, fld) -> None:
        s = self.stats
        s.min_edit_scale = min(s.min_edit_scale, fld.edit_scale)
        s.scaled_down += fld.edit_scale < 1.0
        s.repaired += fld.repaired > 0
        s.mouth_stretched += fld.mouth_filled

    def _lay_appearance(self, face: torch.Tensor, pos: int, dst: torch.Tensor) -> torch.Tensor:
        """The warped face (3,H,W) with transferred appearance over it (in place), re-blurred
        with the plate's motion."""
        if self.appearance is None:
            return face
        got = self.appearance(face, pos, dst)
        if got is None:
            return face
        (x0, y0, x1, y1), layer, alpha = got
        self.stats.transferred += 1
        if self.options.shutter > 0:
            v = torch.from_numpy(self.velocity[pos : pos + 1]).to(face.device)
            # widen the box by the blur's reach, so the re-blur reads the face around it as before
            reach = math.ceil(float(blur_vectors(v, self.options.shutter).norm()) / 2) + 1
            H, W = face.shape[-2:]
            bx0, by0, bx1, by1 = max(0, x0 - reach), max(0, y0 - reach), min(W, x1 + reach), min(H, y1 + reach)
            canvas = face[:, by0:by1, bx0:bx1].to(layer.dtype, copy=True)
            wide = torch.zeros_like(canvas[:1])
            inner = (slice(None), slice(y0 - by0, y1 - by0), slice(x0 - bx0, x1 - bx0))
            canvas[inner], wide[inner] = layer, alpha
            layer = reblur(canvas[None], wide[None], v, self.options.shutter)[0]
            (x0, y0, x1, y1), alpha = (bx0, by0, bx1, by1), wide
        region = face[:, y0:y1, x0:x1]
        region.copy_(torch.lerp(region, layer.to(face.dtype), alpha.clamp(0, 1).to(face.dtype)))
        return face
