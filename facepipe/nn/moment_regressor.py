"""Moment regressor: at which moment of this blurred exposure was that sharp crop taken?

    blurred (B,3,S,S), sharp (B,3,S,S) -> c (B,) in [0,1]

Trained on real (exposure, frame, moment) triples; its verdict on the generator's output is the
generator's moment loss, and its agreement with c measures whether restored moments come out in
temporal order.
"""

from __future__ import annotations

import torch
from torch import nn


class MomentRegressor(nn.Module):
    def __init__(self, width: int = 32, layers: int = 4):
        super().__init__()
        mods: list[nn.Module] = []
        cin = 6
        for i in range(layers):
            cout = width * 2 ** min(i, 3)
            mods += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            cin = cout
        self.features = nn.Sequential(*mods)
        self.head = nn.Linear(cin, 1)

    def forward(self, blurred: torch.Tensor, sharp: torch.Tensor) -> torch.Tensor:
        f = self.features(torch.cat([blurred, sharp], 1) * 2 - 1).mean((2, 3))
        return torch.sigmoid(self.head(f))[:, 0]
