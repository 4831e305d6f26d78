"""Compute device selection for ``--device auto|cpu|cuda[:N]|mps``."""

from __future__ import annotations

import contextlib

import torch

from facepipe.errors import FacepipeError


def select_device(name: str = "auto"):
    """A ``torch.device``; ``auto`` takes CUDA when present, else CPU."""
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


@contextlib.contextmanager
def one_cpu_thread(device="cpu"):
    """Run torch on one CPU thread inside the block (no effect on other devices).

    Per-frame work on face-sized tensors gains little from more threads and loses badly when the
    cores are shared: rendering 60 frames took 9 s on one thread and 102 s on two on a busy
    2-core machine (the fit measured the same, 2-5x)."""
    if torch.device(device).type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
