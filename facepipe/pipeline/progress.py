"""Progress of long steps: a bar on a terminal, flushed ``Progress: N%`` lines elsewhere.

Farm managers (Deadline, OpenCue, Tractor) parse the plain lines from a job's stdout.
"""

from __future__ import annotations

import sys
from typing import Protocol

from tqdm import tqdm


class Progress(Protocol):
    def update(self, n: int = 1) -> None: ...
    def close(self) -> None: ...


class PlainProgress:
    """Prints ``Progress: N%`` (and the step's name) each time the integer percent changes."""

    def __init__(self, total: int, desc: str, stream=None):
        self.total = max(1, total)
        self.desc = desc
        self.done = 0
        self.stream = stream or sys.stdout
        self._last = -1

    def update(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        pct = int(100 * self.done / self.total)
        if pct != self._last:
            self._last = pct
            print(f"Progress: {pct}% ({self.desc} {self.done}/{self.total})", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class SilentProgress:
    def __init__(self, *args, **kwargs):
        pass

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def make_progress(total: int, desc: str, mode: str = "auto") -> Progress:
    """``mode``: ``auto`` (bar on a tty, plain lines otherwise), ``bar``, ``plain`` or ``off``."""
    if mode == "off":
        return SilentProgress()
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        return tqdm(total=total, desc=desc, unit="frame", leave=False, dynamic_ncols=True)
    return PlainProgress(total, desc)
