"""The neural renderer's mixed precision: the autocast dtype of training (:func:`amp_dtype`, with
``RendererConfig.amp``) and of edit-time inference (:func:`inference_dtype`), and the context
that applies either (:func:`autocast`)."""

from __future__ import annotations

import contextlib

import torch


def autocast(device_type: str, dtype: torch.dtype | None):
    """A context running ops on ``device_type`` ("cuda", "cpu") under autocast to ``dtype``;
    with dtype None, one that changes nothing (fp32)."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type, dtype=dtype)


def amp_dtype(device) -> torch.dtype:
    """The autocast dtype of mixed-precision training on ``device``: bf16 (fp32's range, no loss
    scaling) where the device has it (every CPU; CUDA from Ampere on), else fp16."""
    device = torch.device(device)
    return torch.float16 if device.type == "cuda" and not torch.cuda.is_bf16_supported() else torch.bfloat16


def inference_dtype(device) -> torch.dtype | None:
    """The autocast dtype of the renderer at edit time on ``device``: fp16 on CUDA, None (fp32)
    elsewhere. Not :func:`amp_dtype`: it does not depend on how the renderer was trained."""
    return torch.float16 if torch.device(device).type == "cuda" else None
