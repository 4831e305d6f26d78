"""Resolve a request into the stages it needs, run them in order, and cache what they make."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from facepipe.errors import FacepipeError
from facepipe.io.media import MediaInfo
from facepipe.io.reader import DEFAULT_CHUNK_BYTES, VideoReader, chunk_length
from facepipe.pipeline.artifacts import Artifact
from facepipe.pipeline.cache import ArtifactCache, cache_key
from facepipe.pipeline.progress import make_progress
from facepipe.pipeline.stage import ChunkedStage, Stage

SOURCE = "media"


def source_key(info: MediaInfo) -> str:
    """Identity of the source clip: its size, head and tail bytes and frame timestamps.

    Content-based rather than path/mtime-based, so a clip copied to a farm node keeps its key.
    """
    h = hashlib.sha256()
    path = Path(info.path)
    size = path.stat().st_size
    h.update(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    h.update(np.asarray(info.frame_pts, np.int64).tobytes())
    return h.hexdigest()[:32]


@dataclass
class RunContext:
    """What every stage may use: the source, the cache, the device and progress reporting."""

    media: MediaInfo
    cache: ArtifactCache | None
    device: object = "cpu"  # torch.device
    progress_mode: str = "auto"
    log: Callable[[str], None] = print
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    stats: dict = field(default_factory=lambda: {"ran": [], "cached": [], "chunks_cached": 0})
    #: Cache key of the stage being run (set by the Runner); chunk keys derive from it.
    current_key: str = ""

    def __post_init__(self):
        self.reader = VideoReader(self.media)

    def progress(self, total: int, desc: str):
        return make_progress(total, desc, self.progress_mode)

    def chunk_plan(self, scale: float = 1.0) -> list[np.ndarray]:
        """The fixed split of the whole shot into chunks (part of chunk cache keys)."""
        n = chunk_length(self.media, self.chunk_bytes, scale)
        return [np.arange(s, min(s + n, self.media.frame_count)) for s in range(0, self.media.frame_count, n)]

    def run_chunked(self, stage: ChunkedStage, inputs: dict[str, Artifact]) -> Artifact:
        plan = self.chunk_plan(stage.frame_scale)
        cache_name = f"{stage.name}.chunks"
        part_keys = [f"{self.current_key}-{int(c[0])}-{int(c[-1])}" for c in plan]
        cached = [self.cache.get(cache_name, k, stage.artifact) if self.cache else None for k in part_keys]
        todo = [c for c, part in zip(plan, cached) if part is None]
        # One decode stream over every missing chunk: re-opening and seeking per chunk would
        # decode from the previous keyframe each time. Every plan chunk but the last has the
        # same length, so grouping the missing frames by that length gives back the chunks.
        fresh = self.reader.chunks(np.concatenate(todo), chunk_size=len(plan[0]), scale=stage.frame_scale) if todo else None
        parts: list[Artifact] = []
        bar = self.progress(self.media.frame_count, stage.name)
        try:
            previous = None
            for indices, part_key, part in zip(plan, part_keys, cached):
                if part is None:
                    chunk = next(fresh)
                    part = stage.run_chunk(self, chunk, inputs, previous)
                    if self.cache:
                        self.cache.put(cache_name, part_key, part)
                else:
                    self.stats["chunks_cached"] += 1
                parts.append(part)
                previous = part
                bar.update(len(indices))
        finally:
            bar.close()
        return stage.combine(parts)


class Runner:
    """Pulls artifacts by stage name through a graph of stages, like a node graph pulls frames."""

    def __init__(self, stages: list[Stage], ctx: RunContext):
        self.stages = {s.name: s for s in stages}
        self.ctx = ctx
        self._keys: dict[str, str] = {SOURCE: source_key(ctx.media)}
        self._artifacts: dict[str, Artifact] = {}

    def key(self, name: str) -> str:
        if name not in self._keys:
            stage = self._stage(name)
            input_keys = {i: self.key(i) for i in stage.inputs}
            self._keys[name] = cache_key(stage.name, stage.version, stage.params(), input_keys)
        return self._keys[name]

    def get(self, name: str) -> Artifact:
        """The artifact of stage ``name``: from memory, the cache, or by running the stage."""
        if name in self._artifacts:
            return self._artifacts[name]
        stage = self._stage(name)
        key = self.key(name)
        cache = self.ctx.cache
        artifact = cache.get(name, key, stage.artifact) if cache else None
        if artifact is None:
            # Inputs are pulled only on a miss: a cached result needs none of its upstream work.
            inputs = {i: self.get(i) for i in stage.inputs if i != SOURCE}
            self.ctx.current_key = key
            artifact = stage.run(self.ctx, inputs)
            if cache:
                cache.put(name, key, artifact)
            self.ctx.stats["ran"].append(name)
        else:
            self.ctx.stats["cached"].append(name)
        self._artifacts[name] = artifact
        return artifact

    def _stage(self, name: str) -> Stage:
        try:
            return self.stages[name]
        except KeyError:
            raise FacepipeError(f"internal: no stage produces {name!r}") from None
