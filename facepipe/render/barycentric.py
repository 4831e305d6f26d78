"""Barycentric rasterisation of a 2D triangle mesh, with a z-buffer, in pure torch.

Conventions (the same as :mod:`facepipe.composite.matte`): vertices are 2D pixel coordinates
``(x, y)`` of the raster, pixel ``[i, j]`` is the point ``x = j, y = i`` (pixel centres at
integers); a pixel belongs to a triangle when its centre lies inside it, edges included, so
neighbouring triangles leave no cracks. Depth follows mediapipe FaceMesh: smaller z is nearer the
camera, so where triangles overlap (a turned head: the nose in front of the far cheek) the one
with the smallest interpolated depth at the pixel wins.

The raster is usually a crop: :func:`box_to_grid` maps frame pixels into a ``(h, w)`` grid laid
over a box of the frame (possibly at reduced resolution), and :func:`grid_to_box` back.

:func:`facepipe.composite.matte.rasterize_triangles` (coverage only) is ``tri >= 0`` of
:func:`rasterize_barycentric` without depth; it could be built on this module.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

_BUDGET = 1 << 20  # candidate pixel tests per chunk (bounds memory: ~20 floats per candidate)

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) frame pixels, half-open: columns x0..x1-1


class Raster(NamedTuple):
    """tri: (H,W) int64 triangle index per pixel, -1 where no triangle covers it;
    bary: (H,W,3) float32 barycentric weights of the triangle's 3 vertices (0 outside);
    depth: (H,W) float32 interpolated depth (+inf outside)."""

    tri: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(H,W) bool: pixels covered by the mesh."""
        return self.tri >= 0


def rasterize_barycentric(
    vertices: torch.Tensor,
    triangles: torch.Tensor,
    size: tuple[int, int],
    depth: torch.Tensor | None = None,
) -> Raster:
    """Per-pixel triangle index and barycentric weights of a 2D mesh, z-buffered.

    vertices: (N,2) float pixels (x, y) in the raster's coordinates; triangles: (F,3) int vertex
    indices, either winding; size: (H, W); depth: (N,) per-vertex depth, smaller = nearer (None:
    all at the same depth; overlaps are then resolved by the highest triangle index).
    Degenerate triangles (zero area) cover nothing. Runs on the device of ``vertices``.
    Returns a :class:`Raster`.
    """
    H, W = int(size[0]), int(size[1])
    v = torch.as_tensor(vertices).float()
    dev = v.device
    tri_all = torch.as_tensor(triangles, device=dev).long().reshape(-1, 3)
    z_v = torch.zeros(len(v), device=dev) if depth is None else torch.as_tensor(depth, device=dev).float().reshape(-1)
    out_tri = torch.full((H * W,), -1, dtype=torch.long, device=dev)
    out_bary = torch.zeros(H * W, 3, device=dev)
    out_z = torch.full((H * W,), float("inf"), device=dev)
    if tri_all.numel() == 0 or H * W == 0:
        return Raster(out_tri.view(H, W), out_bary.view(H, W, 3), out_z.view(H, W))

    p = v[tri_all]  # (F,3,2)
    lo = p.min(1).values.ceil().clamp_min(0)
    hi = torch.minimum(p.max(1).values.floor(), torch.tensor([W - 1.0, H - 1.0], device=dev))
    ext = (hi - lo + 1).clamp_min(0)
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    area2 = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]
    keep = (ext[:, 0] > 0) & (ext[:, 1] > 0) & (area2.abs() > 1e-12)
    ids = keep.nonzero().squeeze(1)
    if ids.numel() == 0:
        return Raster(out_tri.view(H, W), out_bary.view(H, W, 3), out_z.view(H, W))
    ext = ext[ids].long()
    order = (ext[:, 0] * ext[:, 1]).argsort()
    ids, ext = ids[order], ext[order]
    ext_cpu = ext.cpu().tolist()

    cand_pix, cand_tri, cand_bary, cand_z = [], [], [], []
    i, n = 0, len(ids)
    while i < n:
        # grow the chunk while (triangles x its largest bbox) stays under the budget
        bw, bh = ext_cpu[i]
        j = i + 1
        while j < n:
            nbw, nbh = max(bw, ext_cpu[j][0]), max(bh, ext_cpu[j][1])
            if (j + 1 - i) * nbw * nbh > _BUDGET:
                break
            bw, bh, j = nbw, nbh, j + 1
        t = ids[i:j]
        pc, loc, a2 = p[t], lo[t], area2[t]
        gx = loc[:, 0, None, None] + torch.arange(bw, device=dev, dtype=v.dtype).view(1, 1, -1)  # (f,1,bw)
        gy = loc[:, 1, None, None] + torch.arange(bh, device=dev, dtype=v.dtype).view(1, -1, 1)  # (f,bh,1)
        # edge functions: w_k is the signed area opposite vertex k (times 2), normalised by area
        ws = []
        for k in range(3):
            a, b = pc[:, (k + 1) % 3], pc[:, (k + 2) % 3]
            ex, ey = (b[:, 0] - a[:, 0])[:, None, None], (b[:, 1] - a[:, 1])[:, None, None]
            ws.append((ex * (gy - a[:, 1, None, None]) - ey * (gx - a[:, 0, None, None])) / a2[:, None, None])
        w = torch.stack(torch.broadcast_tensors(*ws), -1)  # (f,bh,bw,3)
        inside = (w >= 0).all(-1) & (gx < W) & (gy < H)
        fi, yi, xi = inside.nonzero(as_tuple=True)
        if fi.numel():
            wb = w[fi, yi, xi]
            wb = wb / wb.sum(-1, keepdim=True)
            cand_pix.append(((loc[fi, 1] + yi) * W + (loc[fi, 0] + xi)).long())
            cand_tri.append(t[fi])
            cand_bary.append(wb)
            cand_z.append((wb * z_v[tri_all[t[fi]]]).sum(-1))
        i = j
    if not cand_pix:
        return Raster(out_tri.view(H, W), out_bary.view(H, W, 3), out_z.view(H, W))
    pix, tri, bary, z = (torch.cat(c) for c in (cand_pix, cand_tri, cand_bary, cand_z))
    # z-buffer: nearest depth per pixel, then (ties, e.g. shared edges) the highest triangle id
    out_z.scatter_reduce_(0, pix, z, reduce="amin")
    win = z <= out_z[pix]
    out_tri.scatter_reduce_(0, pix[win], tri[win], reduce="amax")
    sel = win & (tri == out_tri[pix])
    out_bary[pix[sel]] = bary[sel]
    return Raster(out_tri.view(H, W), out_bary.view(H, W, 3), out_z.view(H, W))


def interpolate(attributes: torch.Tensor, triangles: torch.Tensor, raster: Raster) -> torch.Tensor:
    """Per-vertex attributes interpolated over a raster.

    attributes: (N,C) float; triangles: (F,3) the raster's triangles; raster: from
    :func:`rasterize_barycentric`. Returns (C,H,W), exactly 0 where no triangle covers a pixel
    (and exactly 0 wherever the three attributes are 0).
    """
    attr = torch.as_tensor(attributes).float()
    tris = torch.as_tensor(triangles, device=attr.device).long().reshape(-1, 3)
    H, W = raster.tri.shape
    out = torch.zeros(H, W, attr.shape[1], device=attr.device, dtype=attr.dtype)
    m = raster.tri >= 0
    if bool(m.any()):
        corner = attr[tris[raster.tri[m]]]  # (P,3,C)
        out[m] = (raster.bary[m].unsqueeze(-1) * corner).sum(1)
    return out.permute(2, 0, 1).contiguous()


def box_to_grid(points: torch.Tensor, box: Box, size: tuple[int, int]) -> torch.Tensor:
    """Frame pixels (...,2) -> coordinates in a (h, w) grid laid over ``box`` (pixel centres align
    the way ``F.interpolate(..., align_corners=False)`` does)."""
    x0, y0, x1, y1 = box
    h, w = size
    pts = torch.as_tensor(points).float()
    sx, sy = w / (x1 - x0), h / (y1 - y0)
    return torch.stack([(pts[..., 0] - x0 + 0.5) * sx - 0.5, (pts[..., 1] - y0 + 0.5) * sy - 0.5], -1)


def grid_to_box(points: torch.Tensor, box: Box, size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`box_to_grid`: grid coordinates (...,2) -> frame pixels."""
    x0, y0, x1, y1 = box
    h, w = size
    pts = torch.as_tensor(points).float()
    sx, sy = w / (x1 - x0), h / (y1 - y0)
    return torch.stack([(pts[..., 0] + 0.5) / sx - 0.5 + x0, (pts[..., 1] + 0.5) / sy - 0.5 + y0], -1)
