"""The synthesis pass: stream the selected frames through a frame transform into a writer.

Only one chunk of frames is alive at a time, so memory does not grow with shot length.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from facepipe.io.reader import FrameChunk
from facepipe.pipeline.runner import RunContext

FrameTransform = Callable[[FrameChunk], "torch.Tensor"]  # noqa: F821


def passthrough(chunk: FrameChunk):
    """The identity transform: frames (T,3,H,W) unchanged."""
    return chunk.frames


def render_frames(
    ctx: RunContext, indices: np.ndarray, transform: FrameTransform, writer, desc: str = "render", scale: float = 1.0
) -> int:
    """Decode ``indices`` chunk by chunk (resized by ``scale``), apply ``transform``, hand the
    result to ``writer``.

    Returns the number of frames written.
    """
    from facepipe.pipeline.device import one_cpu_thread

    bar = ctx.progress(len(indices), desc)
    written = 0
    try:
        with one_cpu_thread(ctx.device):
            for chunk in ctx.reader.chunks(indices, chunk_size=None, scale=scale):
                writer.write(transform(chunk), chunk.indices)
                written += len(chunk)
                bar.update(len(chunk))
    finally:
        bar.close()
    return written
