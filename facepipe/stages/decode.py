"""The decode stage: where every frame of the graph comes from (the source clip, through PyAV)."""

from __future__ import annotations

from dataclasses import dataclass

from facepipe.pipeline.stage import SourceStage


@dataclass
class DecodeStage(SourceStage):
    """Frames of the source clip, upright, ``(T,3,H,W) float32 0..1`` chunks, resized while
    decoding when a pull asks for a scale below 1 (:class:`facepipe.io.reader.VideoReader`)."""

    name = "decode"
    version = "1"

    def chunks(self, ctx, indices, chunk_size, scale):
        return ctx.reader.chunks(indices, chunk_size=chunk_size, scale=scale)
