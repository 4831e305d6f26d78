"""A shot's training samples for the person-specific renderer, and the reference warp.

Each fitted frame of the shot gives one sample: its face crop (the target), the conditioning
maps of its tracked mesh (:mod:`facepipe.render.neural.conditioning`), the mesh in crop pixels,
the mesh's raster (for warping other frames into its geometry) and the fit's AUs. Training
input = a *reference* frame j warped into frame i's geometry (:func:`warp_reference`), so the
net must make frame i's expression from another expression's pixels (at inference the warp is
of the frame itself to the edited geometry).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from facepipe.render.barycentric import Raster
from facepipe.render.neural.conditioning import carry, crop_around, cut, mesh_maps, to_crop


@dataclass
class ShotSamples:
    """crops: (T,3,S,S) uint8 real face crops; maps: (T,C,S,S) uint8 conditioning x 255;
    vertices: (T,N,2) float32 mesh in crop px; tri: (T,S,S) int64 and bary: (T,S,S,3) float32
    the mesh's raster; au: (T,K) float32 fitted AUs; frame_index: (T,) source frames;
    train: (T,) bool (False: held out for validation)."""

    crops: torch.Tensor
    maps: torch.Tensor
    vertices: torch.Tensor
    tri: torch.Tensor
    bary: torch.Tensor
    au: torch.Tensor
    frame_index: np.ndarray
    train: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_index)


def to_byte(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def frame_sample(frame: torch.Tensor, landmarks: torch.Tensor, nmfc: torch.Tensor, triangles: torch.Tensor, size: int):
    """One frame (3,H,W) 0..1 and its tracked mesh (N,3) px (depth in the third column) -> (crop
    (3,S,S), maps (C,S,S), vertices (N,2) crop px, raster)."""
    crop = crop_around(landmarks[:, :2])
    v = to_crop(landmarks[:, :2].float(), crop, size)
    maps, raster = mesh_maps(v, landmarks[:, 2].float() * size / crop.side, nmfc, triangles, size)
    return cut(frame, crop, size), maps, v, raster


def collect_samples(frames: Iterable[tuple[int, torch.Tensor, torch.Tensor, np.ndarray]], nmfc: torch.Tensor,
                    triangles: torch.Tensor, size: int, holdout: int) -> ShotSamples:  # fmt: skip
    """:class:`ShotSamples` from ``(frame index, frame (3,H,W), landmarks (N,3), au (K,))``
    tuples in frame order; every ``holdout``-th sample is held out."""
    rows = [(i, *frame_sample(f, lm, nmfc, triangles, size), au) for i, f, lm, au in frames]
    if not rows:
        raise ValueError("no frames to make renderer samples from")
    index, crops, maps, verts, rasters, aus = zip(*rows)
    train = np.ones(len(rows), bool)
    train[holdout // 2::holdout] = False
    return ShotSamples(torch.stack([to_byte(c) for c in crops]), torch.stack([to_byte(m) for m in maps]),
                       torch.stack(verts), torch.stack([r.tri for r in rasters]), torch.stack([r.bary for r in rasters]),
                       torch.as_tensor(np.stack(aus), dtype=torch.float32), np.asarray(index, np.int64), train)


def warp_reference(samples: ShotSamples, target: int, reference: int, triangles: torch.Tensor) -> torch.Tensor:
    """(3,S,S) 0..1 the reference sample's crop moved into the target sample's mesh geometry
    (piecewise affine over the closed mesh; 0 where the target's mesh does not cover)."""
    raster = Raster(samples.tri[target], samples.bary[target], samples.tri[target].float())
    return carry(samples.crops[reference].float() / 255.0, samples.vertices[reference], raster, triangles)


def far_references(au: torch.Tensor, candidates: np.ndarray, share: float) -> list[np.ndarray]:
    """Per sample, the candidate samples (indices) in the ``share`` of ``candidates`` farthest
    from it in AU space: the references it trains with (other expressions on purpose, against
    learning to copy the warp)."""
    d = torch.cdist(au, au[torch.as_tensor(candidates)])  # (T,M)
    k = max(1, int(round(share * len(candidates))))
    far = d.topk(k, dim=1).indices.numpy()
    return [candidates[row] for row in far]
