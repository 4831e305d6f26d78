"""Encoding behind the synthesis pass: chunks handed to a writer on a background thread, so
encoding overlaps the next chunk's render (used by :mod:`facepipe.stages.encode`)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator


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
