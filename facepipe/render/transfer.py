"""Appearance transfer from the actor's own frames: teeth, cheek bulge, folds and wrinkles that a
geometric warp cannot create, copied per facial region from donor frames of the same actor.

A warp (:mod:`facepipe.render.warp`) moves the actor's pixels to the edited mesh but never makes
new appearance: a smile warped onto a neutral face has no exposed teeth, no raised cheeks, no
nasolabial folds or crow's feet. Like Face2Face's mouth retrieval, appearance transfer looks for
frames of the shot (or of other shots of the same actor) that *show* the planned expression in
one facial region, warps their pixels into the current frame's edited geometry and hands the
renderer a colour-matched layer plus alpha to blend over the warped frame. Its parts:

- :mod:`facepipe.face.regions`: the facial regions (mouth, cheeks, eyes, brows) and the AUs that
  decide each one's donor;
- :mod:`facepipe.render.donors`: the pool of candidate donor frames and the donor crops;
- :mod:`facepipe.render.transfer_plan`: once per shot, on AU curves only (no pixels), each
  region's donors frame by frame (:func:`~facepipe.render.transfer_plan.plan_transfer`);
- this module: per frame, the pixels (:func:`render_transfer`).

:func:`render_transfer` (per frame, pixels): for every region with alpha > 0, the region's
triangles of the current *edited* mesh are rasterised inside their bounding box, the donor's
tracked landmarks are interpolated with those barycentrics and the donor crop is sampled there
(``grid_sample``): the donor's appearance in the current edited geometry. Its low frequencies
are replaced by the current (warped) frame's: ``donor * blur(current) / blur(donor)``
(:func:`low_frequency_gain`: normalised convolution inside the region's skin, a Gaussian of
``gain_sigma`` x region size, the gain clamped to ``[1/max_gain, max_gain]``), so only
mid/high-frequency appearance (teeth, folds, wrinkles) is transferred and the shading stays the
current frame's. Neighbouring regions overlap by a ring of triangles; inside the union of the
active regions, their layers and alphas are averaged with each region's own feathered coverage
as weight (so one region's layer cross-dissolves into the next across the overlap, with no seam
or dip), and the union's coverage feathered inside its outline (:func:`feather_inside`: 0 on the
outline, 1 at ``feather`` x face size inside) makes the outer edge soft:
``alpha = U * sum(m_r a_r) / sum(m_r)``, ``layer = sum(m_r a_r L_r) / sum(m_r a_r)``. Alpha is
forced to 0 inside the eye openings of the edited mesh (lids, iris and gaze always stay the
current frame's). Motion blur is *not* applied unless a ``velocity`` is given (then
:func:`facepipe.composite.reblur.reblur` smears the layer like the plate); by default the
renderer does it on the composited face.

Everything is torch (device-agnostic).

Shapes: N = 468 mesh vertices, R regions; a frame (3,H,W) float 0..1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from facepipe.composite.filters import gaussian_blur
from facepipe.composite.matte import polygon_mask
from facepipe.composite.reblur import reblur_layer
from facepipe.face import topology as topo
from facepipe.face.extent import Box, bbox_scale, face_box
from facepipe.face.regions import TransferRegion, shipped_regions
from facepipe.render.barycentric import interpolate, rasterize_barycentric
from facepipe.render.donors import DonorImage
from facepipe.render.transfer_plan import TransferConfig, TransferPlan


def _sample_donors(sources, region: TransferRegion, tris: torch.Tensor, raster) -> torch.Tensor:
    """sum_i share_i * donor_i's pixels (3,h,w) at the donor positions of the raster's covered
    pixels, 0 where it covers nothing (one barycentric interpolation for all donors; only the
    covered pixels are sampled, as nothing outside the coverage is shown)."""
    dev = raster.bary.device
    pos = []
    for don, _ in sources:
        v = region.extend(torch.as_tensor(don.vertices, device=dev).float()[:, :2])
        pos.append(v - torch.tensor([float(don.offset[0]), float(don.offset[1])], device=dev))
    h, w = raster.tri.shape
    idx = (raster.tri.reshape(-1) >= 0).nonzero().squeeze(1)  # (P,) the covered pixels
    pos = interpolate(torch.cat(pos, 1), tris, raster).view(-1, h * w)
    pos = pos.index_select(1, idx)  # (2*n,P) donor-crop pixels
    acc = None
    for i, (don, share) in enumerate(sources):
        img = torch.as_tensor(don.image)
        if img.dtype != torch.float32 or img.device != dev:
            img = img.to(dev, torch.float32)
        hd, wd = img.shape[-2:]
        px, py = pos[2 * i], pos[2 * i + 1]
        grid = torch.stack([px * (2.0 / max(1, wd - 1)) - 1.0, py * (2.0 / max(1, hd - 1)) - 1.0], -1)
        s = F.grid_sample(img[None], grid[None, None], mode="bicubic", padding_mode="border", align_corners=True)[0, :, 0]
        acc = s * share if acc is None else acc + s * share
    return acc.new_zeros(3, h * w).index_copy_(1, idx, acc).view(3, h, w)


def low_frequency_gain(current: torch.Tensor, donor: torch.Tensor, weight: torch.Tensor, sigma: float,
                       max_gain: float = 2.0, work_sigma: float = 4.0) -> torch.Tensor:
    """Per-pixel colour gain (C,h,w) that gives ``donor * gain`` the current frame's low
    frequencies: blur(current) / blur(donor), both blurs normalised convolutions over ``weight``
    (1,h,w) (the pixels whose colours count), Gaussian ``sigma`` px, computed at a resolution where
    sigma is ``work_sigma`` px and upsampled bilinearly; clamped to [1/max_gain, max_gain], 1 far
    from any weighted pixel."""
    C, h, w = current.shape
    scale = min(1.0, work_sigma / max(sigma, 1e-6))
    hs, ws = max(1, round(h * scale)), max(1, round(w * scale))
    stack = torch.cat([current * weight, donor * weight, weight])[None]
    if scale < 1.0:
        stack = F.interpolate(stack, size=(hs, ws), mode="area")
    b = gaussian_blur(stack, sigma * scale, border="zeros")[0]
    den = b[2 * C :].clamp_min(1e-6)
    eps = 1e-3
    gain = ((b[:C] / den + eps) / (b[C : 2 * C] / den + eps)).clamp(1.0 / max_gain, max_gain)
    gain = torch.where(b[2 * C :] > 1e-4, gain, torch.ones_like(gain))
    if scale < 1.0:
        gain = F.interpolate(gain[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return gain


def _render_region(frame, dst_e, depth_e, region, sources, cfg, feather_px):
    """One region: (box, layer (3,h,w), cover (1,h,w) bool, matte (1,h,w) feathered coverage)
    or None."""
    H, W = frame.shape[-2:]
    dev = dst_e.device
    pts = dst_e[torch.as_tensor(region.vertex_ids, device=dev)]
    if not bool(torch.isfinite(pts).all()):
        return None
    box = face_box([pts], 2.0, (H, W))
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    if h < 2 or w < 2:
        return None
    off = torch.tensor([float(x0), float(y0)], device=dev)
    tris = torch.as_tensor(region.triangles, device=dev)
    if depth_e is not None and region.occluders is not None and len(region.occluders):
        # z-buffer the region against the rest of the mesh: hidden pixels are not the region's
        occ = torch.as_tensor(region.occluders, device=dev)
        raster = rasterize_barycentric(dst_e - off, torch.cat([tris, occ]), (h, w), depth_e)
        hidden = raster.tri >= len(tris)
        raster = raster._replace(tri=torch.where(hidden, torch.full_like(raster.tri, -1), raster.tri))
    else:
        raster = rasterize_barycentric(dst_e - off, tris, (h, w), depth_e)
    cover = raster.mask
    if not bool(cover.any()):
        return None
    acc = _sample_donors(sources, region, tris, raster)
    cur = frame[:, y0:y1, x0:x1].to(dev, torch.float32)
    skin = cover.clone()
    if region.interior is not None and bool(np.any(region.interior)):
        inner = torch.as_tensor(np.nonzero(region.interior)[0], device=dev)
        skin &= ~torch.isin(raster.tri, inner)
    size_r = math.sqrt(h * w)
    gain = low_frequency_gain(cur, acc, skin[None].float(), cfg.gain_sigma * size_r, cfg.max_gain)
    layer = (acc * gain).clamp(0.0, 1.0)
    matte = feather_inside(cover[None], feather_px)
    return box, layer, cover[None], matte


def feather_inside(cover: torch.Tensor, feather_px: float, work_px: float = 6.0) -> torch.Tensor:
    """A coverage mask (1,h,w) feathered inside its outline: 0 on and outside it, rising
    (smoothstep) to 1 at ``feather_px`` inside. The same construction as
    :func:`facepipe.composite.matte.face_matte` (a Gaussian of the coverage, sigma = feather / 2,
    remapped from its value on a straight outline, 0.5, to its value ``feather_px`` inside), but
    from a coverage already rasterised, at a resolution where the feather is ``work_px`` pixels."""
    c = cover.float()
    h, w = c.shape[-2:]
    sigma = 0.5 * max(feather_px, 1e-3)
    scale = min(1.0, work_px / max(feather_px, 1e-3))
    low = c[None]
    if scale < 1.0:
        low = F.interpolate(low, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")
    b = gaussian_blur(low, sigma * scale, border="zeros")
    hi = 0.5 * (1.0 + math.erf(2.0 / math.sqrt(2.0)))  # Phi(feather / sigma)
    x = ((b - 0.5) / (hi - 0.5)).clamp(0.0, 1.0)
    soft = x * x * (3.0 - 2.0 * x)
    if scale < 1.0:
        soft = F.interpolate(soft, size=(h, w), mode="bilinear", align_corners=False)
    return (soft[0] * c).clamp(0.0, 1.0)


def render_transfer_box(
    frame: torch.Tensor,
    dst,
    donors: Mapping[int, DonorImage],
    transfer: TransferPlan,
    t: int,
    regions: Sequence[TransferRegion] | None = None,
    *,
    depth=None,
    config: TransferConfig | None = None,
    velocity=None,
    shutter: float = 180.0,
):
    """Like :func:`render_transfer`, but only the box the transfer touches:
    (box (x0, y0, x1, y1) half-open, layer (3,h,w), alpha (1,h,w)), or None when nothing is
    transferred at frame ``t``."""
    cfg = config or TransferConfig()
    if regions is None:
        regions = shipped_regions()
    dev = frame.device
    dst = torch.as_tensor(dst, device=dev).float()[:, :2]
    z = None if depth is None else torch.as_tensor(depth, device=dev).float().reshape(-1, 1)
    feather_px = max(1.0, cfg.feather * bbox_scale(dst))
    parts = _render_regions(frame, dst, z, donors, transfer, t, regions, cfg, feather_px)
    if not parts:
        return None
    box, layer, alpha, den_a = _merge_regions(parts, feather_px, dev)
    # the eye openings (iris, gaze, lids' margins) always stay the current frame's
    alpha = _clear_eye_openings(alpha, dst, box)
    return _finish_layer(frame, box, layer, alpha, den_a, velocity, shutter)


def _render_regions(frame, dst, z, donors, transfer: TransferPlan, t: int, regions, cfg, feather_px) -> list:
    """[(alpha, box, layer, cover, matte)] of the regions the transfer shows at frame ``t`` (see
    :func:`_render_region`); dst (N,2) the edited mesh, z (N,1) its depth or None."""
    by_name = {rg.name: rg for rg in regions}
    parts = []
    for r, name in enumerate(transfer.regions):
        a = float(transfer.alpha[r, t])
        if a <= 0 or name not in by_name:
            continue
        region = by_name[name]
        sources = _region_sources(transfer, donors, r, t)
        if not sources:
            continue
        dst_e = region.extend(dst)
        depth_e = None if z is None else region.extend(z)[:, 0]
        out = _render_region(frame, dst_e, depth_e, region, sources, cfg, feather_px)
        if out is not None:
            parts.append((a, *out))
    return parts


def _region_sources(transfer: TransferPlan, donors: Mapping[int, DonorImage], r: int, t: int) -> list:
    """[(donor, share)] of region ``r`` at frame ``t``: donor_a at 1 - mix and donor_b at mix,
    those with a share > 0 (KeyError when ``donors`` lacks one)."""
    m = float(transfer.mix[r, t])
    sources = []
    for row, share in ((int(transfer.donor_a[r, t]), 1.0 - m), (int(transfer.donor_b[r, t]), m)):
        if row >= 0 and share > 0:
            if row not in donors:
                raise KeyError(f"frame {t}: region {transfer.regions[r]} needs pool row {row}, which was not given")
            sources.append((donors[row], share))
    return sources


def _merge_regions(parts: list, feather_px: float, dev):
    """The regions' layers and alphas over the union of their boxes: (box, layer (3,h,w),
    alpha (1,h,w), den_a (1,h,w) the sum of the regions' weighted alphas, 0 where none reaches)."""
    x0 = min(p[1][0] for p in parts)
    y0 = min(p[1][1] for p in parts)
    x1 = max(p[1][2] for p in parts)
    y1 = max(p[1][3] for p in parts)
    h, w = y1 - y0, x1 - x0
    # Regions overlap by a ring of triangles: inside the union of the active regions their
    # layers and alphas are averaged with their own feathered mattes as weights (so a layer
    # cross-dissolves into its neighbour's across the overlap), and the union's feathered
    # coverage makes the outer edge soft.
    num = torch.zeros(3, h, w, device=dev)
    den_a = torch.zeros(1, h, w, device=dev)
    den = torch.zeros(1, h, w, device=dev)
    covered = torch.zeros(1, h, w, dtype=torch.bool, device=dev)
    for a, (bx0, by0, bx1, by1), layer, cover, matte in parts:
        sl = (slice(None), slice(by0 - y0, by1 - y0), slice(bx0 - x0, bx1 - x0))
        wgt = torch.maximum(matte, 1e-3 * cover.float())
        num[sl] += layer * (wgt * a)
        den_a[sl] += wgt * a
        den[sl] += wgt
        covered[sl] |= cover
    union = feather_inside(covered, feather_px)
    alpha = union * den_a / den.clamp_min(1e-12)
    layer = num / den_a.clamp_min(1e-12)  # 0 where no region reaches (den_a = 0), and so is alpha
    return (x0, y0, x1, y1), layer, alpha, den_a


def _clear_eye_openings(alpha: torch.Tensor, dst: torch.Tensor, box: Box) -> torch.Tensor:
    """alpha (1,h,w) over ``box`` set to 0 inside the eye openings of the edited mesh dst (N,2)
    (when it is the FaceMesh topology)."""
    if len(dst) != topo.N_VERTICES:
        return alpha
    x0, y0, x1, y1 = box
    off = torch.tensor([float(x0), float(y0)], device=dst.device)
    for loop in (topo.EYE_LOOP_R, topo.EYE_LOOP_L):
        alpha = alpha * (1.0 - polygon_mask(dst[list(loop)] - off, (y1 - y0, x1 - x0)))
    return alpha


def _finish_layer(frame, box: Box, layer, alpha, den_a, velocity, shutter: float):
    """(box, layer, alpha) of :func:`render_transfer_box`: re-blurred with ``velocity`` if given
    (the box grows by the blur's reach), alpha below 1e-6 set to 0, and the layer equal to the
    frame wherever alpha is 0."""
    dev = frame.device
    x0, y0, x1, y1 = box
    cur = frame[:, y0:y1, x0:x1].to(dev, torch.float32)
    if velocity is not None:
        # the blur reads the frame around the regions, not the zeros where none reaches
        layer = torch.where(den_a > 0, layer, cur)
        (x0, y0, x1, y1), layer, alpha = reblur_layer(frame, (x0, y0, x1, y1), layer, alpha, velocity, shutter)
        cur = frame[:, y0:y1, x0:x1].to(dev, torch.float32)
    alpha = torch.where(alpha > 1e-6, alpha, torch.zeros_like(alpha)).clamp(0.0, 1.0)
    layer = torch.where(alpha > 0, layer, cur)
    return (x0, y0, x1, y1), layer, alpha


def render_transfer(
    frame: torch.Tensor,
    dst,
    donors: Mapping[int, DonorImage],
    transfer: TransferPlan,
    t: int,
    regions: Sequence[TransferRegion] | None = None,
    *,
    depth=None,
    config: TransferConfig | None = None,
    velocity=None,
    shutter: float = 180.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The appearance-transfer layer of frame ``t``.

    frame: (3,H,W) float 0..1, the current frame *after the warp* (its low frequencies set the
    layer's shading); dst: (N,2) px the current frame's edited mesh (the geometry the warp
    rendered); donors: pool row -> :class:`DonorImage` for (at least) ``transfer.rows_at(t)``;
    transfer: the shot's transfer plan (:func:`~facepipe.render.transfer_plan.plan_transfer`);
    regions: its regions (default :func:`~facepipe.face.regions.facemesh_regions` of the shipped
    rig); depth: (N,) per-vertex depth of the edited mesh (smaller = nearer) for the z-buffer of
    a turned head, or None; config: ``feather``, ``gain_sigma``, ``max_gain`` are used
    (``strength`` is already in the transfer plan's alpha); velocity: (2,) px/frame face motion of the
    current frame: if given, the layer is motion-blurred like the plate (``shutter`` degrees,
    :func:`facepipe.composite.reblur.reblur`); by default it is not (the renderer re-blurs).

    Returns layer (3,H,W) float32 (equal to ``frame`` wherever alpha is 0) and alpha (1,H,W)
    float32 in [0,1]: composite as ``frame * (1 - alpha) + layer * alpha`` (or a Laplacian blend).
    """
    H, W = frame.shape[-2:]
    layer = frame.to(torch.float32).clone()
    alpha = torch.zeros(1, H, W, device=frame.device)
    out = render_transfer_box(frame, dst, donors, transfer, t, regions, depth=depth, config=config,
                              velocity=velocity, shutter=shutter)
    if out is not None:
        (x0, y0, x1, y1), lb, ab = out
        layer[:, y0:y1, x0:x1] = lb
        alpha[:, y0:y1, x0:x1] = ab
    return layer, alpha
