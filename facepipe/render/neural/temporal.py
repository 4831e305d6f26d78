"""The neural renderer's change held steady from frame to frame.

The renderer draws each frame on its own, and what it adds (the *change* in the crop,
:meth:`~facepipe.render.neural.refine.NeuralRefiner.change`) wobbles where the face holds still:
the generator answers the frame's grain and sub-pixel differences with differently placed shading. The change of frame t is
replaced by the mean of it and the changes of up to ``window`` earlier frames, each carried into
frame t's crop along the face mesh (a pixel of frame t reads the earlier change where the same
mesh point was: the barycentric position of the pixel in t's mesh, mapped through the earlier
mesh). Where the earlier mesh does not cover, the pixel keeps fewer terms.

The mean reads the earlier frames' *own* changes, not their steadied ones (no recursion), so a
frame depends only on itself and the ``window`` frames before it: a farm chunk started that many
frames early gives the same frames as one long run. Nothing is carried across a shot cut (the
render node keeps only the changes since the shot began).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from facepipe.render.barycentric import Raster
from facepipe.render.neural.conditioning import carry

#: Earlier frames averaged into a frame's change. Measured with the edit-quality harness (first 40
#: frames, CPU renderers, render node 12), this constant 0 -> 4: flicker x source lp_d5 happy
#: 1.26 -> 1.20, sad 1.25 -> 1.17, lp_d18 happy 1.28 -> 1.22; warping error 1.69 -> 1.61,
#: 1.32 -> 1.24, 2.43 -> 2.29; P(target) unchanged (within 0.003).
WINDOW = 4


class FrameChange(NamedTuple):
    """One refined frame's change: index, the source frame; vertices (N,2) its edited mesh in
    its crop's pixels; change (3,S,S) in that crop."""

    index: int
    vertices: torch.Tensor
    change: torch.Tensor


def steady_change(change: torch.Tensor, raster: Raster, triangles: torch.Tensor, earlier: list[FrameChange]) -> torch.Tensor:
    """change (3,S,S) of a frame whose edited mesh's raster (S,S) is, averaged with the
    ``earlier`` frames' changes carried into its crop along the mesh
    (:func:`~facepipe.render.neural.conditioning.carry`) -> (3,S,S)."""
    total, count = change.clone(), torch.ones_like(change[:1])
    covered = raster.mask[None].float()
    for e in earlier:
        total += carry(e.change, e.vertices, raster, triangles)
        count += covered
    return total / count
