"""Run contexts over the work directory: where analysis artifacts of each clip are cached."""

from __future__ import annotations

import os
from pathlib import Path

from facepipe.io.media import MediaInfo
from facepipe.pipeline.cache import ArtifactCache
from facepipe.pipeline.context import RunContext
from facepipe.pipeline.device import select_device
from facepipe.pipeline.hashing import source_key


def default_workdir() -> Path:
    """``$FACEPIPE_WORKDIR`` or the user cache dir: never beside the input, which may be read-only."""
    env = os.environ.get("FACEPIPE_WORKDIR")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "facepipe" / "work"


def open_context(info: MediaInfo, workdir=None, device: str = "auto", progress: str = "auto", chunk_mb: int = 32,
                 log=print, threads: int = 1) -> RunContext:  # fmt: skip
    """A :class:`RunContext` for ``info``'s clip, its cache under ``workdir`` (default
    :func:`default_workdir`) in a folder named by the clip's content; other clips it opens
    (an actor library's) get the same settings."""
    root = Path(workdir) if workdir else default_workdir()
    ctx = RunContext(media=info, cache=ArtifactCache(root / source_key(info)), device=select_device(device),
                     progress_mode=progress, chunk_bytes=chunk_mb * 2**20, log=log, threads=threads)  # fmt: skip
    ctx.open_other = lambda other: open_context(other, workdir, device, progress, chunk_mb, log, threads)
    return ctx
