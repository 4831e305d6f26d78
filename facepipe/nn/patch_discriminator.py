"""Conditional patch discriminator (pix2pix's PatchGAN): is this crop a sharp moment of that
blurred exposure?

    blurred (B,3,S,S), candidate (B,3,S,S) -> logits (B,1,S/2**layers,S/2**layers)

Each logit judges one receptive-field patch, so the loss asks for sharp *texture* everywhere
rather than one global verdict. Spectral normalisation keeps it from overpowering a small
generator on a short CPU budget.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm


class PatchDiscriminator(nn.Module):
    def __init__(self, width: int = 32, layers: int = 3):
        super().__init__()
        mods: list[nn.Module] = []
        cin = 6
        for i in range(layers):
            cout = width * 2 ** i
            mods += [spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            cin = cout
        mods.append(spectral_norm(nn.Conv2d(cin, 1, 3, padding=1)))
        self.net = nn.Sequential(*mods)

    def forward(self, blurred: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([blurred, candidate], 1) * 2 - 1)
