"""Conditional patch discriminator (pix2pix's PatchGAN): does this candidate look real, given
what it was made from?

    *images (B,c_i,S,S) concatenated to in_channels -> logits (B,1,S/2**layers,S/2**layers)

Each logit judges one receptive-field patch, so the loss asks for real *texture* everywhere
rather than one global verdict. Spectral normalisation keeps it from overpowering a small
generator on a short CPU budget. The deblur GAN asks it about (blurred, sharp candidate); the
face renderer about (conditioning maps, face). :meth:`features` also returns the intermediate
activations, for a feature-matching loss.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm


class PatchDiscriminator(nn.Module):
    def __init__(self, width: int = 32, layers: int = 3, in_channels: int = 6):
        super().__init__()
        self.stages = nn.ModuleList()
        cin = in_channels
        for i in range(layers):
            cout = width * 2 ** i
            self.stages.append(nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)))
            cin = cout
        self.stages.append(spectral_norm(nn.Conv2d(cin, 1, 3, padding=1)))

    def features(self, *images: torch.Tensor) -> list[torch.Tensor]:
        """Activations of every stage, the logits last."""
        x = torch.cat(images, 1) * 2 - 1
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out

    def forward(self, *images: torch.Tensor) -> torch.Tensor:
        return self.features(*images)[-1]
