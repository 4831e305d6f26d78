"""Geometric re-render: a dense backward warp of the actor's own pixels from the source mesh to the
edited mesh of a frame.

Inputs are the 2D projections (pixels, ``(x, y)``, pixel centres at integers as in
:mod:`facepipe.render.barycentric`) of one frame's fitted mesh, ``src`` (N,2), and of the same mesh
with edited expression, ``dst`` (N,2). The output pixel ``p`` of the edited frame shows the source
pixel ``p + flow(p)``; ``flow`` is the *backward displacement* field (2,h,w) over a box around the
face, exactly 0 where the frame is untouched. It is built at a reduced resolution (``work_px``
pixels across the face) and upsampled bilinearly:

- on the edited mesh: the per-vertex displacement ``src - dst`` interpolated with the edited
  mesh's barycentrics (z-buffered with per-vertex depth, so a turned head's far side loses);
- inside the holes of the mesh that are :class:`Region` s (the mouth interior inside the inner lip
  loop, the eyes inside the lid loops): a rigid motion (rotation + translation, no scale: teeth
  and eyeballs do not grow when the lips stretch or the lids move) fitted to the region's anchor
  vertices (the inner-lip loop for the mouth; the two corners for each eye, so a lid raise does
  not drag the gaze). It holds on the region's core: the pixels at least ``band`` inside the
  edited outline whose rigid source position is at least ``band`` inside the source outline.
  Between the core and the outline the field is free (below), so it joins the lips / lids without
  a seam: where the edited opening reaches beyond the source's (a mouth opened or widened, a
  raised lid: no source pixels to show), the source interior near its outline is stretched across
  the gap, and :attr:`WarpField.fill` reports the share of the opening so filled;
- elsewhere (that band inside each region, and the skin outside the mesh out to the box edge,
  which lies ``margin`` beyond the meshes): a membrane (harmonic) interpolation that is 0 at
  the box edge (:func:`facepipe.render.membrane.harmonic_fill`), so the displacement decays
  smoothly and the face boundary does not tear.

Fold-over is prevented in three steps: the edit is limited per vertex (displacements of vertices
of triangles that would flip or collapse are Laplacian-smoothed, :func:`limit_foldover`); where
the field still folds (its Jacobian determinant, checked on every cell of the work grid, which
bounds it over the bilinear upsampling, is below ``min_det``: at region cores, thin lips, a turned
head's silhouette) the field is relaxed locally (those pixels handed to the membrane); only if
that fails is the whole edit scaled down. :attr:`WarpField.smoothed`, ``repaired`` and
``edit_scale`` (1 = the full edit) report what was done.

Everything is torch on the device of the vertices (on the CPU the rasteriser and the membrane
sweeps run as compiled loops: :func:`facepipe.render.barycentric.use_kernel`); :func:`apply_warp`
samples frames with ``grid_sample`` inside the box only and copies every pixel whose displacement
is 0 bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
import torch
import torch.nn.functional as F

from facepipe.composite.matte import polygon_mask
from facepipe.face import topology as topo
from facepipe.face.extent import Box, bbox_scale, face_box, points_in_polygon
from facepipe.render.barycentric import box_to_grid, interpolate, rasterize_barycentric, use_kernel
from facepipe.render.membrane import harmonic_fill

_SNAP_PX = 1e-3  # displacements below this (pixels) are exactly 0: invisible, and keeps pixels exact


@dataclass(frozen=True)
class Region:
    """A hole of the mesh rendered as a rigid piece (the mouth interior, an eye).

    loop: ordered closed loop of vertex indices bounding it; anchor: the vertices the rigid motion
    is fitted to (None: the loop); band: width of the transition between the rigid core and the
    outline, as a fraction of the region's source size (its bounding-box diagonal), at least one
    pixel of the work grid.
    """

    name: str
    loop: tuple[int, ...]
    anchor: tuple[int, ...] | None = None
    band: float = 0.08

    def __post_init__(self):
        if len(self.loop) < 3:
            raise ValueError(f"region {self.name}: a loop needs at least 3 vertices")


#: The mouth interior, inside the inner lip contour (:data:`facepipe.face.topology.LIP_INNER_LOOP`).
MOUTH = Region("mouth", topo.LIP_INNER_LOOP)
#: The eyes, inside the lid margins (:data:`facepipe.face.topology.EYE_LOOP_R` / ``EYE_LOOP_L``),
#: moving with their corners.
EYE_R = Region("eye_r", topo.EYE_LOOP_R, anchor=(topo.EYE_OUTER_R, topo.EYE_INNER_R))
EYE_L = Region("eye_l", topo.EYE_LOOP_L, anchor=(topo.EYE_OUTER_L, topo.EYE_INNER_L))
#: The regions of the 468-vertex FaceMesh topology (used by default when N == 468).
FACEMESH_REGIONS: tuple[Region, ...] = (MOUTH, EYE_R, EYE_L)


@dataclass
class WarpField:
    """A frame's backward warp.

    box: (x0, y0, x1, y1) frame pixels the warp touches (half-open; empty for the identity);
    flow: (2,y1-y0,x1-x0) float32 backward displacement (dx, dy) in pixels: output pixel (x, y)
    shows source pixel (x + dx, y + dy); exactly 0 where the frame is untouched.
    edit_scale: the factor the edit was scaled by to prevent fold-over (1 = the full edit);
    smoothed: how many vertices had their displacement smoothed to prevent fold-over;
    repaired: how many work-grid pixels of the field were relaxed to remove folds;
    fill: per region, the share (0..1) of the edited opening whose rigid source position lies
    outside the source opening (by more than half a pixel), so it shows the source interior
    stretched: 0 when the source covers it (the mouth opened or widened beyond the source's > 0).
    """

    box: Box
    flow: torch.Tensor
    edit_scale: float = 1.0
    smoothed: int = 0
    repaired: int = 0
    fill: dict[str, float] = field(default_factory=dict)

    @property
    def is_identity(self) -> bool:
        return self.flow.numel() == 0 or not bool(self.flow.any())

    def filled(self, min_share: float = 0.02) -> tuple[str, ...]:
        """Regions whose edited opening reaches beyond the source's on more than ``min_share``."""
        return tuple(k for k, v in self.fill.items() if v > min_share)

    @property
    def mouth_filled(self) -> bool:
        """The edited mouth opens beyond the source's (on more than 2% of it): the gap shows the
        source interior stretched, a candidate for appearance transfer."""
        return self.fill.get("mouth", 0.0) > 0.02

    def full(self, size: tuple[int, int]) -> torch.Tensor:
        """(2,H,W) the flow over a whole frame of ``size`` (zeros outside the box)."""
        out = torch.zeros(2, *size, device=self.flow.device, dtype=self.flow.dtype)
        x0, y0, x1, y1 = self.box
        if x1 > x0 and y1 > y0:
            out[:, y0:y1, x0:x1] = self.flow
        return out


# ----------------------------------------------------------------------------- fold-over limiter


def _area2(v: torch.Tensor, tris: torch.Tensor) -> torch.Tensor:
    """(...,F) twice the signed areas of triangles (F,3) of vertices (...,N,2)."""
    a, b, c = v[..., tris[:, 0], :], v[..., tris[:, 1], :], v[..., tris[:, 2], :]
    e1, e2 = b - a, c - a
    return e1[..., 0] * e2[..., 1] - e2[..., 0] * e1[..., 1]


def _active(src: torch.Tensor, tris: torch.Tensor, depth=None, min_facing: float = 0.3):
    """Orientation-normalised source areas (F,) and the triangles (F,) bool the limiter guards:
    front-facing (the majority orientation), not edge-on (> 2% of the median area) and, given
    per-vertex depth (N,), seen at most at a grazing angle (projected / true area > min_facing)."""
    a = _area2(src, tris)
    sgn = 1.0 if float(a.sum()) >= 0 else -1.0
    a = a * sgn
    med = a.abs().median() if a.numel() else a.new_tensor(0.0)
    active = a > 0.02 * med
    if depth is not None:
        v3 = torch.cat([src, torch.as_tensor(depth, device=src.device).float().reshape(-1, 1)], 1)
        p0, p1, p2 = v3[tris[:, 0]], v3[tris[:, 1]], v3[tris[:, 2]]
        true2 = torch.linalg.cross(p1 - p0, p2 - p0, dim=1).norm(dim=1)
        active &= a > min_facing * true2
    return a, active


def _violations(src, delta, tris, a_src, active, min_ratio, slack, alpha=1.0):
    sgn = 1.0 if float(_area2(src, tris).sum()) >= 0 else -1.0
    a = _area2(src + alpha * delta, tris) * sgn
    return active & (a < min_ratio * a_src - slack)


def limit_foldover(
    src: torch.Tensor,
    dst: torch.Tensor,
    triangles: torch.Tensor,
    min_area_ratio: float = 0.1,
    smooth_iters: int = 30,
    slack_px: float = 0.5,
    depth: torch.Tensor | None = None,
    min_facing: float = 0.3,
) -> tuple[torch.Tensor, float, int]:
    """Limit an edit so that no triangle of the mesh flips or collapses.

    src, dst: (N,2) pixels; triangles: (F,3). A guarded triangle (front-facing in ``src`` and not
    edge-on) may not shrink below ``min_area_ratio`` of its source area (a flip is a negative
    ratio), give or take ``slack_px`` square pixels (a fold smaller than that cannot be seen, and
    edge-on slivers flip under tiny edits). With ``depth`` (N,) (of either mesh, same pixel scale),
    triangles seen at a grazing angle (projected area < ``min_facing`` of the true area: a turned
    head's silhouette, the side of the nose) are not guarded: they fold behind their neighbours,
    which the z-buffer resolves, and the field check of :func:`warp_field` catches the rest.
    First the displacement ``dst - src`` of the vertices of offending triangles is pulled
    towards its neighbours' mean (Laplacian smoothing, up to ``smooth_iters`` rounds); what still
    offends is resolved by scaling the whole displacement down.

    Returns (dst_limited (N,2), edit_scale in [0,1], number of vertices smoothed).
    """
    src = torch.as_tensor(src).float()
    dst = torch.as_tensor(dst, device=src.device).float()
    tris = torch.as_tensor(triangles, device=src.device).long().reshape(-1, 3)
    delta = dst - src
    if tris.numel() == 0 or not bool(delta.any()):
        return dst, 1.0, 0
    a_src, active = _active(src, tris, depth, min_facing)
    slack = 2.0 * slack_px  # in units of twice the area
    bad = _violations(src, delta, tris, a_src, active, min_area_ratio, slack)
    touched = torch.zeros(len(src), dtype=torch.bool, device=src.device)
    if bool(bad.any()) and smooth_iters > 0:
        e = torch.cat([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
        e = torch.cat([e, e.flip(1)])
        deg = torch.zeros(len(src), device=src.device).index_add_(0, e[:, 0], torch.ones(len(e), device=src.device))
        for _ in range(smooth_iters):
            sel = torch.zeros(len(src), dtype=torch.bool, device=src.device)
            sel[tris[bad].reshape(-1)] = True
            nb = torch.zeros_like(delta).index_add_(0, e[:, 0], delta[e[:, 1]]) / deg.clamp_min(1)[:, None]
            delta = torch.where(sel[:, None], 0.5 * delta + 0.5 * nb, delta)
            touched |= sel
            bad = _violations(src, delta, tris, a_src, active, min_area_ratio, slack)
            if not bool(bad.any()):
                break
    scale = 1.0
    if bool(bad.any()):
        scale = _max_alpha(src, delta, tris, a_src, active, min_area_ratio, slack)
    return src + scale * delta, scale, int(touched.sum())


def _max_alpha(src, delta, tris, a_src, active, min_ratio, slack, steps: int = 32, bisect: int = 16) -> float:
    """Largest alpha in [0,1] with no violation along src + t * delta for all t <= alpha."""
    sgn = 1.0 if float(_area2(src, tris).sum()) >= 0 else -1.0
    a, b, c = (src[tris[:, k]] for k in range(3))
    da, db, dc = (delta[tris[:, k]] for k in range(3))
    e1, e2, d1, d2 = b - a, c - a, db - da, dc - da

    def cross(u, v):
        return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]

    # signed area (x2) along the path is the quadratic c0 + c1 t + c2 t^2
    c0, c1, c2 = cross(e1, e2) * sgn, (cross(e1, d2) + cross(d1, e2)) * sgn, cross(d1, d2) * sgn

    def ok(t: float) -> bool:
        return not bool((active & (c0 + c1 * t + c2 * t * t < min_ratio * a_src - slack)).any())

    lo = 0.0
    for k in range(1, steps + 1):
        t = k / steps
        if not ok(t):
            hi = t
            for _ in range(bisect):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if ok(mid) else (lo, mid)
            return lo
        lo = t
    return 1.0


# ----------------------------------------------------------------------------- field


def jacobian_det(flow: torch.Tensor, spacing: tuple[float, float] = (1.0, 1.0)) -> torch.Tensor:
    """Smallest Jacobian determinant of the backward map ``p -> p + flow(p)`` per grid cell.

    flow: (2,h,w) displacement in pixels on a grid whose samples are ``spacing`` = (sx, sy) pixels
    apart. Evaluated at the four corners of each cell, which bounds it over the cell for the
    bilinear interpolation of the flow. Returns (h-1,w-1), normalised so the identity gives 1.
    """
    sx, sy = spacing
    fx, fy = flow[0], flow[1]
    h, w = fx.shape
    xx = fx[:, 1:] - fx[:, :-1] + sx  # d map_x / d column   (h,w-1)
    yx = fy[:, 1:] - fy[:, :-1]  # d map_y / d column
    xy = fx[1:] - fx[:-1]  # d map_x / d row        (h-1,w)
    yy = fy[1:] - fy[:-1] + sy
    dets = []
    for r in (0, 1):
        for c in (0, 1):
            a, b = xx[r : h - 1 + r], yx[r : h - 1 + r]
            cc, d = xy[:, c : w - 1 + c], yy[:, c : w - 1 + c]
            dets.append(a * d - cc * b)
    return torch.stack(dets).amin(0) / (sx * sy)


def rigid_fit(p: torch.Tensor, q: torch.Tensor):
    """Rotation + translation q ~ R (p - cp) + cq (least squares). p, q: (K,2). -> cp, cq, R (2,2)."""
    cp, cq = p.mean(0), q.mean(0)
    a, b = p - cp, q - cq
    s = (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum()
    c = (a * b).sum()
    th = torch.atan2(s, c) if float(s.abs() + c.abs()) > 0 else s.new_tensor(0.0)
    R = torch.stack([torch.stack([th.cos(), -th.sin()]), torch.stack([th.sin(), th.cos()])])
    return cp, cq, R


def distance_to_loop(pts: torch.Tensor, poly: torch.Tensor) -> torch.Tensor:
    """(P,) distance of points (P,2) to the closed polyline (K,2)."""
    a, e = poly[None], (poly.roll(-1, 0) - poly)[None]
    r = pts[:, None] - a
    t = ((r * e).sum(-1) / (e * e).sum(-1).clamp_min(1e-12)).clamp(0.0, 1.0)
    return (r - t[..., None] * e).norm(dim=-1).amin(1)


def region_backward(src: torch.Tensor, dst: torch.Tensor, region: Region, pts: torch.Tensor) -> torch.Tensor:
    """(P,2) the source positions of frame points ``pts`` (P,2) of an edited region under the
    region's rigid motion (fitted to its anchor vertices of the source and edited meshes (N,2));
    the points themselves where the region does not move."""
    dev = src.device
    loop = torch.as_tensor(region.loop, device=dev).long()
    anchor = loop if region.anchor is None else torch.as_tensor(region.anchor, device=dev).long()
    if not bool((dst[loop] - src[loop]).any()) and not bool((dst[anchor] - src[anchor]).any()):
        return pts
    cp, cq, R = rigid_fit(src[anchor], dst[anchor])
    return (pts - cq) @ R + cp  # R^T (p - cq) + cp (row vectors)


def _region_flow(src, dst, region: Region, pts: torch.Tensor, min_band: float):
    """For frame points ``pts`` (P,2) inside an edited region: the rigid backward displacement
    (P,2), which of them are its core (P,) bool, and the share of them with no source pixels."""
    loop = torch.as_tensor(region.loop, device=src.device).long()
    ls, ld = src[loop], dst[loop]
    back = region_backward(src, dst, region, pts)
    ext = ls.amax(0) - ls.amin(0)
    band = max(min_band, region.band * float(ext.norm()))
    in_src = points_in_polygon(back, ls)
    d_src = distance_to_loop(back, ls)
    core = in_src & (d_src > band) & (distance_to_loop(pts, ld) > band)
    outside = ~in_src & (d_src > 0.5)
    share = float(outside.float().mean()) if len(pts) else 0.0
    return back - pts, core, share


def warp_field(
    src: torch.Tensor,
    dst: torch.Tensor,
    triangles: torch.Tensor,
    size: tuple[int, int],
    depth: torch.Tensor | None = None,
    regions: Sequence[Region] | None = None,
    margin: float = 0.12,
    work_px: float = 96.0,
    limit: bool = True,
    min_area_ratio: float = 0.1,
    min_det: float = 0.05,
    repair_iters: int = 8,  # 4 rounds were too few for a 45-degree turn with the calibrated rig
) -> WarpField:
    """The backward warp that re-renders a frame from its source mesh to its edited mesh.

    src, dst: (N,2) float pixels (x, y) of the frame's source and edited mesh; triangles: (F,3)
    int; size: the frame (H, W); depth: (N,) per-vertex depth of the edited mesh, smaller =
    nearer (None: no z-buffer); regions: holes rendered as rigid pieces (None: the FaceMesh
    mouth and eyes when N == 468, else none; ``()`` for none).
    margin: the displacement decays to 0 over at least this fraction of the face size (sqrt of
    the vertices' bounding-box area) beyond the meshes, and over at least twice the largest
    vertex displacement. work_px: the face size in pixels of the grid the field is built on
    (then upsampled bilinearly; never above full resolution). limit: prevent fold-over (see
    :func:`limit_foldover`; ``min_area_ratio``), then relax the field where its Jacobian
    determinant is below ``min_det`` (up to ``repair_iters`` rounds, each freeing a wider
    neighbourhood to the membrane), and if that is not enough scale the edit down until it is.
    Returns a :class:`WarpField`.
    """
    src = torch.as_tensor(src).float()
    dev = src.device
    dst = torch.as_tensor(dst, device=dev).float()
    tris = torch.as_tensor(triangles, device=dev).long().reshape(-1, 3)
    if regions is None:
        regions = FACEMESH_REGIONS if len(src) == topo.N_VERTICES else ()
    delta = dst - src
    empty = WarpField((0, 0, 0, 0), torch.zeros(2, 0, 0, device=dev), fill={r.name: 0.0 for r in regions})
    if not bool(delta.any()):
        return empty
    fsize = bbox_scale(torch.cat([src, dst]))
    margin_px = max(margin * fsize, 2.0 * float(delta.norm(dim=1).max()), 2.0)
    box = face_box([src, dst], margin_px, size)
    x0, y0, x1, y1 = box
    Hb, Wb = y1 - y0, x1 - x0
    if Hb < 2 or Wb < 2:
        return empty
    scale = min(1.0, work_px / fsize)
    h, w = max(2, math.ceil(Hb * scale)), max(2, math.ceil(Wb * scale))
    spacing = (Wb / w, Hb / h)
    zero_sides = (x0 > 0, y0 > 0, x1 < size[1], y1 < size[0])
    # frame coordinates of the work grid's pixel centres
    gx = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) * spacing[0] - 0.5 + x0
    gy = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) * spacing[1] - 0.5 + y0

    slack = 0.5 * spacing[0] * spacing[1]  # half a work pixel: finer folds are not resolved anyway
    dst_l, edit_scale, smoothed = (limit_foldover(src, dst, tris, min_area_ratio, slack_px=slack, depth=depth) if limit else (dst, 1.0, 0))
    repaired = 0
    for attempt in range(8):
        alpha = 0.75**attempt if attempt < 7 else 0.0
        d_edit = src + (dst_l - src) * alpha
        flow_w, fixed, fill = _work_flow(src, d_edit, tris, depth, regions, box, (h, w), gx, gy, zero_sides)
        if not limit:
            break
        flow_w, repaired, ok = _repair_folds(flow_w, fixed, spacing, zero_sides, min_det, repair_iters)
        if ok:
            break
    edit_scale *= alpha
    flow = F.interpolate(flow_w[None], size=(Hb, Wb), mode="bilinear", align_corners=False)[0]
    flow.masked_fill_((flow.abs() < _SNAP_PX).all(0, keepdim=True), 0.0)
    return WarpField(box, flow.contiguous(), edit_scale=edit_scale, smoothed=smoothed, repaired=repaired, fill=fill)


def _repair_folds(flow, fixed, spacing, zero_sides, min_det, iters):
    """Relax the field around cells whose Jacobian determinant is below ``min_det``: free the
    pixels there (and a growing neighbourhood) and re-solve the membrane from the rest.
    Returns (flow, number of work pixels freed, whether the field is now fold-free: every
    determinant >= ``min_det``, or after the last round at least > 0)."""
    freed = torch.zeros_like(fixed)
    for r in range(iters + 1):
        det = jacobian_det(flow, spacing)
        bad = det < min_det
        if not bool(bad.any()):
            return flow, int(freed.sum()), True
        if r == iters:
            break
        px = F.pad(bad[None, None].float(), (1, 1, 1, 1))
        g = 2**r - 1  # grow the freed patch quickly: 0, 1, 3, 7 pixels
        # cell -> its corners, grown by g: a (2g+2)^2 max filter, separable (rows, then columns)
        px = F.max_pool2d(px, (1, 2 * g + 2), stride=1, padding=(0, g))
        px = F.max_pool2d(px, (2 * g + 2, 1), stride=1, padding=(g, 0))[0, 0] > 0
        px = px[: flow.shape[1], : flow.shape[2]]
        freed |= px & fixed
        fixed = fixed & ~px
        flow = harmonic_fill(flow, fixed, zero_sides, iters=4 * (2 * g + 3), warm=True)
    # still below min_det somewhere: a strong local stretch is acceptable, a fold is not
    return flow, int(freed.sum()), bool((det > 0).all())


def _work_flow(src, dst, tris, depth, regions, box, size, gx, gy, zero_sides):
    """The backward displacement (2,h,w) on the work grid, the pixels it holds (h,w) bool, and the
    regions' fill shares."""
    vg = box_to_grid(dst, box, size)
    raster = rasterize_barycentric(vg, tris, size, depth)
    value = interpolate(src - dst, tris, raster)  # (2,h,w) pixels
    covered = raster.mask
    fixed = covered.clone()
    fill = {}
    spacing = max(float(gx[1] - gx[0]), float(gy[1] - gy[0]))
    for region in regions:
        m = (polygon_mask(vg[list(region.loop)], size)[0] > 0.5) & ~covered
        if not bool(m.any()):
            fill[region.name] = 0.0
            continue
        iy, ix = m.nonzero(as_tuple=True)
        pts = torch.stack([gx[ix], gy[iy]], 1)
        d, core, fill[region.name] = _region_flow(src, dst, region, pts, min_band=spacing)
        value[:, iy, ix] = d.T
        fixed[iy[core], ix[core]] = True
    return harmonic_fill(value, fixed, zero_sides), fixed, fill


# ----------------------------------------------------------------------------- application


def apply_warp(frames: torch.Tensor, fields: WarpField | Sequence[WarpField], mode: str = "bicubic") -> torch.Tensor:
    """Re-render frames with their warps.

    frames: (T,C,H,W) any dtype (float sampled as is; integer types sampled in float32 and
    rounded); fields: one :class:`WarpField` for all frames, or one per frame. Pixels outside a
    field's box, and inside it where its flow is 0, are copied bit for bit. mode: ``bicubic``
    (default: bilinear sampling at half-pixel offsets halves the fine detail, and the face came
    out at 0.82x the source's Laplacian sharpness), with the detail it still loses given back by
    :func:`restore_cubic_detail`, or ``bilinear``. Returns (T,C,H,W).
    """
    T, _, H, W = frames.shape
    if isinstance(fields, WarpField):
        fields = [fields] * T
    if len(fields) != T:
        raise ValueError(f"{len(fields)} warp fields for {T} frames")
    out = frames.clone()
    for t, f in enumerate(fields):
        if f.is_identity:
            continue
        x0, y0, x1, y1 = f.box
        flow = f.flow.to(frames.device, torch.float32)
        pad = math.ceil(float(flow.abs().max())) + 2
        cx0, cy0 = max(0, x0 - pad), max(0, y0 - pad)
        cx1, cy1 = min(W, x1 + pad), min(H, y1 + pad)
        crop = frames[t : t + 1, :, cy0:cy1, cx0:cx1]
        crop = crop if crop.is_floating_point() else crop.float()
        ch, cw = cy1 - cy0, cx1 - cx0
        # the source positions (h,w) in crop pixels
        px = torch.arange(x0 - cx0, x1 - cx0, device=frames.device, dtype=torch.float32)[None, :] + flow[0]
        py = torch.arange(y0 - cy0, y1 - cy0, device=frames.device, dtype=torch.float32)[:, None] + flow[1]
        grid = torch.stack([px * (2.0 / max(1, cw - 1)) - 1.0, py * (2.0 / max(1, ch - 1)) - 1.0], -1)[None].to(crop.dtype)
        s = F.grid_sample(crop, grid, mode=mode, padding_mode="border", align_corners=True)[0]
        if mode == "bicubic":
            s = restore_cubic_detail(s, px, py)
        if not frames.is_floating_point():
            info = torch.iinfo(frames.dtype)
            s = s.round().clamp(info.min, info.max).to(frames.dtype)
        keep = (flow == 0).all(0)
        torch.where(keep, frames[t, :, y0:y1, x0:x1], s, out=out[t, :, y0:y1, x0:x1])
    return out


#: Gain of :func:`restore_cubic_detail` at a half-pixel offset. The least-squares inverse of
#: Keys' response is 0.22 fitted up to 0.75 Nyquist and 0.42 up to 0.9 (how much footage carries
#: up there varies). On the warped part of 12 shared clips the Laplacian sharpness was 0.65-0.93x
#: the source's without it; 0.25 / 0.3 / 0.35 give 0.83-1.08 / 0.87-1.11 / 0.91-1.15x (median
#: 1.01 at 0.3): 0.3 keeps the worst loss and the worst over-sharpening about equally small.
CUBIC_DETAIL_GAIN = 0.3
#: Gain per unit of magnification (1/step - 1) along an axis, and its cap (reached at 1.6x): see
#: :func:`restore_cubic_detail`. Magnifying crops of 4 shared clips along one axis kept
#: 0.88 / 0.80 / 0.70 / 0.58x their Laplacian sharpness at 1.05 / 1.1 / 1.2 / 1.35x without it;
#: 2.5 keeps 0.98 / 0.97 / 0.96 / 0.89x (3 gives 1.0 up to 1.2x, over-sharpening soft clips).
STRETCH_DETAIL_GAIN = 2.5
STRETCH_DETAIL_MAX = 1.5


def restore_cubic_detail(sampled: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Give back the fine detail bicubic sampling at fractional positions, and magnification, take away.

    sampled: (C,h,w) the bicubic (Keys, a = -0.75) samples taken at frame positions x, y (h,w).
    Away from whole pixels Keys' kernel is a low-pass (at half a pixel it keeps half the
    amplitude at 0.8 Nyquist), so the warped face lost sharpness wherever the warp moved it.
    Where the warp magnifies the source along an axis (source positions less than a pixel apart:
    raised brows stretch the lids and forehead), the source's finest detail lands at lower
    frequencies and the stretched skin looks soft. Per axis, an unsharp mask with the [1,2,1]/4
    blur and gain ``CUBIC_DETAIL_GAIN * sin^2(pi * fraction)`` (0 at whole pixels, the shape of
    the inverse response's fit over fractions) plus ``STRETCH_DETAIL_GAIN * (1/step - 1)``
    (capped at ``STRETCH_DETAIL_MAX``; 0 where the warp does not magnify) restores it (on the
    CPU the unsharp mask runs as a compiled loop, :func:`_unsharp_kernel`). Returns (C,h,w).
    """
    out = sampled
    for pos, dim in ((x, -1), (y, -2)):
        if out.shape[dim] < 3:
            continue
        gain = CUBIC_DETAIL_GAIN * torch.sin(math.pi * (pos - pos.floor())) ** 2
        gain = gain + _magnification(pos, dim).sub(1.0).mul(STRETCH_DETAIL_GAIN).clamp(0.0, STRETCH_DETAIL_MAX)
        if use_kernel(out) and out.dtype == torch.float32:
            if out is sampled:  # a copy to update in place from here on
                out = sampled.clone(memory_format=torch.contiguous_format)
            _unsharp_kernel(out.numpy(), gain.contiguous().numpy(), dim == -1)
            continue
        pad = F.pad(out[None], (1, 1, 0, 0) if dim == -1 else (0, 0, 1, 1), mode="replicate")[0]
        n = out.shape[dim]
        side = pad.narrow(dim, 0, n) + pad.narrow(dim, 2, n)
        out = out + gain * (0.5 * out - 0.25 * side)  # out - blur(out), blur = [1,2,1]/4
    return out


@numba.njit(cache=True, nogil=True)
def _unsharp_kernel(x, gain, along_rows):
    """One axis of :func:`restore_cubic_detail` in place on the CPU: x (C,h,w) float32 plus
    gain (h,w) float32 times (x - [1,2,1]/4 blur of x) along each row (``along_rows``) or
    column, edges replicated; the same float32 operations, in the same order, as the tensor ops.
    ``prev`` keeps the neighbour's value from before its update."""
    C, h, w = x.shape
    half, quarter = np.float32(0.5), np.float32(0.25)
    if along_rows:
        for c in range(C):
            for i in range(h):
                prev = x[c, i, 0]
                for j in range(w):
                    v = x[c, i, j]
                    nxt = x[c, i, j + 1] if j < w - 1 else v
                    x[c, i, j] = v + gain[i, j] * (half * v - quarter * (prev + nxt))
                    prev = v
    else:
        prev = np.empty(w, np.float32)
        for c in range(C):
            prev[:] = x[c, 0]
            for i in range(h):
                for j in range(w):
                    v = x[c, i, j]
                    nxt = x[c, i + 1, j] if i < h - 1 else v
                    x[c, i, j] = v + gain[i, j] * (half * v - quarter * (prev[j] + nxt))
                    prev[j] = v


def _magnification(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """(h,w) 1 / the step of the sample positions ``pos`` (h,w) along ``dim`` (central
    differences, one-sided at the ends): > 1 where the warp magnifies the source."""
    n = pos.shape[dim]
    step = torch.empty_like(pos)
    if dim == -1:
        step[:, 1:-1] = (pos[:, 2:] - pos[:, :-2]) / 2
        step[:, 0], step[:, -1] = pos[:, 1] - pos[:, 0], pos[:, n - 1] - pos[:, n - 2]
    else:
        step[1:-1] = (pos[2:] - pos[:-2]) / 2
        step[0], step[-1] = pos[1] - pos[0], pos[n - 1] - pos[n - 2]
    return 1.0 / step.clamp_min(0.25)


def warp_frames(
    frames: torch.Tensor,
    src: torch.Tensor,
    dst: torch.Tensor,
    triangles: torch.Tensor,
    depth: torch.Tensor | None = None,
    **options,
) -> tuple[torch.Tensor, list[WarpField]]:
    """Warp each frame from its source mesh to its edited mesh.

    frames: (T,C,H,W); src, dst: (T,N,2) pixels; triangles: (F,3); depth: (T,N) of the edited
    meshes or None; options: as :func:`warp_field`. Returns (frames (T,C,H,W), fields).
    """
    T, _, H, W = frames.shape
    fields = [
        warp_field(src[t], dst[t], triangles, (H, W), None if depth is None else depth[t], **options) for t in range(T)
    ]
    return apply_warp(frames, fields), fields
