"""Re-apply the plate's motion blur to a face layer that lacks it.

Pixels moved from the plate by a warp already carry the plate's blur; deblurred, transferred or
neurally rendered pixels do not. A camera with a rotary shutter of ``shutter`` degrees integrates
each frame over ``shutter / 360`` of the frame interval, so a face moving ``v`` px/frame is
smeared along ``v`` over ``|v| * shutter / 360`` pixels: a box kernel along a line segment
centred on the pixel. Kernels are built in torch (sub-pixel lengths and any direction, by
bilinear splatting of points along the segment) and applied inside the matte only, on the
matte's bounding box. Shapes: layer (N,C,H,W), matte (N,1,H,W), velocity (N,2) px/frame (x, y).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Blur shorter than this (pixels) is treated as none: the frame is returned bit for bit.
MIN_LENGTH = 0.05


def face_velocity(positions: torch.Tensor) -> torch.Tensor:
    """Per-frame velocity (T,2) px/frame of a face track positions (T,2): central differences,
    one-sided at the ends, zero for a single frame."""
    p = torch.as_tensor(positions).float()
    if p.shape[0] < 2:
        return torch.zeros_like(p)
    v = torch.empty_like(p)
    v[1:-1] = 0.5 * (p[2:] - p[:-2])
    v[0] = p[1] - p[0]
    v[-1] = p[-1] - p[-2]
    return v


def blur_vectors(velocity: torch.Tensor, shutter: float = 180.0) -> torch.Tensor:
    """Smear vector (N,2) in pixels during the exposure: velocity (N,2) px/frame x shutter/360."""
    if not 0.0 <= shutter <= 360.0:
        raise ValueError(f"shutter angle {shutter} is outside 0..360 degrees")
    return torch.as_tensor(velocity).float() * (shutter / 360.0)


def motion_kernels(blur: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Line-segment box kernels (N,1,k,k), each summing to 1, for smear vectors blur (N,2) px.

    The segment runs from -blur/2 to +blur/2 around the kernel centre; k is odd (default: just
    large enough for the longest segment). A zero vector gives a centred delta. A horizontal
    vector gives a kernel with nonzero taps only in the centre row (and likewise vertical).
    """
    b = torch.as_tensor(blur).float()
    N = b.shape[0]
    length = b.norm(dim=1)
    if size is None:
        size = 2 * int(math.ceil(float(length.max()) / 2.0 if N else 0.0)) + 1
    size = max(1, size | 1)
    c = size // 2
    samples = max(2, int(math.ceil(float(length.max()) * 4.0)) + 1) if N else 2
    t = torch.linspace(-0.5, 0.5, samples, device=b.device)  # (S,)
    pts = t.view(1, -1, 1) * b.view(N, 1, 2) + c  # (N,S,2) x, y in kernel pixels
    x0, y0 = pts[..., 0].floor(), pts[..., 1].floor()
    fx, fy = pts[..., 0] - x0, pts[..., 1] - y0
    k = torch.zeros(N, size * size, device=b.device)
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = (x0 + dx).long(), (y0 + dy).long()
        ok = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size) & (w > 0)
        idx = (yi * size + xi).clamp(0, size * size - 1)
        k.scatter_add_(1, idx, torch.where(ok, w, torch.zeros_like(w)))
    k = k / k.sum(1, keepdim=True).clamp_min(1e-12)
    return k.view(N, 1, size, size)


def reblur(
    layer: torch.Tensor,
    matte: torch.Tensor,
    velocity: torch.Tensor,
    shutter: float = 180.0,
) -> torch.Tensor:
    """The layer with directional motion blur inside the matte.

    layer: (N,C,H,W) float; matte: (N,1,H,W) (blurred where matte > 0; the composite's matte
    handles the transition); velocity: (N,2) face velocity px/frame (x right, y down);
    shutter: degrees (180 = half the frame interval). Frames whose smear is shorter than
    :data:`MIN_LENGTH` px, and every pixel where matte == 0, are returned unchanged, bit for bit.
    Returns (N,C,H,W) in layer's dtype.
    """
    blur = blur_vectors(velocity, shutter).to(layer.device)
    moving = blur.norm(dim=1) >= MIN_LENGTH
    if not bool(moving.any()):
        return layer.clone()
    out = layer.clone()
    idx = moving.nonzero().flatten()
    sel = matte[idx, 0] > 0  # (n,H,W)
    rows, cols = sel.any(0).any(1).nonzero(), sel.any(0).any(0).nonzero()
    if len(rows) == 0:
        return out
    kernels = motion_kernels(blur[idx])
    k = kernels.shape[-1]
    r = k // 2
    H, W = layer.shape[-2:]
    y0, y1 = max(0, int(rows[0]) - r), min(H, int(rows[-1]) + r + 1)
    x0, x1 = max(0, int(cols[0]) - r), min(W, int(cols[-1]) + r + 1)
    crop = layer[idx, :, y0:y1, x0:x1].float()
    n, _, h, w = crop.shape
    x = F.pad(crop, (r, r, r, r), mode="replicate")
    blurred = torch.stack([_line_filter(x[i], kernels[i, 0], h, w) for i in range(n)]).to(layer.dtype)
    inside = sel[:, None, y0:y1, x0:x1]
    out[idx, :, y0:y1, x0:x1] = torch.where(inside, blurred, layer[idx, :, y0:y1, x0:x1])
    return out


def reblur_layer(
    frame: torch.Tensor,
    box: tuple[int, int, int, int],
    layer: torch.Tensor,
    alpha: torch.Tensor,
    velocity: torch.Tensor,
    shutter: float = 180.0,
) -> tuple[tuple[int, int, int, int], torch.Tensor, torch.Tensor]:
    """A layer laid over part of a frame, re-blurred with the plate's motion.

    frame: (C,H,W) what the layer goes over; box: (x0, y0, x1, y1) half-open, where layer
    (C,h,w) and alpha (1,h,w) sit; velocity: (2,) or (1,2) px/frame. The box is first widened by
    the blur's reach and filled with the frame, so the blur reads the real pixels around the
    layer rather than a padded edge. Returns (widened box, layer, alpha) over it: the frame's
    pixels and alpha 0 in the added ring.
    """
    v = torch.as_tensor(velocity, device=layer.device).float().reshape(1, 2)
    reach = math.ceil(float(blur_vectors(v, shutter).norm()) / 2) + 1
    x0, y0, x1, y1 = box
    H, W = frame.shape[-2:]
    bx0, by0, bx1, by1 = max(0, x0 - reach), max(0, y0 - reach), min(W, x1 + reach), min(H, y1 + reach)
    canvas = frame[:, by0:by1, bx0:bx1].to(layer.dtype, copy=True)
    wide = torch.zeros_like(canvas[:1])
    inner = (slice(None), slice(y0 - by0, y1 - by0), slice(x0 - bx0, x1 - bx0))
    canvas[inner], wide[inner] = layer, alpha
    return (bx0, by0, bx1, by1), reblur(canvas[None], wide[None], v, shutter)[0], wide


def _line_filter(padded: torch.Tensor, kernel: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """padded (C,h+k-1,w+k-1) correlated with kernel (k,k) -> (C,h,w), as a sum of shifted
    copies over the kernel's nonzero taps: a line segment has about 2k of its k^2 taps, and a
    depthwise conv2d on the CPU was 3-7x slower."""
    out = None
    for (i, j), c in zip(kernel.nonzero().tolist(), kernel[kernel != 0].tolist()):
        term = padded[:, i : i + h, j : j + w] * c
        out = term if out is None else out + term
    return out
