"""Barycentric rasterisation of a 2D triangle mesh, with a z-buffer, in torch (on the CPU the
per-pixel loops are compiled with numba: the batched tensor ops are dominated by per-op overhead
on the small rasters of a face, and test every pixel of a chunk's largest bounding box).

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

import numba
import numpy as np
import torch

from facepipe.face.extent import Box

_BUDGET = 1 << 20  # candidate pixel tests per chunk (bounds memory: ~20 floats per candidate)


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
    Degenerate triangles (zero area) cover nothing. Runs on the device of ``vertices``: on the
    CPU as one compiled loop over the triangles' bounding boxes, elsewhere as batched tensor ops
    (the same raster). Returns a :class:`Raster`.
    """
    H, W = int(size[0]), int(size[1])
    v = torch.as_tensor(vertices).float()
    dev = v.device
    tri_all = torch.as_tensor(triangles, device=dev).long().reshape(-1, 3)
    z_v = torch.zeros(len(v), device=dev) if depth is None else torch.as_tensor(depth, device=dev).float().reshape(-1)
    out = Raster(
        torch.full((H, W), -1, dtype=torch.long, device=dev),
        torch.zeros(H, W, 3, device=dev),
        torch.full((H, W), float("inf"), device=dev),
    )
    if tri_all.numel() == 0 or H * W == 0:
        return out
    p = v[tri_all]  # (F,3,2)
    lo = p.min(1).values.ceil().clamp_min(0)
    hi = torch.minimum(p.max(1).values.floor(), torch.tensor([W - 1.0, H - 1.0], device=dev))
    ext = (hi - lo + 1).clamp_min(0).long()  # (F,2) bounding box size (columns, rows)
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    area2 = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]
    keep = (ext[:, 0] > 0) & (ext[:, 1] > 0) & (area2.abs() > 1e-12)
    ids = keep.nonzero().squeeze(1)
    if ids.numel() == 0:
        return out
    zt = z_v[tri_all]  # (F,3) the depth at each triangle's corners
    if use_kernel(v):
        _scan_kernel(p.numpy(), lo.long().numpy(), ext.numpy(), area2.numpy(), zt.numpy(), ids.numpy(),
                     out.tri.numpy(), out.bary.numpy(), out.depth.numpy())  # fmt: skip
    else:
        _scan_batched(p, lo, ext, area2, zt, ids, out)
    return out


def use_kernel(t: torch.Tensor) -> bool:
    """Whether the per-pixel work on tensor ``t`` runs as a compiled loop (numba) rather than as
    batched torch ops: on the CPU (a GPU wants the batched ops). The tests patch it (here and
    where it is imported) to check that both paths give the same results."""
    return t.device.type == "cpu"


@numba.njit(cache=True, nogil=True)
def _edge(p, t, k, gx, gy, a2):
    """Twice the signed area of the triangle pixel (gx, gy) forms with the edge of triangle t
    opposite its vertex k, over a2 (twice the triangle's area): the pixel's raw weight of k.
    The same float32 operations, in the same order, as :func:`_scan_batched`."""
    a, b = (k + 1) % 3, (k + 2) % 3
    ex, ey = p[t, b, 0] - p[t, a, 0], p[t, b, 1] - p[t, a, 1]
    return (ex * (gy - p[t, a, 1]) - ey * (gx - p[t, a, 0])) / a2


@numba.njit(cache=True, nogil=True)
def _scan_kernel(p, lo, ext, area2, zt, ids, out_tri, out_bary, out_z):
    """The CPU rasteriser: every pixel of the bounding box of each triangle of ``ids`` is tested
    and z-buffered in place (nearest depth, ties to the highest triangle index, as in
    :func:`_scan_batched`). p: (F,3,2) float32 corners; lo, ext: (F,2) int64 box corner (x, y)
    and size; area2: (F,) float32; zt: (F,3) float32 corner depths; ids: (K,) int64;
    out_tri (H,W) int64, out_bary (H,W,3) float32, out_z (H,W) float32."""
    for t in ids:
        for yi in range(ext[t, 1]):
            y = lo[t, 1] + yi
            gy = np.float32(y)
            for xi in range(ext[t, 0]):
                x = lo[t, 0] + xi
                gx = np.float32(x)
                w0 = _edge(p, t, 0, gx, gy, area2[t])
                w1 = _edge(p, t, 1, gx, gy, area2[t])
                w2 = _edge(p, t, 2, gx, gy, area2[t])
                if w0 < 0 or w1 < 0 or w2 < 0:
                    continue
                s = w0 + w1 + w2
                w0, w1, w2 = w0 / s, w1 / s, w2 / s
                z = w0 * zt[t, 0] + w1 * zt[t, 1] + w2 * zt[t, 2]
                if z < out_z[y, x] or (z == out_z[y, x] and t > out_tri[y, x]):
                    out_z[y, x], out_tri[y, x] = z, t
                    out_bary[y, x, 0], out_bary[y, x, 1], out_bary[y, x, 2] = w0, w1, w2


def _scan_batched(p, lo, ext, area2, zt, ids, out: Raster) -> None:
    """The tensor-op rasteriser (any device): the pixels of the triangles ``ids`` (K,), in chunks
    of triangles times their largest bounding box, z-buffered into ``out`` in place.
    p: (F,3,2) corners; lo: (F,2) float box corner (x, y); ext: (F,2) int64 box size;
    area2: (F,); zt: (F,3) corner depths; out: the (H,W) raster to fill."""
    H, W = out.tri.shape
    dev = p.device
    ext = ext[ids]
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
        gx = loc[:, 0, None, None] + torch.arange(bw, device=dev, dtype=p.dtype).view(1, 1, -1)  # (f,1,bw)
        gy = loc[:, 1, None, None] + torch.arange(bh, device=dev, dtype=p.dtype).view(1, -1, 1)  # (f,bh,1)
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
            cand_z.append((wb * zt[t[fi]]).sum(-1))
        i = j
    if not cand_pix:
        return
    pix, tri, bary, z = (torch.cat(c) for c in (cand_pix, cand_tri, cand_bary, cand_z))
    out_tri, out_bary, out_z = out.tri.view(-1), out.bary.view(-1, 3), out.depth.view(-1)
    # z-buffer: nearest depth per pixel, then (ties, e.g. shared edges) the highest triangle id
    out_z.scatter_reduce_(0, pix, z, reduce="amin")
    win = z <= out_z[pix]
    out_tri.scatter_reduce_(0, pix[win], tri[win], reduce="amax")
    sel = win & (tri == out_tri[pix])
    out_bary[pix[sel]] = bary[sel]


def interpolate(attributes: torch.Tensor, triangles: torch.Tensor, raster: Raster) -> torch.Tensor:
    """Per-vertex attributes interpolated over a raster.

    attributes: (N,C) float; triangles: (F,3) the raster's triangles; raster: from
    :func:`rasterize_barycentric`. Returns (C,H,W), exactly 0 where no triangle covers a pixel
    (and exactly 0 wherever the three attributes are 0).
    """
    attr = torch.as_tensor(attributes).float()
    tris = torch.as_tensor(triangles, device=attr.device).long().reshape(-1, 3)
    H, W = raster.tri.shape
    if use_kernel(attr):
        out = torch.zeros(attr.shape[1], H, W)
        _interpolate_kernel(attr.numpy(), tris.numpy(), raster.tri.numpy(), raster.bary.numpy(), out.numpy())
        return out
    out = torch.zeros(H, W, attr.shape[1], device=attr.device, dtype=attr.dtype)
    m = raster.tri >= 0
    if bool(m.any()):
        corner = attr[tris[raster.tri[m]]]  # (P,3,C)
        out[m] = (raster.bary[m].unsqueeze(-1) * corner).sum(1)
    return out.permute(2, 0, 1).contiguous()


@numba.njit(cache=True, nogil=True)
def _interpolate_kernel(attr, tris, tri, bary, out):
    """:func:`interpolate` on the CPU, into out (C,H,W) float32 zeros: attr (N,C) float32,
    tris (F,3) int64, tri (H,W) int64, bary (H,W,3) float32."""
    H, W = tri.shape
    for y in range(H):
        for x in range(W):
            t = tri[y, x]
            if t < 0:
                continue
            i0, i1, i2 = tris[t, 0], tris[t, 1], tris[t, 2]
            b0, b1, b2 = bary[y, x, 0], bary[y, x, 1], bary[y, x, 2]
            for c in range(attr.shape[1]):
                out[c, y, x] = b0 * attr[i0, c] + b1 * attr[i1, c] + b2 * attr[i2, c]


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
