"""The neural renderer at edit time: warped faces refined through the actor's renderer.

Three steps, so that the render node can run the generator on many frames at once (a GPU needs
batches: one crop at a time leaves it idle) while the per-frame work stays on its worker threads:

1. :meth:`NeuralRefiner.prepare`, per frame, twice: crop the warped face around the edited mesh
   and render the edited mesh's conditioning maps (:class:`RefineInput`); the same for the
   source frame, its own mesh and its fitted AUs;
2. :meth:`NeuralRefiner.render_crops`, batched: the generator on the frames' inputs, at most
   :attr:`NeuralRefiner.batch` crops a call (:meth:`NeuralRefiner.changes` calls it);
3. :meth:`NeuralRefiner.changes`: per frame, what the renderer changes for the *edit*
   (:meth:`NeuralRefiner.change`); then :meth:`NeuralRefiner.paste`: add it (held steady over the frames
   before by :mod:`~facepipe.render.neural.temporal`) to the warped face, upsampled from the crop
   and feathered inside the mesh's matte.

The change is the generator's output less its input for the edited frame, *less the same for the
source frame* (carried along the mesh into the edited crop): a renderer does not rebuild even the
frame it is shown exactly (a small CPU one softens the brows, lashes and irises and shifts the
skin's colour), and that error, the same with or without the edit, would otherwise be pasted as
if it were the expression's new appearance. What stays is what the renderer draws differently
for the edited expression than for the source's. Measured on lp_d5 (first 40 frames, CPU
renderer): without it the renderer washed pink over the eyes and faded the brows, and P(target)
fell below the geometric edit's (happy 0.84 -> 0.57, sad 0.38 -> 0.28); with it, happy 0.79 and
sad 0.41, and the brows keep their dark.

The full-resolution detail of the actor's own warped pixels stays: the renderer adds what the warp cannot carry at
its own resolution, so a 96 px CPU renderer does not blur a 500 px face.

The change is low-passed first (a Gaussian of ``size / 48`` crop pixels): the finest part of a
per-frame GAN output flickers from frame to frame (measured on hdtf_aoc, sad: warping error
x1.79 of the source's without it, x1.38 with it, the geometric edit x1.35), while the appearance
it adds (shading of a raised brow, the eyes' whites) is coarser.

The lips and the mouth keep the warp (``keep_mouth``): their shape is the speech the plan locked,
and the actor's own mouth pixels carry it exactly, while the renderer trained with the
reference's mouth blanked redraws a mouth from its maps (measured: it lowered speech r, see
``benchmarks/results/edit_quality_neural.md``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from facepipe.composite.filters import gaussian_blur
from facepipe.face import topology as tp
from facepipe.render.barycentric import Raster
from facepipe.render.neural.conditioning import (
    MATTE,
    carry,
    Crop,
    hole_map,
    closed_triangles,
    crop_around,
    cut,
    mesh_maps,
    sample_at,
    template_coordinates,
    to_crop,
)
from facepipe.render.neural.config import RendererConfig
from facepipe.render.neural.precision import autocast, inference_dtype

#: Crops per generator call at edit time when none is given. A GPU needs large batches to be busy
#: at 256 px; on a CPU batching gains little (96 px, one thread: 4 crops a call 4-18% faster than
#: 1 over five runs, 16 within 6% of 1, 32 slower: ``benchmarks/results/refine_batch.md``), and
#: smaller groups let the render workers warp the next frames while the generator runs.
BATCH_CUDA, BATCH_CPU = 32, 4


class RefineInput(NamedTuple):
    """One face prepared for the generator (the edited one, or the source frame itself: a
    :class:`RefinePair`): crop, the square around its mesh in frame px; vertices (N,2) the mesh in
    crop px; inputs (3+C,S,S) the face's crop and the mesh's conditioning maps, on the CPU; au (K,)
    the AUs the mesh is drawn with; raster (S,S) of the mesh."""

    crop: Crop
    vertices: torch.Tensor
    inputs: torch.Tensor
    au: torch.Tensor
    raster: Raster


class RefinePair(NamedTuple):
    """A frame's two generator inputs: edited, the warped face on the edited mesh with the edited
    AUs; source, the frame itself on its own mesh with its fitted AUs."""

    edited: RefineInput
    source: RefineInput


class NeuralRefiner:
    """generator: a trained :class:`~facepipe.nn.face_renderer.FaceRendererNet` (eval mode, on its
    device); config: its :class:`RendererConfig`; template (N,3) and triangles (F,3) of the face
    model; keep_mouth: leave the lips and mouth to the warp; batch: at most this many crops per
    generator call (None: :data:`BATCH_CUDA` on CUDA, else :data:`BATCH_CPU`)."""

    def __init__(self, generator, config: RendererConfig, template, triangles, keep_mouth: bool = True,
                 batch: int | None = None):  # fmt: skip
        self.generator = generator
        self.keep_mouth = keep_mouth
        self.config = config
        self.nmfc = template_coordinates(template)
        self.triangles = closed_triangles(triangles)
        self.device = next(generator.parameters()).device
        self.batch = batch or (BATCH_CUDA if self.device.type == "cuda" else BATCH_CPU)

    def prepare(self, face: torch.Tensor, dst: torch.Tensor, depth: torch.Tensor, au: torch.Tensor) -> RefineInput:
        """The generator's input for ``face`` (3,H,W) on the mesh dst (N,2) px with depth (N,) px
        drawn with ``au`` (K,): the frame warped to the edited mesh with the edited AUs, or the
        source frame on its own mesh with its fitted AUs. Touches no refiner state (worker threads)."""
        S = self.config.size
        crop = crop_around(dst)
        v = to_crop(dst.float().cpu(), crop, S)
        maps, raster = mesh_maps(v, depth.float().cpu() * S / crop.side, self.nmfc, self.triangles, S)
        return RefineInput(crop, v, torch.cat([cut(face, crop, S).cpu(), maps]), au.float().cpu(), raster)

    @torch.no_grad()
    def render_crops(self, inputs: torch.Tensor, au: torch.Tensor) -> torch.Tensor:
        """Batched: inputs (B,3+C,S,S), au (B,K) -> faces (B,3,S,S) on the renderer's device (under
        autocast to :func:`~facepipe.render.neural.precision.inference_dtype`: fp16 on CUDA)."""
        with autocast(self.device.type, inference_dtype(self.device)):
            return self.generator(inputs.to(self.device), au.to(self.device)).float()

    def render(self, prepared: list[RefineInput]) -> list[torch.Tensor]:
        """The generator's faces (3,S,S), on the CPU, for ``prepared`` frames, in calls of at most
        :attr:`batch` crops."""
        out = []
        for s in range(0, len(prepared), self.batch):
            group = prepared[s:s + self.batch]
            faces = self.render_crops(torch.stack([p.inputs for p in group]), torch.stack([p.au for p in group]))
            out.extend(faces.cpu().unbind(0))
        return out

    def change(self, pair: RefinePair, rendered: torch.Tensor, rebuilt: torch.Tensor) -> torch.Tensor:
        """(3,S,S) in the edited crop: what the generator changes for the edit, ``rendered``
        (3,S,S, its output for ``pair.edited``) less the warped crop, less its change to the
        source frame (``rebuilt``, its output for ``pair.source``, less the source crop) carried
        along the mesh; 0 beyond the edited mesh (where there is no source to compare)."""
        edited, source = pair
        own_error = carry(rebuilt - source.inputs[:3], source.vertices, edited.raster, self.triangles)
        return (rendered - edited.inputs[:3] - own_error) * edited.raster.mask

    def changes(self, pairs: list[RefinePair]) -> list[torch.Tensor]:
        """Per frame of ``pairs`` its change (3,S,S) (:meth:`change`): the generator on both crops
        of every pair, in calls of at most :attr:`batch` crops."""
        out = self.render([crop for pair in pairs for crop in pair])
        return [self.change(pair, out[2 * k], out[2 * k + 1]) for k, pair in enumerate(pairs)]

    def paste(self, face: torch.Tensor, prepared: RefineInput, change: torch.Tensor) -> None:
        """Add to ``face`` (3,H,W), in place, the ``change`` (3,S,S) the generator made to its crop
        (:meth:`change`), low-passed and weighted by :meth:`_weight`. Touches no refiner state
        (worker threads)."""
        S = self.config.size
        change = gaussian_blur(change[None], S / 48, border="reflect")[0]
        self._add_residual(face, change * self._weight(prepared.inputs[3:], prepared.vertices), prepared.crop)

    def _weight(self, maps: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
        """(1,S,S) where the renderer's change applies: the matte feathered inward, less the lips
        (grown by a few crop pixels) when the mouth is kept."""
        S = maps.shape[-1]
        sigma = max(1.0, S / 64)
        matte = maps[MATTE:MATTE + 1]
        weight = gaussian_blur(matte[None], sigma, border="reflect")[0] * matte
        if self.keep_mouth:
            grow = 2 * round(S / 32) + 1
            lips = torch.nn.functional.max_pool2d(hole_map(vertices, tp.LIP_OUTER_LOOP, S)[None], grow, 1, grow // 2)
            weight = weight * (1 - gaussian_blur(lips, sigma, border="reflect")[0]) * (1 - lips[0])
        return weight

    @staticmethod
    def _add_residual(face: torch.Tensor, residual: torch.Tensor, crop) -> None:
        """Add a crop's residual (3,S,S) to the frame pixels it covers."""
        H, W = face.shape[-2:]
        half = crop.side / 2
        x0, y0 = max(0, math.floor(crop.cx - half)), max(0, math.floor(crop.cy - half))
        x1, y1 = min(W, math.ceil(crop.cx + half) + 1), min(H, math.ceil(crop.cy + half) + 1)
        if x1 <= x0 or y1 <= y0:
            return
        ys, xs = torch.meshgrid(torch.arange(y0, y1, dtype=torch.float32), torch.arange(x0, x1, dtype=torch.float32), indexing="ij")
        at = to_crop(torch.stack([xs, ys], -1), crop, residual.shape[-1])
        region = face[:, y0:y1, x0:x1]
        region.copy_((region + sample_at(residual, at).to(face)).clamp(0, 1))
