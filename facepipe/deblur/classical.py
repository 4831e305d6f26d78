"""The classical baseline: Richardson-Lucy deconvolution with a motion kernel from the tracked face.

Motion blur is a convolution of the sharp image with the path the face took while the shutter was
open (in linear light): ``blurred = sharp * k``. The face tracker gives that path (the face's
velocity over the exposure, relative to the central moment), so ``k`` is known up to the face's
rotation and non-rigid motion. Richardson-Lucy iterates

    estimate <- estimate * ( (blurred / (estimate * k)) * k_mirrored )

which keeps the estimate positive and, stopped after a few iterations, amplifies a wrong kernel
far less than a one-step inverse filter: on real exposures, where the kernel is only
approximately right, a Wiener / least-squares inverse lost 6-14 dB against the blurred input
(``benchmarks/deblur.py``, issue 16 note). Convolutions are FFT products on a reflection-padded
image, so the borders do not wrap into each other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.color import linear_rgb_to_rgb, rgb_to_linear_rgb


def trajectory_kernel(path: torch.Tensor, size: int | None = None, samples_per_step: int = 16) -> torch.Tensor:
    """path (N,2) float positions (x, y) in pixels of the moments of one exposure, relative to the
    kernel's centre -> (size,size) float32 kernel summing to 1: the path sampled between its points
    (``samples_per_step`` per step, equal time each; 1 = the points alone, for exposures made of
    whole frames) and splatted bilinearly. ``size`` defaults to the smallest odd size that holds it."""
    path = torch.as_tensor(path, dtype=torch.float32).reshape(-1, 2)
    if len(path) > 1:
        t = torch.linspace(0.0, len(path) - 1, (len(path) - 1) * samples_per_step + 1)
        i0 = t.floor().long().clamp(max=len(path) - 2)
        w = (t - i0)[:, None]
        pts = path[i0] * (1 - w) + path[i0 + 1] * w
    else:
        pts = path
    if size is None:
        size = 2 * int(torch.ceil(pts.abs().max()).item()) + 3
    c = (size - 1) / 2.0
    x, y = pts[:, 0] + c, pts[:, 1] + c
    x0, y0 = x.floor(), y.floor()
    kernel = torch.zeros(size, size)
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = (x0 + dx).long(), (y0 + dy).long()
            wgt = (1 - (x - xi).abs()) * (1 - (y - yi).abs())
            ok = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size) & (wgt > 0)
            kernel.index_put_((yi[ok], xi[ok]), wgt[ok], accumulate=True)
    return kernel / kernel.sum().clamp_min(1e-12)


def centred_spectrum(kernel: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """kernel (...,k,k) (odd k, centred) -> (...,height,width//2+1) complex: its rfft2 as a
    convolution centred on pixel (0, 0)."""
    k = kernel.shape[-1]
    psf = torch.zeros(*kernel.shape[:-2], height, width, dtype=kernel.dtype, device=kernel.device)
    psf[..., :k, :k] = kernel
    return torch.fft.rfft2(torch.roll(psf, shifts=(-(k // 2), -(k // 2)), dims=(-2, -1)))


def convolve_padded(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """image (B,C,H,W) -> the same convolved with ``kernel`` (k,k) (odd k, centred), borders
    reflected: the blur model (a rigid exposure along the kernel's path, in linear light)."""
    p = kernel.shape[-1]
    padded = F.pad(image, (p, p, p, p), mode="reflect")
    Hp, Wp = padded.shape[-2:]
    out = torch.fft.irfft2(torch.fft.rfft2(padded) * centred_spectrum(kernel.to(image), Hp, Wp), s=(Hp, Wp))
    return out[..., p:p + image.shape[-2], p:p + image.shape[-1]]


def richardson_lucy(image: torch.Tensor, kernel: torch.Tensor, iterations: int = 5) -> torch.Tensor:
    """image (B,C,H,W) positive float (linear light), blurred by ``kernel`` (k,k) or (B,k,k) (odd
    k, centred) -> (B,C,H,W) the estimate of the sharp image after ``iterations`` steps."""
    B, C, H, W = image.shape
    kernel = kernel.to(image).expand(B, *kernel.shape[-2:]) if kernel.dim() == 2 else kernel.to(image)
    p = kernel.shape[-1]  # reflection margin: wider than the kernel's reach
    observed = F.pad(image, (p, p, p, p), mode="reflect")
    Hp, Wp = observed.shape[-2:]
    K = centred_spectrum(kernel, Hp, Wp)[:, None]

    def convolve(x: torch.Tensor, spectrum: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(torch.fft.rfft2(x) * spectrum, s=(Hp, Wp))

    estimate = observed.clone()
    for _ in range(iterations):
        estimate = estimate * convolve(observed / convolve(estimate, K).clamp_min(1e-6), K.conj())
    return estimate[..., p:p + H, p:p + W]


def deblur_srgb(image: torch.Tensor, kernel: torch.Tensor, iterations: int = 5) -> torch.Tensor:
    """image (B,3,H,W) sRGB 0..1 -> the same deblurred: :func:`richardson_lucy` in linear light,
    where blur is a convolution, clamped back to 0..1."""
    linear = richardson_lucy(rgb_to_linear_rgb(image.clamp(0.0, 1.0)), kernel, iterations)
    return linear_rgb_to_rgb(linear.clamp(0.0, 1.0))
