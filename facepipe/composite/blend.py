"""Seamless compositing of a face layer onto the plate: colour match, grain match, pyramid blend.

All functions take batches: ``layer`` and ``plate`` (N,3,H,W) float, ``matte`` (N,1,H,W) float
in [0,1], on any device. The guarantee every function here keeps: **where the matte is exactly 0
the output is the plate, bit for bit** (the final step is a ``torch.where`` on the plate tensor
itself, and the blend is built so that nothing needs cutting there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from facepipe.composite.filters import (
    dilate_binary,
    erode,
    erode_binary,
    gaussian_blur,
    gaussian_kernel1d,
    grow_box,
    support_box,
    window_extreme,
)

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0

#: Matte value from which :func:`laplacian_blend` moves from the multi-band blend to the layer
#: itself (reaching it where the matte is 1): the outer half of the matte's ramp hides the seam.
CORE_FROM = 0.5

#: Erosion (in pixels of each level) of the coarse matte levels: keeps every level's
#: contribution, after expanding back to full resolution, inside the matte's support.
LEVEL_ERODE = 4


def _along(dim: int, index) -> tuple:
    """An index tuple applying ``index`` along ``dim`` (-1: columns, -2: rows) of (...,H,W)."""
    return (Ellipsis, index) if dim == -1 else (Ellipsis, index, slice(None))


def _reduce_axis(x: torch.Tensor, dim: int, border: str) -> torch.Tensor:
    """(...,H,W) halved along ``dim`` (-1 or -2; n -> ceil(n/2)): the 5-tap binomial padded
    with ``border``, evaluated at the even positions only (the odd ones would be dropped)."""
    n = x.shape[dim]
    xp = F.pad(x, (2, 2, 0, 0) if dim == -1 else (0, 0, 2, 2), mode=border)
    return sum(t * xp[_along(dim, slice(i, i + n, 2))] for i, t in enumerate(_BINOMIAL.tolist()))


def _reduce(x: torch.Tensor) -> torch.Tensor:
    """(N,C,H,W) -> (N,C,ceil(H/2),ceil(W/2)): 5-tap binomial blur, then every other pixel.
    Rows first: striding over whole rows is cheaper than over columns, which then see half."""
    border = "reflect" if min(x.shape[-2:]) > 2 else "replicate"  # reflect needs 3 pixels
    return _reduce_axis(_reduce_axis(x, -2, border), -1, border)


def _expand_axis(x: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """(...,H,W) with m = ceil(n/2) along ``dim`` (-1 or -2) -> n along it: zero insertion and
    the 5-tap binomial, normalised by the taps that land inside (zeros outside), computed per
    output phase: even outputs see samples j-1, j, j+1 (taps 1, 6, 1 of 16), odd ones j and j+1
    (4, 4)."""
    m = x.shape[dim]
    xp = F.pad(x, (1, 1, 0, 0) if dim == -1 else (0, 0, 1, 1))
    inside = torch.ones(m + 2, device=x.device, dtype=x.dtype)
    inside[0] = inside[-1] = 0.0
    if dim == -2:
        inside = inside[:, None]
    prev, cur, nxt = (xp[_along(dim, slice(i, i + m))] for i in range(3))
    before, after = inside[:-2], inside[2:]
    shape = list(x.shape)
    shape[dim] = 2 * m
    out = x.new_empty(shape)
    out[_along(dim, slice(0, None, 2))] = (prev + 6.0 * cur + nxt) / (before + 6.0 + after)
    out[_along(dim, slice(1, None, 2))] = (cur + nxt) / (1.0 + after)
    return out[_along(dim, slice(0, n))]


def _expand(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N,C,h,w) -> (N,C,H,W) with h = ceil(H/2): zero insertion + normalised binomial blur
    (separable, so normalising each axis equals normalising by the 2D indicator's blur).
    Columns first, on the half-height image."""
    return _expand_axis(_expand_axis(x, size[1], -1), size[0], -2).contiguous()


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels of x (N,C,H,W), finest first, last = the low-pass residual.

    ``collapse(laplacian_pyramid(x, L)) == x`` up to float rounding.
    """
    out, cur = [], x
    for _ in range(levels - 1):
        low = _reduce(cur)
        out.append(cur - _expand(low, cur.shape[-2:]))
        cur = low
    out.append(cur)
    return out


def collapse(pyramid: Sequence[torch.Tensor]) -> torch.Tensor:
    """Inverse of :func:`laplacian_pyramid`."""
    cur = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        cur = band + _expand(cur, band.shape[-2:])
    return cur


def auto_levels(size: tuple[int, int], max_levels: int = 5, min_size: int = 16) -> int:
    """Pyramid depth for an image: coarsest level at least ``min_size`` pixels on its short side."""
    return max(1, min(max_levels, 1 + int(math.floor(math.log2(max(1, min(size) / min_size))))))


def _support_extent(matte: torch.Tensor) -> int:
    """Smallest bounding-box side (pixels) of the matte's support over the batch (0 if empty)."""
    boxes = [b for b in map(support_box, matte[:, :1].split(1)) if b is not None]
    return min((min(y1 - y0, x1 - x0) for y0, y1, x0, x1 in boxes), default=0)


def blend_levels(matte: torch.Tensor, max_levels: int = 5) -> int:
    """Pyramid depth for a matte: the coarsest level's eroded matte still reaches a quarter of
    the way into the face, and the coarsest image is at least 16 pixels."""
    e = _support_extent(matte)
    by_face = 1 + int(math.floor(math.log2(max(1.0, e / (4.0 * (LEVEL_ERODE + 2))))))
    return max(1, min(by_face, auto_levels(tuple(matte.shape[-2:]), max_levels)))


def composite_box(matte: torch.Tensor) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1): the part of the frame :func:`composite` reads for ``matte`` (N,1,H,W):
    the matte's support grown by the blend pyramid's reach and the band around the face where
    :func:`match_grain` measures the plate's grain, aligned for the pyramid. Compositing this
    crop of layer, plate and matte gives that crop of the whole-frame result (None: empty matte)."""
    box = support_box(matte)
    if box is None:
        return None
    levels = blend_levels(matte)
    reach = 4 * 2 ** (levels - 1) + 4
    return grow_box(box, max(reach, _grain_margin(box)), 2 ** (levels - 1), tuple(matte.shape[-2:]))


def _grain_margin(box: tuple[int, int, int, int]) -> int:
    """How far around the matte's support box the plate's grain is measured: half the face."""
    y0, y1, x0, x1 = box
    return max(16, (min(y1 - y0, x1 - x0) + 1) // 2)


def level_mattes(matte: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Per-level blend weights, finest first: the matte, then its Gaussian levels eroded by
    :data:`LEVEL_ERODE` pixels and cut to 0 wherever expanding them back to full resolution
    would reach a pixel where ``matte == 0``."""
    m = matte.float()
    out, cur = [m], m
    zero = (m <= 0).float()
    for _ in range(levels - 1):
        cur = _reduce(cur)
        # a coarse pixel q expands onto fine pixels 2q-2 .. 2q+2 (5-tap kernel): the max over
        # them (padded with 0, which never wins: every window holds a pixel), n -> ceil(n/2)
        zero = F.pad(zero, (2, 2, 2, 2))
        zero = window_extreme(window_extreme(zero, 5, -2, torch.maximum, 2), 5, -1, torch.maximum, 2)
        out.append(erode(cur, LEVEL_ERODE) * (1.0 - zero))
    return out


def laplacian_blend(
    layer: torch.Tensor, plate: torch.Tensor, matte: torch.Tensor, levels: int | None = None
) -> torch.Tensor:
    """Multi-band blend of ``layer`` over ``plate`` with ``matte``, exact outside the matte.

    layer, plate: (N,C,H,W) float; matte: (N,1,H,W) in [0,1]. Returns (N,C,H,W) in plate's dtype.

    Blended = plate + collapse(M_l * L_l(layer - plate)) with M_l from :func:`level_mattes`: the
    coarse levels are eroded so every level's contribution stays inside the matte's support
    (exactly: nothing needs cutting at the edge, so there is no seam). Low frequencies (shading,
    colour) are blended over a wider band inside the face than high frequencies (pores, edges).
    The difference is zeroed outside the matte first, so layer pixels there never leak in.

    The eroded coarse levels reach only 30-90 px inside a face's matte, so on their own they kept
    the plate's low frequencies under anything the warp moved near the matte's edge: raised
    brows came out as pale ghosts over the old ones (trackers read 0.3-0.4 of the drawn raise).
    So the output goes from the blend to the layer itself over the inner part of the matte's
    ramp: output = lerp(blended, layer, core), core = (matte - CORE_FROM) / (1 - CORE_FROM)
    clamped to [0, 1]. Wherever the matte is 1 the output is the layer; the seam-hiding blend
    keeps the outer part of the ramp. levels: None = :func:`blend_levels`.
    """
    levels = blend_levels(matte) if levels is None else max(1, levels)
    box = support_box(matte, margin=4 * 2 ** (levels - 1) + 4, align=2 ** (levels - 1))
    if box is None:
        return plate.clone()
    y0, y1, x0, x1 = box
    m, pl, ly = matte[..., y0:y1, x0:x1], plate[..., y0:y1, x0:x1], layer[..., y0:y1, x0:x1].float()
    support = m > 0
    diff = torch.where(support, ly - pl.float(), torch.zeros((), device=plate.device))
    bands = laplacian_pyramid(diff, levels)
    corr = collapse([b * mk for b, mk in zip(bands, level_mattes(m, levels))])
    core = ((m.float() - CORE_FROM) / (1.0 - CORE_FROM)).clamp_(0.0, 1.0)
    blended = torch.lerp(pl.float() + corr, ly, core)
    out = plate.clone()
    torch.where(support, blended.to(plate.dtype), pl, out=out[..., y0:y1, x0:x1])
    return out


def _ring_band(matte: torch.Tensor, band_px: float | None) -> int:
    if band_px is None:
        area = (matte > 0).flatten(1).sum(1).float().max().item()
        band_px = max(2.0, 0.06 * math.sqrt(max(area, 1.0)))
    return max(1, int(round(band_px)))


def edge_ring(matte: torch.Tensor, band_px: float | None = None) -> torch.Tensor:
    """Feathered ring weights (N,1,H,W) around the matte's 0.5 contour, inside its support.

    band_px: half-width of the ring; None = 6% of the face size (sqrt of the support's area).
    """
    r = _ring_band(matte, band_px)
    hard = (matte >= 0.5).float()
    ring = dilate_binary(hard, r) - erode_binary(hard, r)
    ring = gaussian_blur(ring, r / 2.0, border="zeros")
    return ring * (matte > 0)


def _weighted_stats(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel weighted mean and std of x (N,C,H,W) with weights w (N,1,H,W)."""
    ws = w.flatten(2).sum(-1, keepdim=True).clamp_min(1e-8)  # (N,1,1)
    xf, wf = x.flatten(2), w.flatten(2)
    mean = (xf * wf).sum(-1, keepdim=True) / ws
    var = (((xf - mean) ** 2) * wf).sum(-1, keepdim=True) / ws
    return mean[..., None], var.clamp_min(0).sqrt()[..., None]


def match_color(
    layer: torch.Tensor,
    plate: torch.Tensor,
    matte: torch.Tensor,
    band_px: float | None = None,
    strength: float = 1.0,
    max_gain: float = 2.0,
) -> torch.Tensor:
    """The layer with per-channel mean/std matched to the plate's in a ring around the matte edge.

    layer, plate: (N,3,H,W) float; matte: (N,1,H,W). Both are measured on the same pixels (the
    :func:`edge_ring`), where the layer should equal the plate; the whole layer is then shifted
    and scaled per channel (gain clamped to [1/max_gain, max_gain]), blended by ``strength``,
    inside the bounding box of the matte's support (the rest never reaches the composite and
    is returned as it was). Images whose ring is empty are returned unchanged.
    Returns (N,3,H,W) float32.
    """
    r = _ring_band(matte, band_px)
    support = support_box(matte)
    if support is None:
        return layer.float()
    y0, y1, x0, x1 = grow_box(support, 3 * r + 2, 1, tuple(matte.shape[-2:]))
    ring = edge_ring(matte[..., y0:y1, x0:x1], r)
    lm, ls = _weighted_stats(layer[..., y0:y1, x0:x1].float(), ring)
    pm, ps = _weighted_stats(plate[..., y0:y1, x0:x1].float(), ring)
    gain = (ps / ls.clamp_min(1e-6)).clamp(1.0 / max_gain, max_gain)
    ok = (ring.flatten(1).sum(1) > 1e-3).view(-1, 1, 1, 1)
    out = layer.float().clone()
    y0, y1, x0, x1 = support
    crop = out[..., y0:y1, x0:x1]
    matched = (crop - lm) * gain + pm
    out[..., y0:y1, x0:x1] = torch.where(ok, torch.lerp(crop, matched, strength), crop)
    return out


#: Residual samples per image that :func:`estimate_noise` aims for by default.
NOISE_SAMPLES = 8_000


def _highpass_var_factor(sigma: float) -> float:
    """Fraction of white-noise variance left by x - gaussian_blur(x, sigma)."""
    k = gaussian_kernel1d(sigma, dtype=torch.float64)  # on the CPU: not every device has float64
    k2 = torch.outer(k, k)
    c = k2[k2.shape[0] // 2, k2.shape[1] // 2]
    return float(1.0 - 2.0 * c + (k2**2).sum())


def estimate_noise(
    image: torch.Tensor, weights: torch.Tensor, sigma: float = 1.0, stride: int | None = None
) -> torch.Tensor:
    """Robust per-channel std (N,C) of the fine grain of image (N,C,H,W) where weights (N,1,H,W)
    (float or bool) > 0.

    Median absolute high-pass residual (x - Gaussian(x, sigma)) x 1.4826, corrected for the
    variance the high-pass keeps, so white noise of std s reads as s. Texture and edges inflate it
    less than a plain std. The residual is evaluated only at every ``stride``-th pixel each way,
    away from the border (a grain estimate needs thousands of samples, not every pixel: this was
    the composite's costliest step); None = 2, or more where that still leaves over
    :data:`NOISE_SAMPLES` samples. A smoother operator than a 3x3 second difference on purpose:
    on 8-bit compressed video that one reads 0 wherever the codec left flat blocks.
    """
    x = image.float()
    N, C, H, W = x.shape
    out = torch.zeros(N, C, device=x.device)
    taps = gaussian_kernel1d(sigma).tolist()
    if stride is None:
        most = float((weights > 0).flatten(1).sum(1).max()) if N else 0.0
        stride = max(2, int(math.sqrt(most / NOISE_SAMPLES)))
    r, s = len(taps) // 2, max(1, int(stride))
    if H <= 2 * r or W <= 2 * r:
        return out
    # the Gaussian at the sampled centres only: down the rows, then along the kept rows
    cols = sum(t * x[..., i : i + H - 2 * r : s, :] for i, t in enumerate(taps))
    low = sum(t * cols[..., j : j + W - 2 * r : s] for j, t in enumerate(taps))
    resid = (x[..., r : H - r : s, r : W - r : s] - low).abs()
    centre = weights[:, 0, r : H - r : s, r : W - r : s] > 0  # (N,h,w)
    factor = math.sqrt(_highpass_var_factor(sigma))
    for i in range(N):
        vals = resid[i][:, centre[i]]  # (C,n)
        if vals.shape[1]:
            out[i] = 1.4826 * vals.median(dim=1).values / factor
    return out


def match_grain(
    layer: torch.Tensor,
    plate: torch.Tensor,
    matte: torch.Tensor,
    seed: int = 0,
    frame_indices: Sequence[int] | torch.Tensor | None = None,
    grain_px: float = 0.0,
) -> torch.Tensor:
    """The layer plus Gaussian grain so its noise matches the plate's, inside the matte.

    layer, plate: (N,3,H,W) float; matte: (N,1,H,W). The plate's grain is measured where the
    matte is 0 around the face (within half a face size of its bounding box), the layer's where
    it is 1, and noise of std sqrt(max(plate^2 - layer^2, 0)) per channel is added where the
    matte is > 0 (optionally blurred by ``grain_px`` and renormalised, for coarser grain). Each
    frame's noise comes from its own generator seeded with (seed, frame index), so chunking does
    not change the result. frame_indices: (N,) source indices (default 0..N-1).
    Returns (N,3,H,W) float32.
    """
    N = layer.shape[0]
    idx = list(range(N)) if frame_indices is None else [int(i) for i in frame_indices]
    out = layer.float().clone()
    box = support_box(matte)
    if box is None:
        return out
    y0, y1, x0, x1 = box
    wy0, wy1, wx0, wx1 = grow_box(box, _grain_margin(box), 1, tuple(matte.shape[-2:]))
    around = matte[..., wy0:wy1, wx0:wx1]
    sp = estimate_noise(plate[..., wy0:wy1, wx0:wx1], around <= 0)
    m = matte[..., y0:y1, x0:x1]
    crop = out[..., y0:y1, x0:x1]
    sl = estimate_noise(crop, m >= 1)
    add = (sp**2 - sl**2).clamp_min(0).sqrt()  # (N,C)
    noise = torch.empty_like(crop)
    for i in range(N):
        gen = torch.Generator(device=layer.device)
        gen.manual_seed((int(seed) * 1_000_003 + idx[i]) % (2**63))
        noise[i] = torch.randn(crop.shape[1:], generator=gen, device=layer.device)
    if grain_px > 0:
        noise = gaussian_blur(noise, grain_px, border="reflect")
        noise = noise / noise.flatten(2).std(-1).clamp_min(1e-8)[..., None, None]
    crop += noise * add[..., None, None] * (m > 0)  # crop is a view of out
    return out


def composite(
    layer: torch.Tensor,
    plate: torch.Tensor,
    matte: torch.Tensor,
    color: bool = True,
    grain: bool = True,
    seed: int = 0,
    frame_indices: Sequence[int] | torch.Tensor | None = None,
    levels: int | None = None,
) -> torch.Tensor:
    """Colour match, grain match and Laplacian blend in one call.

    layer, plate: (N,3,H,W) float; matte: (N,1,H,W). Returns (N,3,H,W) in plate's dtype, equal
    to ``plate`` bit for bit wherever ``matte == 0``.
    """
    x = layer.float()
    if color:
        x = match_color(x, plate, matte)
    if grain:
        x = match_grain(x, plate, matte, seed=seed, frame_indices=frame_indices)
    return laplacian_blend(x, plate, matte, levels)


