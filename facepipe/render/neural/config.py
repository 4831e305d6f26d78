"""The neural renderer's settings: network size, crop size and the training recipe."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RendererConfig:
    """Network: ``width`` / ``levels`` / ``embed_dim`` of :class:`~facepipe.nn.face_renderer.FaceRendererNet`;
    crops of ``size`` px (a multiple of 2**levels), mouth crops of ``mouth_size`` px for the
    mouth discriminator; ``disc_width`` of the discriminators. Data: at most ``max_frames``
    frames of the shot, every ``holdout``-th held out for validation; references drawn from the
    ``far_share`` of training frames farthest from the target in AU space; the reference's mouth
    masked with probability ``mouth_mask``. Loss weights: L1 1 (inside the matte),
    ``feature_matching``, ``adversarial``. ``lr``, ``batch``, ``seed``. ``amp``: train with mixed
    precision (the networks' forward passes under autocast, bf16 where the device has it, else
    fp16 with loss scaling; :class:`~facepipe.render.neural.train.RendererGAN`).

    The default is the small CPU config (trains in minutes on 2 cores, in fp32); :meth:`gpu` is
    the design's 256 px renderer, with ``amp``."""

    size: int = 96
    width: int = 16
    levels: int = 3
    embed_dim: int = 64
    mouth_size: int = 32
    disc_width: int = 32
    max_frames: int = 400
    holdout: int = 10
    far_share: float = 0.5
    mouth_mask: float = 0.5
    feature_matching: float = 0.2
    adversarial: float = 0.02
    lr: float = 2e-4
    batch: int = 8
    seed: int = 0
    amp: bool = False

    @classmethod
    def for_device(cls, device, **changes) -> RendererConfig:
        """The GPU config on a CUDA device, else the CPU config."""
        return cls.gpu(**changes) if str(device).startswith("cuda") else cls(**changes)

    @classmethod
    def gpu(cls, **changes) -> RendererConfig:
        """The full-size config for a CUDA device."""
        return cls(**{"size": 256, "width": 64, "levels": 4, "embed_dim": 128, "mouth_size": 64, "disc_width": 64,
                      "batch": 16, "amp": True, **changes})
