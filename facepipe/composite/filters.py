"""Small separable filters: Gaussian blur, erosion / dilation, window extremes, the support box of
a matte, and luma (shared by the composite modules, the appearance transfer and the render layers;
any device)."""

from __future__ import annotations

import math

import kornia
import torch
import torch.nn.functional as F


def gaussian_kernel1d(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """(2r+1,) normalised Gaussian taps, r = ceil(3 sigma)."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (x / max(sigma, 1e-6)) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float, border: str = "replicate") -> torch.Tensor:
    """Separable Gaussian blur of x (N,C,H,W) with the taps of :func:`gaussian_kernel1d`; sigma
    in pixels (<= 0: unchanged); border "replicate", "reflect" or "zeros". kornia's separable
    convolution (2-3x faster on one CPU thread than shifted-slice sums: benchmarks/kornia_filters.md);
    like any finite convolution it is exactly 0 beyond the kernel's reach of non-zero input."""
    if sigma <= 0:
        return x
    k = gaussian_kernel1d(sigma).numel()
    if border == "reflect" and min(x.shape[-2:]) <= k // 2:
        border = "replicate"  # reflect needs more pixels than the radius
    return kornia.filters.gaussian_blur2d(x, (k, k), (sigma, sigma), border_type={"zeros": "constant"}.get(border, border))


def erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey erosion of (N,C,H,W) by a (2r+1)^2 square; outside the image counts as the edge value."""
    if radius <= 0:
        return mask
    pad = F.pad(mask, (radius, radius, radius, radius), mode="replicate")
    k = 2 * radius + 1
    return window_extreme(window_extreme(pad, k, -1, torch.minimum), k, -2, torch.minimum)


def window_extreme(x: torch.Tensor, k: int, dim: int, op, stride: int = 1) -> torch.Tensor:
    """``op`` (torch.minimum or torch.maximum) over each window of ``k`` along ``dim`` (-1 or -2)
    of x (...,H,W), at every ``stride``-th valid position: n -> (n - k) // stride + 1. A chain of
    elementwise ops on shifted slices: for the short windows here several times faster on the
    CPU than max_pool2d, and exact (the same values in any order)."""
    n = (x.shape[dim] - k) // stride + 1
    out = None
    for i in range(k):
        part = x[..., i : i + stride * (n - 1) + 1 : stride] if dim == -1 else x[..., i : i + stride * (n - 1) + 1 : stride, :]
        out = part if out is None else op(out, part)
    return out


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
    """(y0, y1, x0, x1): bounding box of ``matte > 0`` over the batch of (N,C,H,W), grown and
    aligned by :func:`grow_box`. None if the matte is empty."""
    if matte.numel() == 0:
        return None
    # the largest value per row, then per column over those rows only: two reductions of the
    # float matte (a bool mask and its any() cost several times as much on a whole frame)
    rows = (matte.amax(dim=(0, 1, 3)) > 0).nonzero()
    if len(rows) == 0:
        return None
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    cols = (matte[..., y0:y1, :].amax(dim=(0, 1, 2)) > 0).nonzero()
    return grow_box((y0, y1, int(cols[0]), int(cols[-1]) + 1), margin, align, tuple(matte.shape[-2:]))


def grow_box(box: tuple[int, int, int, int], margin: int, align: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) ``box`` grown by ``margin`` and clipped to the image ``size`` (H, W), its
    top-left corner rounded down to a multiple of ``align`` (so a pyramid built on the crop lines
    up with one built on the frame)."""
    y0, y1, x0, x1 = box
    H, W = size
    return (max(0, y0 - margin) // align * align, min(H, y1 + margin),
            max(0, x0 - margin) // align * align, min(W, x1 + margin))  # fmt: skip


#: Rec. 709 luma weights of R, G, B.
REC709 = (0.2126, 0.7152, 0.0722)


def luma(rgb: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """float32 Rec. 709 luma of colours 0..1 whose channels (R, G, B) run along ``dim``, that dim
    dropped: (3,H,W) -> (H,W); (P,3) with dim=-1 -> (P,)."""
    shape = [1] * rgb.dim()
    shape[dim] = 3
    return (rgb.float() * torch.tensor(REC709, dtype=torch.float32, device=rgb.device).view(shape)).sum(dim)
