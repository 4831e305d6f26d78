"""The synthesis pass: stream the selected frames through a frame transform into a writer.

Decoding (the reader's read-ahead thread), the transform (this thread) and encoding (a
write-behind thread) overlap; PyAV releases the GIL while it codes. A bounded number of chunks
is alive at a time, so memory does not grow with shot length.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator

import numpy as np

from facepipe.io.reader import FrameChunk
from facepipe.pipeline.runner import RunContext

FrameTransform = Callable[[FrameChunk], "torch.Tensor"]  # noqa: F821


def passthrough(chunk: FrameChunk):
    """The identity transform: frames (T,3,H,W) unchanged."""
    return chunk.frames


def render_frames(
    ctx: RunContext, indices: np.ndarray, transform: FrameTransform, writer, desc: str = "render", scale: float = 1.0
) -> int:
    """Decode ``indices`` chunk by chunk (resized by ``scale``), apply ``transform``, hand the
    result to ``writer``.

    Returns the number of frames written.
    """
    from facepipe.pipeline.device import one_cpu_thread

    bar = ctx.progress(len(indices), desc)
    written = 0
    try:
        with one_cpu_thread(ctx.device), write_behind(writer) as write:
            for chunk in ctx.reader.chunks(indices, chunk_size=None, scale=scale):
                write(transform(chunk), chunk.indices)
                written += len(chunk)
                bar.update(len(chunk))
    finally:
        bar.close()
    return written


@contextlib.contextmanager
def write_behind(writer, depth: int = 1) -> Iterator[Callable]:
    """A ``write(frames, indices)`` that hands chunks to ``writer.write`` on a background thread,
    in order, at most ``depth`` chunks behind the caller (encoding overlaps the next chunk's
    render). An error in the writer is raised at the next ``write`` or on leaving the block;
    leaving the block waits until every chunk is written. If the block fails, chunks not yet
    written are dropped (the caller's writer discards a failed output anyway)."""
    pending: queue.Queue = queue.Queue(maxsize=depth)
    failed: list[BaseException] = []
    done = object()

    def drain() -> None:
        while (item := pending.get()) is not done:
            if not failed:
                try:
                    writer.write(*item)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    failed.append(exc)

    thread = threading.Thread(target=drain, name="facepipe-write-behind", daemon=True)
    thread.start()

    def write(frames, indices) -> None:
        if failed:
            raise failed[0]
        pending.put((frames, indices))

    try:
        yield write
    except BaseException:
        failed.append(RuntimeError("the synthesis pass stopped"))  # skip whatever is still queued
        raise
    finally:
        pending.put(done)
        thread.join()
    if failed:
        raise failed[0]
