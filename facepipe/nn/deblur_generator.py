"""Continuous-motion face deblurring generator (the CFMD-GAN idea, IEEE Access 2022): one blurred
face crop and a moment c in [0, 1] inside its exposure -> the sharp face at that moment.

    blurred (B,3,S,S) float 0..1, c (B,) float 0..1 -> sharp (B,3,S,S)

An encoder-decoder (U-Net: ``levels`` strided stages of ``width * 2**i`` channels, S divisible by
2**levels) whose blocks adapt to c in two ways:

- deformable sampling: a 3x3 conv of the c-modulated features predicts a per-pixel offset field,
  and ``grid_sample`` resamples the features along it (where in the smear the moment's content
  lies);
- channel attention gated by c: squeeze-and-excite whose gate sees the embedding of c too.

The output is the input plus a predicted residual (the head starts at zero), so an untrained net
returns the blurred crop and training only has to learn the difference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from kornia.geometry import create_meshgrid
from torch import nn


class MomentEmbedding(nn.Module):
    """c (B,) in [0,1] -> (B,dim): sinusoidal features of c through a small MLP."""

    def __init__(self, dim: int = 64, frequencies: int = 8):
        super().__init__()
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(frequencies, dtype=torch.float32), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * frequencies + 1, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        x = c.float()[:, None] * self.freqs[None]
        return self.mlp(torch.cat([c.float()[:, None], torch.sin(x), torch.cos(x)], 1))


def warp_features(features: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """features (B,C,H,W) resampled at identity + offset (B,2,H,W) (x, y in normalised [-1,1]
    units), bilinear, borders clamped."""
    B, _, H, W = features.shape
    grid = create_meshgrid(H, W, normalized_coordinates=True, device=features.device, dtype=features.dtype)
    return F.grid_sample(features, grid + offset.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border",
                         align_corners=True)


class MomentBlock(nn.Module):
    """Residual block adapted to the moment: (B,C,H,W), embedding (B,E) -> (B,C,H,W)."""

    def __init__(self, channels: int, embed_dim: int, max_offset: float = 0.1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.film = nn.Linear(embed_dim, 2 * channels)
        self.offset = nn.Conv2d(channels, 2, 3, padding=1)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        hidden = max(channels // 4, 8)
        self.gate = nn.Sequential(nn.Linear(channels + embed_dim, hidden), nn.SiLU(), nn.Linear(hidden, channels))
        self.max_offset = max_offset

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(e)[:, :, None, None].chunk(2, 1)
        h = F.leaky_relu(self.conv1(x), 0.2) * (1 + scale) + shift
        h = warp_features(h, self.max_offset * torch.tanh(self.offset(h)))
        h = self.conv2(h)
        g = torch.sigmoid(self.gate(torch.cat([h.mean((2, 3)), e], 1)))[:, :, None, None]
        return x + h * g


class MomentDeblurGenerator(nn.Module):
    """See the module docstring. width: channels of the first stage; levels: down-sampling stages."""

    def __init__(self, width: int = 32, levels: int = 3, embed_dim: int = 64):
        super().__init__()
        self.levels = levels
        chans = [width * 2 ** i for i in range(levels + 1)]
        self.embed = MomentEmbedding(embed_dim)
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.enc = nn.ModuleList(MomentBlock(c, embed_dim) for c in chans[:-1])
        self.down = nn.ModuleList(nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in zip(chans[:-1], chans[1:]))
        self.mid = MomentBlock(chans[-1], embed_dim)
        self.up = nn.ModuleList(nn.Conv2d(b, a, 3, padding=1) for a, b in zip(chans[:-1], chans[1:]))
        self.merge = nn.ModuleList(nn.Conv2d(2 * a, a, 1) for a in chans[:-1])
        self.dec = nn.ModuleList(MomentBlock(c, embed_dim) for c in chans[:-1])
        self.head = nn.Conv2d(width, 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, blurred: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if blurred.shape[-1] % 2 ** self.levels or blurred.shape[-2] % 2 ** self.levels:
            raise ValueError(f"crop size {tuple(blurred.shape[-2:])} is not divisible by {2 ** self.levels}")
        e = self.embed(c)
        x = self.stem(blurred * 2 - 1)
        skips = []
        for block, down in zip(self.enc, self.down):
            x = block(x, e)
            skips.append(x)
            x = F.leaky_relu(down(x), 0.2)
        x = self.mid(x, e)
        for i in reversed(range(self.levels)):
            x = F.leaky_relu(self.up[i](F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)), 0.2)
            x = self.dec[i](self.merge[i](torch.cat([x, skips[i]], 1)), e)
        return blurred + self.head(x)
