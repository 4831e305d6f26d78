"""Deblur checkpoints: the generator and the moment regressor with the config that built them.

One ``torch.save`` file: ``{"format", "config", "generator", "regressor", "report"}``. Written
through :class:`facepipe.io.atomic.StagedFile`, so a killed training never leaves half a file.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

import torch

from facepipe.deblur.config import DeblurConfig
from facepipe.errors import FacepipeError, WeightsMissingError
from facepipe.io.atomic import StagedFile
from facepipe.nn.deblur_generator import MomentDeblurGenerator
from facepipe.nn.moment_regressor import MomentRegressor

FORMAT = "facepipe-deblur-1"


def build_networks(config: DeblurConfig) -> tuple[MomentDeblurGenerator, MomentRegressor]:
    """Fresh generator and moment regressor for ``config``."""
    return (MomentDeblurGenerator(config.width, config.levels, config.embed_dim),
            MomentRegressor(config.regressor_width))


def save_checkpoint(path, config: DeblurConfig, generator, regressor, report: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with StagedFile(path) as tmp:
        torch.save({"format": FORMAT, "config": asdict(config), "generator": generator.state_dict(),
                    "regressor": regressor.state_dict(), "report": report}, tmp)
    return path


def existing_checkpoint(path) -> Path:
    """``path`` as a Path; WeightsMissingError (exit 4, saying how to make one) when no such file
    exists."""
    path = Path(path)
    if not path.is_file():
        raise WeightsMissingError(f"{path}: no such deblur checkpoint (make one with: facepipe train deblur CLIPS... --out {path})")
    return path


def checkpoint_sha256(path) -> str:
    """The checkpoint file's sha256 (hex): its identity in cache keys, unchanged by a copy to
    another machine, changed by retraining into the same path."""
    return hashlib.sha256(existing_checkpoint(path).read_bytes()).hexdigest()


def load_checkpoint(path, device: str | torch.device = "cpu"):
    """-> (generator, regressor, config, report), networks in eval mode on ``device``."""
    path = existing_checkpoint(path)
    data = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FacepipeError(f"{path}: not a facepipe deblur checkpoint ({FORMAT})")
    config = DeblurConfig(**data["config"])
    generator, regressor = build_networks(config)
    generator.load_state_dict(data["generator"])
    regressor.load_state_dict(data["regressor"])
    return generator.to(device).eval(), regressor.to(device).eval(), config, data.get("report", {})
