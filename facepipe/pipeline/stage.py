"""The stage contract: the kinds of node a :class:`~facepipe.pipeline.graph.Graph` pulls.

Every stage is a small dataclass whose fields are its parameters. It names the artifacts it
consumes (``inputs``, by stage name) and, if it reads frames, the one node whose frames it
reads (``frames_from``). ``version`` is part of the cache key: bump it whenever a code change
alters the stage's output, so stale cache entries are not reused.

- :class:`AnalysisStage`: artifacts in, one artifact out, cached (fit3d, plan).
- :class:`ChunkedStage`: reads frames chunk by chunk into one artifact, cached per chunk so a
  killed run resumes at the first unfinished chunk (scan, track, expression).
- :class:`SourceStage`: where frames come from (decode).
- :class:`FrameStage`: frames in, frames out, streamed and never cached (deblur, render,
  composite, smooth): ``open`` prepares a per-run transform that sees the chunks in order.
- :class:`SinkStage`: consumes a frame stream and returns a small result (encode); it runs on
  every pull, because what it makes is a file, not an artifact.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, ClassVar, Protocol

from facepipe.pipeline.artifacts import Artifact

if TYPE_CHECKING:
    import numpy as np

    from facepipe.io.reader import FrameChunk
    from facepipe.pipeline.context import RunContext


class Stage(ABC):
    name: ClassVar[str]
    version: ClassVar[str]
    inputs: ClassVar[tuple[str, ...]] = ()
    #: The node whose frames this stage reads ("" for none).
    frames_from: ClassVar[str] = ""

    def params(self) -> dict:
        """Parameters that change the output (all dataclass fields by default)."""
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}


class AnalysisStage(Stage):
    """Artifacts in, one cached artifact out."""

    artifact: ClassVar[type[Artifact]]

    @abstractmethod
    def run(self, ctx: RunContext, inputs: dict[str, Artifact]) -> Artifact:
        """Produce this stage's artifact from its inputs."""


class ChunkedStage(Stage):
    """Streams the frames of ``frames_from`` over the whole shot into one artifact.

    Each chunk's partial artifact is cached as soon as it is done. ``run_chunk`` receives the
    previous chunk's partial result so stateful stages (trackers) carry their state across
    chunk boundaries. ``finish`` may post-process the combined artifact (log a message).
    """

    artifact: ClassVar[type[Artifact]]
    #: Downscale factor of the frames ``run_chunk`` sees (1.0 = full resolution).
    frame_scale: ClassVar[float] = 1.0

    @abstractmethod
    def run_chunk(self, ctx: RunContext, chunk: FrameChunk, inputs: dict[str, Artifact],
                  previous: Artifact | None) -> Artifact:  # fmt: skip
        """Partial artifact for the frames of ``chunk`` (frames (T,3,H,W) float32 0..1)."""

    @abstractmethod
    def combine(self, parts: list[Artifact]) -> Artifact:
        """The whole-shot artifact from the partial ones, in frame order."""

    def finish(self, ctx: RunContext, artifact: Artifact) -> None:
        """Called once the whole-shot artifact is computed (not when it came from the cache)."""


class SourceStage(Stage):
    """Where frames come from."""

    @abstractmethod
    def chunks(self, ctx: RunContext, indices: np.ndarray, chunk_size: int | None, scale: float) -> Iterator[FrameChunk]:
        """Chunks covering ``indices`` in order, resized by ``scale`` (``chunk_size`` None: the
        reader's default budget)."""


class FrameTransform(Protocol):
    """One run's state of a :class:`FrameStage`: called with every chunk of the stream, in order."""

    def __call__(self, chunk): ...


class FrameStage(Stage):
    """Frames in, frames out: a transform of the chunk stream, not cached."""

    @abstractmethod
    def open(self, ctx: RunContext, inputs: dict[str, Artifact], scale: float) -> FrameTransform:
        """The transform for one run over frames decoded at ``scale``."""


class SinkStage(Stage):
    """Consumes a frame stream (an output file) and returns a small result; never cached."""

    artifact: ClassVar[type[Artifact]]

    @abstractmethod
    def consume(self, ctx: RunContext, inputs: dict[str, Artifact], pull: FramePull) -> Artifact:
        """Pull the frames it needs from ``frames_from`` and return the result."""


#: ``pull(indices, scale)``: the chunks of a frame node for source frames ``indices`` (T,) at
#: ``scale``, in order; every transform on the way is opened before it returns.
FramePull = Callable[["np.ndarray", float], Iterator]
