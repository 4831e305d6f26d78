"""The scan stage: cheap per-frame statistics of the whole shot.

Colour histograms feed shot-cut detection; the sharpness measure (variance of the Laplacian of
luma) is the per-frame blur estimate that deblur and reblur start from.
"""

from __future__ import annotations

from dataclasses import dataclass

import kornia
import numpy as np
import torch
import torch.nn.functional as F

from facepipe.pipeline.artifacts import Artifact
from facepipe.pipeline.stage import ChunkedStage

HIST_BINS = 16


@dataclass
class FrameStats(Artifact):
    """indices: (T,) int64; histograms: (T,3,HIST_BINS) float32, each row sums to 1;
    mean_rgb: (T,3) float32 0..1; sharpness: (T,) float32 Laplacian variance of luma at 256 px."""

    indices: np.ndarray
    histograms: np.ndarray
    mean_rgb: np.ndarray
    sharpness: np.ndarray


def frame_statistics(frames) -> FrameStats:
    """Statistics of frames (T,3,H,W) float32 0..1 (torch)."""
    t = frames.shape[0]
    small = F.interpolate(frames, size=(256, 256), mode="area") if frames.shape[-1] > 256 else frames
    bins = (small.clamp(0, 1) * (HIST_BINS - 1e-4)).long().flatten(2)  # (T,3,N)
    hist = torch.zeros(t, 3, HIST_BINS).scatter_add_(2, bins, torch.ones_like(bins, dtype=torch.float32))
    hist /= bins.shape[-1]
    luma = kornia.color.rgb_to_grayscale(small)  # (T,1,h,w), Rec. 601 weights
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    lap = F.conv2d(luma, kernel)
    return FrameStats(
        indices=np.zeros(t, np.int64),
        histograms=hist.numpy().astype(np.float32),
        mean_rgb=frames.mean(dim=(2, 3)).numpy().astype(np.float32),
        sharpness=lap.flatten(1).var(dim=1).numpy().astype(np.float32),
    )


@dataclass
class ScanStage(ChunkedStage):
    name = "scan"
    version = "2"  # 2: luma by kornia (float rounding)
    frames_from = "decode"
    artifact = FrameStats

    def run_chunk(self, ctx, chunk, inputs, previous) -> FrameStats:
        stats = frame_statistics(chunk.frames)
        stats.indices = chunk.indices.copy()
        return stats

    def combine(self, parts: list[FrameStats]) -> FrameStats:
        return FrameStats(
            indices=np.concatenate([p.indices for p in parts]),
            histograms=np.concatenate([p.histograms for p in parts]),
            mean_rgb=np.concatenate([p.mean_rgb for p in parts]),
            sharpness=np.concatenate([p.sharpness for p in parts]),
        )
