"""Person-specific neural face renderer (the NED / Head2Head idea): the warped face and renders
of the target frame's fitted mesh in, the real-looking face out.

    inputs (B,C,S,S) float 0..1, au (B,K) float -> face (B,3,S,S) float 0..1

``inputs`` stacks the geometric warp (3 channels, first) and the conditioning maps of
:mod:`facepipe.render.neural.conditioning`; ``au`` is the target expression, its own code. A
U-Net of diffusers' ``ResnetBlock2D``s (``levels`` stages of ``width * 2**i`` channels, S
divisible by 2**levels) whose every block is modulated by the AU code (``scale_shift``: each
block's normalised features are scaled and shifted by a projection of the code, i.e. FiLM), so
the expression steers every scale, not only the input.

The output is the warp plus a predicted residual (the head starts at zero): an untrained net
returns the warp, and training learns what the warp cannot carry (new folds, teeth, eye whites).
"""

from __future__ import annotations

import torch
from diffusers.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D
from torch import nn


def _block(cin: int, cout: int, embed_dim: int) -> ResnetBlock2D:
    return ResnetBlock2D(in_channels=cin, out_channels=cout, temb_channels=embed_dim, groups=8,
                         time_embedding_norm="scale_shift")


class FaceRendererNet(nn.Module):
    """in_channels: warp (3) + conditioning maps; au_dim: K; width: channels of the first stage;
    levels: down/up stages; embed_dim: size of the AU code."""

    def __init__(self, in_channels: int, au_dim: int, width: int = 32, levels: int = 3, embed_dim: int = 64):
        super().__init__()
        self.levels = levels
        self.au_code = nn.Sequential(nn.Linear(au_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim), nn.SiLU())
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        chans = [width * 2 ** i for i in range(levels + 1)]
        self.down_blocks = nn.ModuleList(_block(chans[i], chans[i], embed_dim) for i in range(levels))
        self.downs = nn.ModuleList(Downsample2D(chans[i], use_conv=True, out_channels=chans[i + 1]) for i in range(levels))
        self.middle = _block(chans[-1], chans[-1], embed_dim)
        self.ups = nn.ModuleList(Upsample2D(chans[i + 1], use_conv=True, out_channels=chans[i]) for i in range(levels))
        self.up_blocks = nn.ModuleList(_block(2 * chans[i], chans[i], embed_dim) for i in range(levels))
        self.head = nn.Conv2d(width, 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, inputs: torch.Tensor, au: torch.Tensor) -> torch.Tensor:
        code = self.au_code(au.float())
        x = self.stem(inputs * 2 - 1)
        skips = []
        for block, down in zip(self.down_blocks, self.downs):
            x = block(x, code)
            skips.append(x)
            x = down(x)
        x = self.middle(x, code)
        for i in reversed(range(self.levels)):
            x = self.up_blocks[i](torch.cat([self.ups[i](x), skips[i]], 1), code)
        return (inputs[:, :3] + self.head(x)).clamp(0, 1)
