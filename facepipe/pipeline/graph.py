"""The pull graph: stages by name, artifacts pulled through the cache, frames pulled as streams.

Like a compositing node graph: asking for a node pulls what it needs and nothing more. An
analysis artifact comes from memory, else the cache (keyed by the hash of the stage, its
parameters, its code version and its inputs' keys), else by running the stage, whose inputs
are pulled only then. Frame nodes are not cached: pulling one opens a transform per node on
the way to the source and returns the stream of chunks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from facepipe.errors import FacepipeError
from facepipe.pipeline.artifacts import Artifact
from facepipe.pipeline.chunks import run_chunked
from facepipe.pipeline.context import RunContext
from facepipe.pipeline.hashing import cache_key, source_key
from facepipe.pipeline.stage import AnalysisStage, ChunkedStage, FrameStage, SinkStage, SourceStage, Stage


class Graph:
    """A set of stages (unique names) over one clip (``ctx``)."""

    def __init__(self, stages: Sequence[Stage], ctx: RunContext):
        self.stages = {s.name: s for s in stages}
        if len(self.stages) != len(stages):
            raise FacepipeError("internal: two stages share a name")
        self.ctx = ctx
        self._keys: dict[str, str] = {}
        self._artifacts: dict[str, Artifact] = {}
        #: The transforms opened by frame pulls, by stage name (their statistics feed reports).
        self.opened: dict[str, object] = {}

    def upstream(self, name: str) -> tuple[str, ...]:
        """The nodes ``name`` reads: its frame input first, then its artifact inputs."""
        stage = self.stage(name)
        return ((stage.frames_from,) if stage.frames_from else ()) + tuple(stage.inputs)

    def order(self, name: str) -> list[str]:
        """Every node ``name`` depends on, each after its own inputs, ending with ``name``."""
        seen: list[str] = []

        def visit(node: str, path: tuple[str, ...]) -> None:
            if node in path:
                raise FacepipeError(f"internal: the stage graph has a cycle through {node!r}")
            if node not in seen:
                for up in self.upstream(node):
                    visit(up, path + (node,))
                seen.append(node)

        visit(name, ())
        return seen

    def key(self, name: str) -> str:
        if name not in self._keys:
            stage = self.stage(name)
            inputs = {i: self.key(i) for i in self.upstream(name)}
            if isinstance(stage, SourceStage):
                inputs["media"] = source_key(self.ctx.media)
            self._keys[name] = cache_key(stage.name, stage.version, stage.params(), inputs)
        return self._keys[name]

    def get(self, name: str) -> Artifact:
        """The artifact of stage ``name``: from memory, the cache, or by running the stage (a
        sink runs on every call)."""
        stage = self.stage(name)
        if isinstance(stage, SinkStage):
            self.ctx.stats["ran"].append(name)
            return stage.consume(self.ctx, self._inputs(stage), self._puller(stage.frames_from))
        if not isinstance(stage, (AnalysisStage, ChunkedStage)):
            raise FacepipeError(f"internal: {name!r} makes frames, not an artifact; pull it with frames()")
        if name in self._artifacts:
            return self._artifacts[name]
        key, cache = self.key(name), self.ctx.cache
        artifact = cache.get(name, key, stage.artifact) if cache else None
        if artifact is None:
            artifact = self._run(stage, key)
            if cache:
                cache.put(name, key, artifact)
            self.ctx.stats["ran"].append(name)
        else:
            self.ctx.stats["cached"].append(name)
        self._artifacts[name] = artifact
        return artifact

    def frames(self, name: str, indices, scale: float = 1.0, chunk_size: int | None = None) -> Iterator:
        """The chunks of frame node ``name`` for source frames ``indices`` at ``scale``. Every
        transform between it and the source is opened (their inputs pulled) before this returns."""
        stage = self.stage(name)
        indices = np.asarray(indices, np.int64)
        if isinstance(stage, SourceStage):
            return stage.chunks(self.ctx, indices, chunk_size, scale)
        if not isinstance(stage, FrameStage):
            raise FacepipeError(f"internal: {name!r} makes an artifact, not frames; pull it with get()")
        upstream = self.frames(stage.frames_from, indices, scale, chunk_size)
        transform = stage.open(self.ctx, self._inputs(stage), scale)
        self.opened[name] = transform
        self.ctx.stats["streamed"].append(name)
        return map(transform, upstream)

    def stage(self, name: str) -> Stage:
        try:
            return self.stages[name]
        except KeyError:
            raise FacepipeError(f"internal: no stage produces {name!r}") from None

    def _inputs(self, stage: Stage) -> dict[str, Artifact]:
        return {i: self.get(i) for i in stage.inputs}

    def _puller(self, name: str):
        return lambda indices, scale=1.0: self.frames(name, indices, scale)

    def _run(self, stage: Stage, key: str) -> Artifact:
        # Inputs are pulled only on a miss: a cached result needs none of its upstream work.
        inputs = self._inputs(stage)
        if isinstance(stage, AnalysisStage):
            return stage.run(self.ctx, inputs)
        source = lambda idx, size, scale: self.frames(stage.frames_from, idx, scale, size)  # noqa: E731
        artifact = run_chunked(self.ctx, stage, inputs, key, source)
        stage.finish(self.ctx, artifact)
        return artifact
