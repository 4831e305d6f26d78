"""The encode stage: the sink of the synthesis pass. Pulling it streams the selected frames from
its frame input into a movie or image-sequence writer and returns what was written.

Decoding (the reader's read-ahead thread), the stages in between (this thread and the worker
threads) and encoding (a write-behind thread, :func:`facepipe.pipeline.synthesis.write_behind`)
overlap; PyAV releases the GIL while it codes. A bounded number of chunks is alive at a time,
so memory does not grow with shot length. The writer stages its output and renames it into
place only when complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np
import torch

from facepipe.pipeline.artifacts import Artifact
from facepipe.pipeline.device import one_cpu_thread
from facepipe.pipeline.stage import SinkStage
from facepipe.pipeline.synthesis import write_behind


@dataclass
class Written(Artifact):
    """output: the file (or sequence pattern) written; frames: how many frames."""

    output: str = ""
    frames: int = 0


@dataclass
class EncodeStage(SinkStage):
    """Write source frames ``indices`` (T,) of ``frames_from`` at ``scale`` with ``writer`` (a
    :class:`~facepipe.io.writer.MovieWriter` or ``ImageSequenceWriter``, already checked against
    existing outputs). ``context``: source frames pulled through the graph before them but not
    written, so that temporal stages see the frames a whole-shot run would have shown them (a
    farm chunk gives the frames one long run gives). ``desc`` names the progress bar."""

    name = "encode"
    version = "1"

    writer: object = None
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    frames_from: str = "smooth"
    scale: float = 1.0
    desc: str = "encode"
    context: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def params(self) -> dict:
        return {"output": _target(self.writer), "frames": [int(i) for i in self.indices], "scale": self.scale,
                "context": [int(i) for i in self.context]}  # fmt: skip

    def consume(self, ctx, inputs, pull) -> Written:
        pulled = np.union1d(np.asarray(self.indices, np.int64), np.asarray(self.context, np.int64))
        keep = set(np.asarray(self.indices).tolist())
        chunks = pull(pulled, self.scale)
        bar = ctx.progress(len(pulled), self.desc)
        written = 0
        try:
            with self.writer, one_cpu_thread(ctx.device), write_behind(self.writer) as write:
                for chunk in chunks:
                    mine = np.array([int(i) in keep for i in chunk.indices], bool)
                    if mine.all():
                        write(chunk.frames, chunk.indices)
                    elif mine.any():
                        write(chunk.frames[torch.from_numpy(mine)], chunk.indices[mine])
                    written += int(mine.sum())
                    bar.update(len(chunk))
        finally:
            bar.close()
        return Written(output=_target(self.writer), frames=written)


def _target(writer) -> str:
    """The movie a writer writes, or its image sequence's pattern."""
    return str(getattr(writer, "out", None) or getattr(writer, "pattern", ""))
