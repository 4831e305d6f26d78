"""The deblur GAN's settings: network sizes, the training recipe and its budget."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeblurConfig:
    """Networks: ``width`` / ``levels`` / ``embed_dim`` of the generator, ``regressor_width``.
    Data: crops of ``size`` px, exposures of ``exposure`` frames (sub-exposures of 3..exposure
    odd frames are drawn in training), trained on random ``train_size`` crops of them; with a
    ``shutter`` (degrees), each exposure is instead ``samples`` moments over that shutter around
    a sub-window's central frame, interpolated by optical flow
    (:func:`facepipe.deblur.exposure.synthetic_exposure`, as ``benchmarks/deblur.py --shutter``). Loss
    weights: L1 1, ``adversarial``, ``moment``. ``lr``, ``batch``, ``seed``.

    The default is the small CPU config (trains in minutes on 2 cores); a GPU config raises width,
    size and batch."""

    width: int = 16
    levels: int = 3
    embed_dim: int = 64
    regressor_width: int = 16
    size: int = 128
    exposure: int = 7
    train_size: int = 96
    shutter: float | None = None
    samples: int = 16
    batch: int = 8
    lr: float = 2e-4
    adversarial: float = 0.01
    moment: float = 0.05
    seed: int = 0
