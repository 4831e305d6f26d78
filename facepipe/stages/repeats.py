"""The repeats stage: which frames of the shot repeat the one before
(:mod:`facepipe.analysis.repeats`), from the decoded frames and the tracked face, once per shot.

An analysis artifact rather than a decision the renderer makes as frames stream past: the
answer for a frame then does not depend on where a chunk of the edit starts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facepipe.analysis.repeats import face_step, repeat_flags
from facepipe.face.topology import N_VERTICES
from facepipe.pipeline.artifacts import Artifact
from facepipe.pipeline.stage import ChunkedStage


@dataclass
class RepeatFrames(Artifact):
    """frame_index: (T,) int64; step: (T,) float32 mean absolute change inside the face's box
    from the previous frame (NaN: no face or first frame); repeat: (T,) uint8 1 where the frame
    repeats the one before."""

    frame_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    step: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    repeat: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))


@dataclass
class RepeatsStage(ChunkedStage):
    """Repeated frames of the shot (see :mod:`facepipe.analysis.repeats`)."""

    name = "repeats"
    version = "1"
    frames_from = "decode"
    inputs = ("track",)
    artifact = RepeatFrames

    def run_chunk(self, ctx, chunk, inputs, previous) -> RepeatFrames:
        tracks = inputs["track"]
        rows = {int(f): r for r, f in enumerate(tracks.frame_index)}
        first = int(chunk.indices[0])
        prev = ctx.reader.read([first - 1])[0] if first > 0 else None  # the frame before the chunk
        steps = np.full(len(chunk), np.nan, np.float32)
        for t, index in enumerate(chunk.indices.tolist()):
            mesh = tracks.landmarks[rows[index], :N_VERTICES, :2] if index in rows else None
            before = chunk.frames[t - 1] if t > 0 else prev
            if before is not None and mesh is not None and np.isfinite(mesh).all():
                steps[t] = face_step(chunk.frames[t], before, mesh)
        return RepeatFrames(frame_index=chunk.indices.astype(np.int64), step=steps)

    def combine(self, parts: list[RepeatFrames]) -> RepeatFrames:
        steps = np.concatenate([p.step for p in parts])
        return RepeatFrames(frame_index=np.concatenate([p.frame_index for p in parts]), step=steps,
                            repeat=repeat_flags(steps).astype(np.uint8))  # fmt: skip
