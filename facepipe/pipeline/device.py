"""Compute device selection for ``--device auto|cpu|cuda[:N]|mps``."""

from __future__ import annotations

from facepipe.errors import FacepipeError


def select_device(name: str = "auto"):
    """A ``torch.device``; ``auto`` takes CUDA when present, else CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise FacepipeError(f"unknown --device {name!r}: use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FacepipeError("--device cuda: no CUDA GPU is visible to torch here; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise FacepipeError("--device mps: MPS is not available here; use --device cpu")
    return device
