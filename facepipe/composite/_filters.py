"""Small separable filters shared by the composite modules (depthwise conv2d, any device)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel1d(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """(2r+1,) normalised Gaussian taps, r = ceil(3 sigma)."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (x / max(sigma, 1e-6)) ** 2)
    return k / k.sum()


def _conv_along(x: torch.Tensor, k: torch.Tensor, dim: int) -> torch.Tensor:
    """Valid 1D correlation along ``dim`` (-1: columns, -2: rows) as a sum of shifted slices
    (fast for short kernels on any device, and exact: zero inputs give exactly zero). Slicing
    rows directly, rather than transposing, keeps every slice contiguous along the rows."""
    n = k.numel()
    length = x.shape[dim] - n + 1
    if n > 99:
        moved = x.movedim(dim, -1)
        lead = moved.shape[:-1]
        y = F.conv1d(moved.reshape(-1, 1, moved.shape[-1]), k.view(1, 1, -1).to(x))
        return y.reshape(*lead, length).movedim(-1, dim)
    taps = k.tolist()
    y = x.narrow(dim, 0, length) * taps[0]
    for i in range(1, n):
        if taps[i] != 0.0:
            y = y + x.narrow(dim, i, length) * taps[i]
    return y


def sep_conv(x: torch.Tensor, kernel: torch.Tensor, border: str = "replicate") -> torch.Tensor:
    """x (N,C,H,W) convolved with the symmetric 1D ``kernel`` along W then H, padded with ``border``.

    border: "replicate", "reflect" or "zeros".
    """
    h, w = x.shape[-2:]
    r = kernel.numel() // 2
    if border == "zeros":
        pad = dict(mode="constant", value=0.0)
    else:
        pad = dict(mode=border if (border != "reflect" or min(h, w) > r) else "replicate")
    y = _conv_along(F.pad(x, (r, r, 0, 0), **pad), kernel, -1)
    return _conv_along(F.pad(y, (0, 0, r, r), **pad), kernel, -2)


def gaussian_blur(x: torch.Tensor, sigma: float, border: str = "replicate") -> torch.Tensor:
    """Separable Gaussian blur of x (N,C,H,W); sigma in pixels (<= 0: unchanged)."""
    if sigma <= 0:
        return x
    return sep_conv(x, gaussian_kernel1d(sigma, x.device, x.dtype), border)


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey dilation of (N,C,H,W) by a (2r+1)^2 square (separable max-pool)."""
    if radius <= 0:
        return mask
    k = 2 * radius + 1
    y = F.max_pool2d(mask, (1, k), stride=1, padding=(0, radius))
    return F.max_pool2d(y, (k, 1), stride=1, padding=(radius, 0))


def erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey erosion of (N,C,H,W) by a (2r+1)^2 square; outside the image counts as the edge value."""
    if radius <= 0:
        return mask
    pad = F.pad(mask, (radius, radius, radius, radius), mode="replicate")
    k = 2 * radius + 1
    y = -F.max_pool2d(-pad, (1, k), stride=1)
    return -F.max_pool2d(-y, (k, 1), stride=1)


def _box_sum_w(x: torch.Tensor, r: int) -> torch.Tensor:
    """Sum over a (2r+1)-wide window along the last axis, zeros outside (cumulative sums: O(1) in r)."""
    c = F.pad(x, (r + 1, r)).cumsum(-1)
    return c[..., 2 * r + 1 :] - c[..., : -(2 * r + 1)]


def dilate_binary(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Dilation of a 0/1 mask (N,C,H,W) by a (2r+1)^2 square, in time independent of r."""
    if radius <= 0:
        return mask
    s = _box_sum_w(_box_sum_w(mask.float(), radius).transpose(-1, -2), radius).transpose(-1, -2)
    return (s > 0.5).to(mask.dtype)


def erode_binary(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Erosion of a 0/1 mask (N,C,H,W) by a (2r+1)^2 square; outside the image counts as 1."""
    if radius <= 0:
        return mask
    return 1 - dilate_binary(1 - mask, radius)


def support_box(matte: torch.Tensor, margin: int = 0, align: int = 1) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1): bounding box of ``matte > 0`` over the batch, grown by ``margin`` and
    clipped to the image, its top-left corner rounded down to a multiple of ``align`` (so a
    pyramid built on the crop lines up with one built on the frame). None if the matte is empty."""
    sel = (matte > 0).flatten(0, 1).any(0)
    rows, cols = sel.any(1).nonzero(), sel.any(0).nonzero()
    if len(rows) == 0:
        return None
    H, W = sel.shape
    y0 = max(0, int(rows[0]) - margin) // align * align
    x0 = max(0, int(cols[0]) - margin) // align * align
    return y0, min(H, int(rows[-1]) + margin + 1), x0, min(W, int(cols[-1]) + margin + 1)
