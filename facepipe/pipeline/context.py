"""What every stage of one run may use: the source clip, the cache, the device, worker threads,
progress reporting and the run's statistics."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from facepipe.io.media import MediaInfo
from facepipe.io.reader import DEFAULT_CHUNK_BYTES, VideoReader, chunk_length
from facepipe.pipeline.cache import ArtifactCache
from facepipe.pipeline.progress import make_progress


def _new_stats() -> dict:
    # ran / cached: analysis nodes computed / served from the cache; streamed: frame nodes opened
    return {"ran": [], "cached": [], "streamed": [], "chunks_cached": 0}


@dataclass
class RunContext:
    """media: the source clip; cache: the artifact cache (None: nothing is kept); device: a
    ``torch.device``; threads: CPU threads for per-frame work (:meth:`submit`); open_other:
    MediaInfo -> RunContext for another clip with the same settings (an actor library's shots);
    progress_mode: ``auto``, ``bar``, ``plain``, ``off`` or the job's
    :class:`~facepipe.pipeline.progress.JobProgress` (every step's bar reports into it).
    Close it (or use it in a ``with`` block) to stop its worker threads."""

    media: MediaInfo
    cache: ArtifactCache | None
    device: object = "cpu"  # torch.device
    progress_mode: object = "auto"  # str or JobProgress
    log: Callable[[str], None] = print
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    threads: int = 1
    open_other: Callable[[MediaInfo], RunContext] | None = None
    stats: dict = field(default_factory=_new_stats)

    def __post_init__(self):
        self.reader = VideoReader(self.media)
        self._pool: ThreadPoolExecutor | None = None

    def progress(self, total: int, desc: str):
        return make_progress(total, desc, self.progress_mode)

    def chunk_plan(self, scale: float = 1.0) -> list[np.ndarray]:
        """The fixed split of the whole shot into chunks (part of chunk cache keys)."""
        n = chunk_length(self.media, self.chunk_bytes, scale)
        return [np.arange(s, min(s + n, self.media.frame_count)) for s in range(0, self.media.frame_count, n)]

    def submit(self, fn, *args) -> Future:
        """``fn(*args)`` on the worker threads (on the CPU with ``threads`` > 1), else at once in
        this thread; either way a Future. Work submitted must touch no shared state."""
        if self.threads > 1 and getattr(self.device, "type", str(self.device)) == "cpu":
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, "facepipe-worker")
            return self._pool.submit(fn, *args)
        done = Future()
        done.set_result(fn(*args))
        return done

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> RunContext:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
