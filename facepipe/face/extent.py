"""Where a face lies in an image: its box, its size, and which points an outline encloses.

Vertices are 2D pixel coordinates ``(x, y)`` of a face's mesh (or any of its parts), pixel
centres at integers (the convention of :mod:`facepipe.render.barycentric` and
:mod:`facepipe.composite.matte`). The face's *size* is sqrt of the area of its vertices'
bounding box: the unit in which the matte's erode and feather, the warp's margin and work grid,
the transfer's feather and the donor crops' margin are given. (The inter-ocular distance that
analysis and tracking use as a face's size is another measure.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) frame pixels, half-open: columns x0..x1-1


def finite_points(vertices) -> torch.Tensor:
    """(M,2) float32: the (x, y) of the rows of ``vertices`` (...,>=2) whose x and y are finite."""
    v = torch.as_tensor(vertices).float()[..., :2].reshape(-1, 2)
    return v[torch.isfinite(v).all(1)]


def bbox_scale(vertices) -> float:
    """The face size: sqrt of the area (px^2) of the bounding box of ``vertices`` (...,>=2)
    (non-finite rows left out; each side at least 1 px; 1.0 when no row is finite)."""
    v = finite_points(vertices)
    if len(v) == 0:
        return 1.0
    return float((v.amax(0) - v.amin(0)).clamp_min(1.0).prod().sqrt())


def face_box(vertices: Sequence[torch.Tensor], margin_px: float, size: tuple[int, int]) -> Box:
    """Integer box (x0, y0, x1, y1) (half-open) around all ``vertices`` ((N,2) each) grown by
    ``margin_px``, clipped to the frame ``size`` (H, W)."""
    v = torch.cat([torch.as_tensor(x).float().reshape(-1, 2) for x in vertices])
    H, W = size
    x0 = max(0, math.floor(float(v[:, 0].min()) - margin_px))
    y0 = max(0, math.floor(float(v[:, 1].min()) - margin_px))
    x1 = min(W, math.ceil(float(v[:, 0].max()) + margin_px) + 1)
    y1 = min(H, math.ceil(float(v[:, 1].max()) + margin_px) + 1)
    return (x0, y0, max(x0, x1), max(y0, y1))


def square_around(box, grow: float = 1.25) -> tuple[float, float, float]:
    """(cx, cy, side) of the square around a tracked box (x0, y0, x1, y1), its longer side grown
    by ``grow``: the face crop of contact sheets and of the deblur windows."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return (x0 + x1) / 2, (y0 + y1) / 2, grow * max(x1 - x0, y1 - y0)


def points_in_polygon(points: torch.Tensor, polygon: torch.Tensor) -> torch.Tensor:
    """(P,) bool: which of ``points`` (P,2) lie inside the closed ``polygon`` (K,2), an ordered
    loop (even-odd rule; :func:`facepipe.composite.matte.polygon_mask` is the same test on a
    raster's pixel centres)."""
    a, b = polygon[None], polygon.roll(-1, 0)[None]
    x, y = points[:, None, 0], points[:, None, 1]
    ay, by = a[..., 1], b[..., 1]
    straddle = (ay > y) != (by > y)
    t = (y - ay) / torch.where(by == ay, torch.ones_like(by), by - ay)
    xc = a[..., 0] + t * (b[..., 0] - a[..., 0])
    return ((straddle & (x < xc)).sum(1) % 2) == 1
