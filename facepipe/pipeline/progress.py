"""Progress of long steps: a bar per step on a terminal, else one 0..100 over the whole job as
flushed lines that farm managers parse from a task's stdout.

=========  ==========================  ======================================================
format     line                        parsed by
=========  ==========================  ======================================================
plain      ``Progress: N% (step i/n)``  people and logs; Deadline's ``.*Progress: (\\d+)%.*``
deadline   ``Progress: N%``            Deadline's stdout progress handler (same pattern)
openjd     ``openjd_progress: N``      Open Job Description runtimes (``openjd_progress: <float>``,
                                       the whole line); each step also gets ``openjd_status: step``
tractor    ``ALF_PROGRESS N%``         Tractor blades (Alfred's form, which Tractor still reads)
=========  ==========================  ======================================================

A job (a command) knows its steps and their weights (:data:`JOB_STEPS`); every step's bar
reports into one :class:`JobProgress`, so the percentage printed rises monotonically from 0 to
100 over the job instead of restarting at 0% per step. A step that does not run (its result was
cached) drops out of the job, so a chunk whose analysis is cached counts 0..100 over its render.
"""

from __future__ import annotations

import sys
from typing import Protocol

from tqdm import tqdm


class Progress(Protocol):
    def update(self, n: int = 1) -> None: ...
    def close(self) -> None: ...


#: ``--progress-format`` -> the line each percentage prints.
FORMATS = {
    "plain": "Progress: {pct}% ({desc} {done}/{total})",
    "deadline": "Progress: {pct}%",
    "openjd": "openjd_progress: {pct}",
    "tractor": "ALF_PROGRESS {pct}%",
}

#: The steps of each job, in the order they run, with their relative cost on a CPU (decode
#: bound steps by their frames: tracking ~ 3, the shot fit ~ 1, finding repeated frames ~ 1,
#: rendering ~ 6 per frame of a whole-shot edit). Bars of other names (an actor library's
#: tracking) do not move the job.
JOB_STEPS: dict[str, dict[str, float]] = {
    "edit": {"track": 3, "fit3d": 1, "repeats": 1, "edit": 6},
    "demo": {"track": 3, "fit3d": 1, "repeats": 1, "edit": 6},
    "preview": {"track": 3, "fit3d": 1, "repeats": 1, "preview": 3},
    "prepare": {"track": 3, "fit3d": 1, "repeats": 1},
    "analyze": {"track": 3, "expression": 1, "fit3d": 1},
    "faces": {"track": 1},
    "eval": {"track": 3, "expression": 1, "fit3d": 1},
    "assemble": {"assemble": 1},
    "farm edit": {"farm": 1},
}


class JobProgress:
    """One monotonic 0..100 over a job of weighted ``steps`` (name -> weight, in run order),
    printed in ``fmt`` (:data:`FORMATS`) each time the integer percentage rises."""

    def __init__(self, steps: dict[str, float], fmt: str = "plain", stream=None):
        if fmt not in FORMATS:
            raise ValueError(f"unknown progress format {fmt!r}: use one of {', '.join(FORMATS)}")
        self.weights = {k: float(v) for k, v in steps.items() if v > 0}
        self.fmt = fmt
        self.stream = stream
        self.done = 0.0  # weight of the steps that ended
        self.current: str | None = None
        self.fraction = 0.0
        self.ran: set[str] = set()
        self.last = -1

    def bar(self, total: int, desc: str) -> Progress:
        """The bar of step ``desc``; steps of the plan before it that never opened are dropped."""
        if desc not in self.weights or desc == self.current:
            return SilentProgress()
        names = list(self.weights)
        if self.current in names and names.index(desc) < names.index(self.current):
            return SilentProgress()  # a step already passed opens again (another clip's)
        self._end_step()
        for name in names[: names.index(desc)]:
            if name not in self.ran:
                del self.weights[name]  # cached: it takes no time in this job
        self.current, self.fraction = desc, 0.0
        if self.fmt == "openjd":
            self._print(f"openjd_status: {desc}")
        return _StepBar(self, desc, total)

    def report(self, desc: str, done: int, total: int) -> None:
        """Step ``desc`` (the current one) has ``done`` of ``total`` units done."""
        self.fraction = min(1.0, done / max(1, total))
        whole = sum(self.weights.values()) or 1.0
        current = self.weights.get(desc, 0.0) * self.fraction
        self._emit(int(100 * (self.done + current) / whole + 1e-9), desc, done, total)

    def finish(self) -> None:
        """The job is done: 100%, once."""
        self._emit(100, self.current or "done", 1, 1)

    def _end_step(self) -> None:
        if self.current is not None:
            self.done += self.weights.get(self.current, 0.0)  # a step ends before the next opens
            self.ran.add(self.current)

    def _emit(self, pct: int, desc: str, done: int, total: int) -> None:
        pct = min(100, pct)
        if pct > self.last:
            self.last = pct
            self._print(FORMATS[self.fmt].format(pct=pct, desc=desc, done=done, total=total))

    def _print(self, line: str) -> None:
        print(line, file=self.stream or sys.stdout, flush=True)


class _StepBar:
    """One step's bar: counts units and reports them to its job."""

    def __init__(self, job: JobProgress, desc: str, total: int):
        self.job, self.desc, self.total, self.done = job, desc, max(1, total), 0

    def update(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        self.job.report(self.desc, self.done, self.total)

    def close(self) -> None:
        pass


class SilentProgress:
    def __init__(self, *args, **kwargs):
        pass

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def job_progress(job: str, mode="auto", fmt: str = "plain"):
    """What a job's run context takes as its progress: ``mode`` (``auto``, ``bar``, ``plain``,
    ``off``) with lines in ``fmt``. A :class:`JobProgress` when lines are printed (``plain``,
    ``auto`` off a terminal, or ``auto`` with a farm format), else the mode itself (bars, or
    nothing). A JobProgress given as ``mode`` is passed through."""
    if isinstance(mode, JobProgress):
        return mode
    if fmt not in FORMATS:
        raise ValueError(f"unknown progress format {fmt!r}: use one of {', '.join(FORMATS)}")
    if mode in ("off", "bar") or (mode == "auto" and fmt == "plain" and sys.stderr.isatty()):
        return mode
    return JobProgress(JOB_STEPS.get(job, {job: 1}), fmt)


def finish_progress(progress) -> None:
    """End a job's progress (100%) when it prints lines."""
    if isinstance(progress, JobProgress):
        progress.finish()


def make_progress(total: int, desc: str, mode="auto") -> Progress:
    """The bar of one step. ``mode``: a :class:`JobProgress` (the step reports into the job),
    ``auto`` (bar on a tty, else job-level plain lines for this step alone), ``bar``, ``plain``
    or ``off``."""
    if isinstance(mode, JobProgress):
        return mode.bar(total, desc)
    if mode == "off":
        return SilentProgress()
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        return tqdm(total=total, desc=desc, unit="frame", leave=False, dynamic_ncols=True)
    return JobProgress({desc: 1}).bar(total, desc)
