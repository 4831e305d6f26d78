"""``run_farm``: a batch of shots on Dask distributed.

Per shot: one prepare task (tracking and the 3D fit into the shared work directory), then one
task per chunk of frames (the edit of that range into the shot's image sequence,
``OUT/SHOT.EMOTION.frames/SHOT.%06d.png``), then one assemble task (the sequence -> the movie
``OUT/SHOT.EMOTION.ext``, timed like the source). Every shot's tasks are submitted at once, so
one shot's chunks run beside another's prepare. Tasks that raise are retried (``retries``);
tasks whose worker dies are rescheduled on another worker by the scheduler. Without a
scheduler address a LocalCluster of ``workers`` processes runs on this machine.

    from facepipe.farm.engine import FarmSettings, run_farm
    from facepipe.farm.shots import shots_from_args
    run_farm(shots_from_args(["sh010.mov", "sh020.mov"], "happy"), FarmSettings(out_dir="renders"), workers=2)

The work directory and the output folder must be the same path on every worker (a shared file
system) when the scheduler is remote.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from facepipe.errors import FacepipeError, OutputExistsError, RequestError
from facepipe.farm.shots import Shot
from facepipe.farm.tasks import assemble_task, chunk_task, prepare_task
from facepipe.io.codecs import MOVIE_EXTS
from facepipe.io.frameranges import contiguous_runs, first_frame_number, parse_frame_range
from facepipe.io.media import probe
from facepipe.jobs.context import default_workdir
from facepipe.pipeline.progress import make_progress
from facepipe.plan.request import parse_request


@dataclass
class FarmSettings:
    """out_dir: where movies (and each shot's frame folder) go; chunk: frames per chunk task;
    sequence: the chunks' image format (``png``: lossless at the source's bit depth, ``exr``,
    ``tiff``); frame_base: how shot-list frame ranges are numbered; edit: more
    :func:`facepipe.api.edit` arguments (intensity, appearance, smooth, threads...); retries:
    attempts after a task raised."""

    out_dir: Path = Path(".")
    chunk: int = 50
    sequence: str = "png"
    workdir: Path | None = None
    frame_base: str = "index"
    face: str = "largest"
    force: bool = False
    retries: int = 2
    edit: dict = field(default_factory=dict)


@dataclass
class ShotPlan:
    """One shot's tasks: its chunk ranges (in its frame base), sequence pattern and movie."""

    shot: Shot
    frame_base: str
    ranges: list[str]
    pattern: Path
    out: Path
    frames: str


@dataclass
class ShotResult:
    """What a shot's tasks reported: timings in seconds (chunk_s: the sum over its chunks)."""

    shot: Shot
    output: Path
    frames: int
    prepare_s: float
    chunk_s: float
    assemble_s: float
    chunks: list[dict]

    def summary(self) -> str:
        return (f"{self.shot.label}: {self.frames} frames -> {self.output} (prepare {self.prepare_s:.1f} s, "
                f"{len(self.chunks)} chunks {self.chunk_s:.1f} s, assemble {self.assemble_s:.1f} s)")  # fmt: skip


@dataclass
class FarmResult:
    shots: list[ShotResult]
    wall_s: float
    workers: int

    def summary(self) -> str:
        frames = sum(s.frames for s in self.shots)
        return f"farm: {len(self.shots)} shots, {frames} frames on {self.workers} workers in {self.wall_s:.1f} s"


#: The edit options that change the analysis, which the shot's prepare task must run as its chunks will.
ANALYSIS_OPTIONS = ("deblur_method", "deblur_weights")


def chunk_ranges(indices, first_number: int, chunk: int) -> list[str]:
    """Farm-syntax ranges (``1001-1050``) of at most ``chunk`` consecutive frames covering the
    source ``indices``, numbered from ``first_number``."""
    out = []
    for start, end in contiguous_runs(indices):
        for a in range(start, end + 1, chunk):
            b = min(a + chunk - 1, end)
            out.append(f"{a + first_number}-{b + first_number}")
    return out


def plan_shot(shot: Shot, settings: FarmSettings) -> ShotPlan:
    """Check ``shot`` (readable clip, known emotion, frame range) and lay out its tasks."""
    info = probe(shot.clip)
    parse_request([shot.emotion], settings.edit.get("intensity"), None, [], None)
    base = shot.frame_base or settings.frame_base
    first = first_frame_number(base, info.timecode, info.fps)
    indices = parse_frame_range(shot.frames, info.frame_count, first) if shot.frames else np.arange(info.frame_count)
    if len(contiguous_runs(indices)) > 1:
        raise RequestError(f"{shot.label}: frames {shot.frames}: a shot's frames must be consecutive")
    suffix = shot.clip.suffix if shot.clip.suffix.lower() in MOVIE_EXTS else ".mp4"
    label = f"{shot.label}.{shot.emotion}"
    out_dir = Path(settings.out_dir)
    pattern = out_dir / f"{label}.frames" / f"{shot.label}.%06d.{settings.sequence}"
    frames = f"{indices[0] + first}-{indices[-1] + first}"
    return ShotPlan(shot, base, chunk_ranges(indices, first, settings.chunk), pattern, out_dir / f"{label}{suffix}", frames)


def plan_batch(shots: list[Shot], settings: FarmSettings) -> list[ShotPlan]:
    """Every shot's plan, after refusing a batch that would fail late: no shots, two shots with
    one output, an existing output without ``force``."""
    if not shots:
        raise RequestError("no shots: name clips or pass --shots LIST")
    if settings.chunk < 1:
        raise RequestError(f"--chunk {settings.chunk}: use 1 or more frames")
    plans = [plan_shot(s, settings) for s in shots]
    outs = [p.out for p in plans]
    twice = sorted({str(o) for o in outs if outs.count(o) > 1})
    if twice:
        raise RequestError(f"two shots would write {twice[0]}: give them names (a shot list's name column)")
    for plan in plans:
        if plan.out.exists() and not settings.force:
            raise OutputExistsError(f"{plan.out} exists; pass --force to overwrite it")
        plan.pattern.parent.mkdir(parents=True, exist_ok=True)
    return plans


def submit_shot(client, plan: ShotPlan, settings: FarmSettings, workdir: str, token: str) -> dict:
    """Submit ``plan``'s tasks; returns their futures (prepare, chunks, assemble)."""
    shot, clip, name = plan.shot, str(plan.shot.clip), f"{plan.shot.label}.{plan.shot.emotion}"
    retries = settings.retries
    analysis = {k: v for k, v in settings.edit.items() if k in ANALYSIS_OPTIONS}  # the chunks' tracking key
    prepared = client.submit(prepare_task, clip, settings.face, workdir, analysis, key=f"prepare-{name}-{token}",
                             retries=retries)  # fmt: skip
    edit = {"emotion": shot.emotion, "face": settings.face, **settings.edit}
    chunks = [client.submit(chunk_task, clip, r, plan.frame_base, str(plan.pattern), edit, workdir, settings.force, prepared,
                            key=f"chunk-{name}-{r}-{token}", retries=retries) for r in plan.ranges]  # fmt: skip
    assembled = client.submit(assemble_task, str(plan.pattern), clip, str(plan.out), plan.frame_base, plan.frames,
                              settings.force, chunks, key=f"assemble-{name}-{token}", retries=retries)  # fmt: skip
    return {"prepare": prepared, "chunks": chunks, "assemble": assembled}


@contextlib.contextmanager
def open_client(scheduler: str | None, workers: int | None, threads: int | None):
    """A Dask client of the scheduler at ``scheduler``, else of a LocalCluster of ``workers``
    processes (one task at a time each); ``threads``: torch threads per worker."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise FacepipeError("facepipe farm needs Dask distributed: pip install 'facepipe[farm]'") from exc
    from facepipe.farm.worker import FacepipeWorker

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers or 1, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)  # fmt: skip
    try:
        with Client(cluster or scheduler) as client:
            client.register_plugin(FacepipeWorker(threads))
            yield client
    finally:
        if cluster is not None:
            cluster.close()


def run_farm(shots: list[Shot], settings: FarmSettings, scheduler: str | None = None, workers: int | None = None,
             progress="off", log=print) -> FarmResult:  # fmt: skip
    """Edit every shot of ``shots`` on Dask workers (see the module doc); returns what each took."""
    from distributed import as_completed

    t0 = time.perf_counter()
    plans = plan_batch(shots, settings)
    workdir = str(Path(settings.workdir or default_workdir()).resolve())
    local_threads = max(1, (os.cpu_count() or 1) // (workers or 1)) if scheduler is None else None
    if local_threads and "threads" not in settings.edit:  # a local cluster shares this machine's cores
        settings = replace(settings, edit={**settings.edit, "threads": local_threads})
    token = uuid.uuid4().hex[:8]
    with open_client(scheduler, workers, local_threads) as client:
        futures = [submit_shot(client, plan, settings, workdir, token) for plan in plans]
        every = [f for fs in futures for f in (fs["prepare"], *fs["chunks"], fs["assemble"])]
        bar = make_progress(len(every), "farm", progress)
        for done in as_completed(every):
            bar.update(1)
            if done.key.startswith("assemble-"):
                log(f"assembled {done.result()['output']}")
        results = [_shot_result(plan, client.gather(fs)) for plan, fs in zip(plans, futures)]
        n_workers = len(client.scheduler_info()["workers"])
    bar.close()
    return FarmResult(results, time.perf_counter() - t0, n_workers)


def _shot_result(plan: ShotPlan, done: dict) -> ShotResult:
    chunks = done["chunks"]
    return ShotResult(plan.shot, Path(done["assemble"]["output"]), done["assemble"]["frames"], done["prepare"]["seconds"],
                      sum(c["seconds"] for c in chunks), done["assemble"]["seconds"], chunks)  # fmt: skip
