"""The compare stage of a preview: the edit beside its source, as a reviewer watches it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from facepipe.io.reader import FrameChunk
from facepipe.pipeline.stage import FrameStage

COMPARE_MODES = ("side", "wipe", "none")


def compare_frames(source: torch.Tensor, edited: torch.Tensor, mode: str, positions: np.ndarray | None = None) -> torch.Tensor:
    """source, edited: (T,3,H,W). ``side``: (T,3,H,2W) source left, edit right; ``wipe``: (T,3,H,W)
    source left of a vertical line at ``positions`` (T,) 0..1 of the width, edit right of it;
    ``none``: the edit."""
    if mode == "side":
        return torch.cat([source, edited], dim=-1)
    if mode == "wipe":
        T, _, H, W = edited.shape
        out = edited.clone()
        for t in range(T):
            x = int(round(float(positions[t]) * (W - 1)))
            out[t, :, :, :x] = source[t, :, :, :x]
            out[t, :, :, max(0, x - 1) : x + 1] = 1.0  # the wipe line
        return out
    return edited


def source_frames(chunk: FrameChunk) -> torch.Tensor:
    """(T,3,H,W) what the reviewer compares the edit with: the decoded frames. A chunk that went
    through the deblur node carries them as ``decoded`` (its plate has restored faces); an edited
    chunk's plate is them otherwise; a pass-through chunk is them."""
    for name in ("decoded", "plate"):
        frames = getattr(chunk, name, None)
        if frames is not None:
            return frames
    return chunk.frames


def even_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The decoder's size at ``scale`` (as :class:`~facepipe.io.reader.VideoReader` rounds it),
    cropped down to even numbers for 4:2:0 H.264."""
    w, h = max(2, round(width * scale)), max(2, round(height * scale))
    return w - w % 2, h - h % 2


@dataclass
class CompareStage(FrameStage):
    """Frames cropped to an even ``width`` x ``height`` and shown as ``mode`` (see
    :func:`compare_frames`) against the decoded source (:func:`source_frames`); the wipe crosses the frame over ``indices``
    (the previewed frames; context frames before them, not written, show it at the start)."""

    name = "compare"
    version = "1"

    frames_from: str = "smooth"
    mode: str = "side"
    width: int = 2
    height: int = 2
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def params(self) -> dict:
        return {"mode": self.mode, "size": [self.width, self.height], "frames": [int(i) for i in self.indices]}

    def open(self, ctx, inputs, scale):
        n = len(self.indices)
        wipe = np.linspace(0.0, 1.0, n) if n > 1 else np.full(1, 0.5)
        where = {int(i): k for k, i in enumerate(self.indices)}
        h, w = self.height, self.width

        def show(chunk: FrameChunk) -> FrameChunk:
            source = source_frames(chunk)
            frames = compare_frames(source[..., :h, :w], chunk.frames[..., :h, :w], self.mode,
                                    wipe[[where.get(int(i), 0) for i in chunk.indices]])  # fmt: skip
            return FrameChunk(chunk.indices, chunk.pts, frames)

        return show
