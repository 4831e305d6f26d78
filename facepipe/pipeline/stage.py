"""The stage contract.

A stage is a small dataclass whose fields are its parameters. It declares the artifacts it
consumes (``inputs``, by stage name; ``"media"`` is the source clip) and produces one artifact
named after itself. ``version`` is part of the cache key: bump it whenever a code change alters
the stage's output, so stale cache entries are not reused.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from facepipe.pipeline.artifacts import Artifact

if TYPE_CHECKING:
    from facepipe.io.reader import FrameChunk
    from facepipe.pipeline.runner import RunContext


class Stage(ABC):
    name: ClassVar[str]
    version: ClassVar[str]
    inputs: ClassVar[tuple[str, ...]] = ()
    artifact: ClassVar[type[Artifact]]

    def params(self) -> dict:
        """Parameters that change the output (all dataclass fields by default)."""
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}

    @abstractmethod
    def run(self, ctx: RunContext, inputs: dict[str, Artifact]) -> Artifact:
        """Produce this stage's artifact from its inputs."""


class ChunkedStage(Stage):
    """A stage that streams the source frames chunk by chunk.

    Each chunk's partial artifact is cached as soon as it is done, so a killed run resumes at
    the first unfinished chunk. ``run_chunk`` receives the previous chunk's partial result so
    stateful stages (trackers) can carry their state across chunk boundaries.
    """

    #: Downscale factor applied to frames before ``run_chunk`` (1.0 = full resolution).
    frame_scale: ClassVar[float] = 1.0

    @abstractmethod
    def run_chunk(
        self, ctx: RunContext, chunk: FrameChunk, inputs: dict[str, Artifact], previous: Artifact | None
    ) -> Artifact:
        """Partial artifact for the frames of ``chunk`` (frames (T,3,H,W) float32 0..1)."""

    @abstractmethod
    def combine(self, parts: list[Artifact]) -> Artifact:
        """The whole-shot artifact from the partial ones, in frame order."""

    def run(self, ctx: RunContext, inputs: dict[str, Artifact]) -> Artifact:
        return ctx.run_chunked(self, inputs)
