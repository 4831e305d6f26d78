"""Restoring the face of a blurred frame: its square crop restored, the change pasted back.

A frame's face square (:func:`facepipe.face.extent.square_around` of its box, as the training
windows cut it) is cropped at the restorer's size S, restored at the central moment (c = 0.5,
the middle of the exposure, where the frame's own timestamp lies), and the *change*
(restored - crop), feathered to 0 at the square's edge, is resampled back onto the frame's
pixels and added. Adding the change rather than pasting the crop keeps the frame's own detail
finer than S px across the face (a 400 px face would otherwise come back softened to 128 px),
and with the feather the square leaves no seam.

Restorers: ``(crops (B,3,S,S) sRGB 0..1, velocity (B,2) crop px/frame) -> (B,3,S,S)``.

- :class:`GanRestorer`: the deblur GAN's generator (:mod:`facepipe.nn.deblur_generator`); it
  also renders N moments of one exposure.
- :class:`ClassicalRestorer`: Richardson-Lucy (:mod:`facepipe.deblur.classical`) with the
  straight path the face's velocity draws while the shutter is open.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from facepipe.deblur.checkpoint import load_checkpoint
from facepipe.deblur.classical import deblur_srgb, trajectory_kernel
from facepipe.deblur.exposure import moments

#: Crop size of the classical restorer (the GAN's is its checkpoint's).
CLASSICAL_SIZE = 128
#: Width of the feathered band inside the square's edge, as a fraction of its side.
FEATHER = 0.15


def feather(size: int, band: float = FEATHER) -> torch.Tensor:
    """(size,size) float32 weight: 1 inside, a raised-cosine fall to 0 over the outer ``band`` of
    the side on every edge."""
    d = torch.minimum(torch.arange(size), torch.arange(size).flip(0)).float() / max(size - 1, 1)  # 0 at an edge, 0.5 centre
    ramp = 0.5 - 0.5 * torch.cos(math.pi * (d / band).clamp(max=1.0))
    return ramp[:, None] * ramp[None, :]


def paste_change(frame: torch.Tensor, change: torch.Tensor, cx: float, cy: float, side: float) -> torch.Tensor:
    """frame (3,H,W) 0..1 + ``change`` (3,S,S) defined on the square of ``side`` px around (cx, cy)
    (the crop convention of :func:`facepipe.deblur.exposure.window_crops`: crop pixel 0 and S-1 on
    the square's edges) -> (3,H,W) clamped to 0..1 inside the square; pixels outside it are the
    frame's, bit for bit."""
    H, W = frame.shape[-2:]
    x0, y0 = cx - side / 2, cy - side / 2
    xa, ya = max(0, math.floor(x0)), max(0, math.floor(y0))
    xb, yb = min(W, math.ceil(x0 + side) + 1), min(H, math.ceil(y0 + side) + 1)
    if xb <= xa or yb <= ya:
        return frame
    gx = 2 * (torch.arange(xa, xb, device=frame.device, dtype=torch.float32) - x0) / side - 1
    gy = 2 * (torch.arange(ya, yb, device=frame.device, dtype=torch.float32) - y0) / side - 1
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]  # (1,h,w,2) x, y in -1..1
    patch = F.grid_sample(change[None].to(frame), grid, align_corners=True, padding_mode="zeros")[0]
    out = frame.clone()
    out[:, ya:yb, xa:xb] = (frame[:, ya:yb, xa:xb] + patch).clamp(0.0, 1.0)
    return out


class GanRestorer:
    """The deblur GAN's generator at its checkpoint's crop size, on ``device``."""

    def __init__(self, generator, size: int, device):
        self.generator, self.size, self.device = generator, size, device

    @classmethod
    def load(cls, weights, device) -> GanRestorer:
        generator, _, config, _ = load_checkpoint(weights, device)
        return cls(generator, config.size, device)

    @torch.no_grad()
    def __call__(self, crops: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        """The central moment of each blurred crop (B,3,S,S); the GAN reads the blur itself."""
        c = torch.full((len(crops),), 0.5, device=self.device)
        return self.generator(crops.to(self.device), c).clamp(0.0, 1.0).to(crops)

    @torch.no_grad()
    def moments(self, crop: torch.Tensor, n: int) -> torch.Tensor:
        """crop (3,S,S) -> (n,3,S,S): the sharp moments c = 0, 1/(n-1), ..., 1 of its exposure."""
        c = moments(n).to(self.device)
        return self.generator(crop.to(self.device)[None].expand(n, -1, -1, -1), c).clamp(0.0, 1.0).to(crop)


class ClassicalRestorer:
    """Richardson-Lucy with the kernel of the face's velocity over a ``shutter`` (degrees) exposure."""

    def __init__(self, shutter: float = 180.0, iterations: int = 5, size: int = CLASSICAL_SIZE):
        self.shutter, self.iterations, self.size = shutter, iterations, size

    def __call__(self, crops: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        half = velocity.float().cpu() * (self.shutter / 360.0) / 2  # the path runs -half..+half about the centre
        # one kernel per crop: their sizes differ with the speed
        return torch.cat([deblur_srgb(crop[None], trajectory_kernel(torch.stack([-h, h])), self.iterations)
                          for crop, h in zip(crops, half)])
