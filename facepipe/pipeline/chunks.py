"""Run a :class:`~facepipe.pipeline.stage.ChunkedStage` over a shot, chunk by chunk, resumably.

The shot is split by a fixed plan (:meth:`RunContext.chunk_plan`), so chunk cache keys are the
same in every run: a killed run resumes at the first chunk it had not finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from facepipe.pipeline.artifacts import Artifact
from facepipe.pipeline.context import RunContext
from facepipe.pipeline.stage import ChunkedStage

#: ``frames(indices, chunk_size, scale)`` -> chunks of the stage's frame input.
ChunkSource = Callable[[np.ndarray, int, float], Iterator]


def run_chunked(ctx: RunContext, stage: ChunkedStage, inputs: dict[str, Artifact], key: str,
                frames: ChunkSource) -> Artifact:  # fmt: skip
    """The whole-shot artifact of ``stage`` (cache key ``key``) from its chunks: cached chunks
    are loaded, missing ones computed from ``frames`` and cached as soon as each is done."""
    plan = ctx.chunk_plan(stage.frame_scale)
    cache_name = f"{stage.name}.chunks"
    part_keys = [f"{key}-{int(c[0])}-{int(c[-1])}" for c in plan]
    cached = [ctx.cache.get(cache_name, k, stage.artifact) if ctx.cache else None for k in part_keys]
    todo = [c for c, part in zip(plan, cached) if part is None]
    # One decode stream over every missing chunk: re-opening and seeking per chunk would decode
    # from the previous keyframe each time. Every plan chunk but the last has the same length,
    # so grouping the missing frames by that length gives back the chunks.
    fresh = frames(np.concatenate(todo), len(plan[0]), stage.frame_scale) if todo else None
    parts: list[Artifact] = []
    bar = ctx.progress(ctx.media.frame_count, stage.name)
    try:
        previous = None
        for indices, part_key, part in zip(plan, part_keys, cached):
            if part is None:
                part = stage.run_chunk(ctx, next(fresh), inputs, previous)
                if ctx.cache:
                    ctx.cache.put(cache_name, part_key, part)
            else:
                ctx.stats["chunks_cached"] += 1
            parts.append(part)
            previous = part
            bar.update(len(indices))
    finally:
        bar.close()
    return stage.combine(parts)
