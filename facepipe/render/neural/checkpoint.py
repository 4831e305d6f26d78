"""Renderer checkpoints: one actor's trained generator with the config and AUs that built it.

One ``torch.save`` file: ``{"format", "config", "au_names", "actor", "generator", "report"}``,
written through :class:`facepipe.io.atomic.StagedFile` (a killed training never leaves half a
file). Where they live: :mod:`facepipe.render.neural.library`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from facepipe.errors import FacepipeError
from facepipe.io.atomic import StagedFile
from facepipe.render.neural.config import RendererConfig
from facepipe.render.neural.train import build_generator

FORMAT = "facepipe-renderer-1"


def save_renderer(path, config: RendererConfig, generator, au_names, actor: str, report: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with StagedFile(path) as tmp:
        torch.save({"format": FORMAT, "config": asdict(config), "au_names": list(au_names), "actor": actor,
                    "generator": generator.state_dict(), "report": report}, tmp)
    return path


def load_renderer(path, au_names, device="cpu"):
    """-> (generator in eval mode on ``device``, config, report). The checkpoint's AUs must be
    the face model's (``au_names``): the AU code means nothing on another rig."""
    path = Path(path)
    if not path.is_file():
        raise FacepipeError(f"{path}: no such renderer checkpoint (make one with: facepipe train renderer CLIP)")
    data = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FacepipeError(f"{path}: not a facepipe renderer checkpoint ({FORMAT})")
    if list(data["au_names"]) != list(au_names):
        raise FacepipeError(f"{path}: trained on another face rig's AUs; retrain it (facepipe train renderer --force)")
    config = RendererConfig(**data["config"])
    generator = build_generator(config, len(au_names))
    generator.load_state_dict(data["generator"])
    return generator.to(device).eval(), config, data.get("report", {})
