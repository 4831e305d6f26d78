"""What one Dask task runs on a worker: a shot's analysis, one chunk of its edit, its assembly.

Each returns a small dict (timings, what ran) for the batch's report. A chunk retried after its
worker died writes only the frames that are still missing (``force`` renders them all again).
"""

from __future__ import annotations

import os
import time

from facepipe import api


def _quiet(message: str) -> None:
    pass


def prepare_task(clip: str, face: str, workdir: str, analysis: dict | None = None) -> dict:
    """Track and fit ``clip`` into ``workdir`` (the analysis every chunk of the shot reuses);
    ``analysis``: more :func:`facepipe.api.prepare` arguments (the deblur method the chunks ask for)."""
    t0 = time.perf_counter()
    result = api.prepare(clip, face=face, workdir=workdir, progress="off", log=_quiet, **(analysis or {}))
    return {"seconds": time.perf_counter() - t0, "face_frames": result.face_frames, "pid": os.getpid(),
            "ran": list(result.stats.get("ran", []))}  # fmt: skip


def chunk_task(clip: str, frames: str, frame_base: str, pattern: str, edit: dict, workdir: str, force: bool,
               prepared=None) -> dict:  # fmt: skip
    """The edit of frames ``frames`` of ``clip`` into the image sequence ``pattern``.
    ``prepared``: the shot's prepare result (a dependency: the chunk runs after it)."""
    t0 = time.perf_counter()
    result = api.edit(clip, frames=frames, frame_base=frame_base, out=pattern, force=force, workdir=workdir,
                      progress="off", log=_quiet, **edit)  # fmt: skip
    return {"frames": frames, "written": result.frames_written, "seconds": time.perf_counter() - t0,
            "pid": os.getpid(), "ran": list(result.stats.get("ran", []))}  # fmt: skip


def assemble_task(pattern: str, clip: str, out: str, frame_base: str, frames: str | None, force: bool, chunks=()) -> dict:
    """The shot's image sequence as a movie timed like ``clip``; ``chunks``: the chunk results (dependencies)."""
    t0 = time.perf_counter()
    result = api.assemble(pattern, like=clip, out=out, force=force, frame_base=frame_base, frames=frames, progress="off")
    return {"output": str(result.output), "frames": result.frames, "seconds": time.perf_counter() - t0}
