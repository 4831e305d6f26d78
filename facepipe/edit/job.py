"""``facepipe edit``: analysis (cached) -> plan -> appearance donors -> render -> encode.

    from facepipe.edit import run_edit
    result = run_edit("clip.mp4", parse_request(["happy"]), out="clip.happy.mp4")

The request is checked against the clip and the face rig before anything heavy runs, so a bad
request fails in a second. Frames stream through the renderer chunk by chunk; only per-frame
artifacts (tracks, fit, plan) are held for the whole shot.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facepipe import __version__
from facepipe.plan.request import EditRequest


#: Default appearance strength. On the 12 talking shared clips (happy, first 40 frames) 0 / 0.5 /
#: 1 give a happy top share of 55 / 60 / 63% and a lowest speech r of 0.901 / 0.901 / 0.896: 1
#: took the smallest face (dpe, 256x256) below the 0.9 the edit must keep, 0.5 did not
#: (benchmarks/results/edit_quality*.md). dpe's r is fragile: since the 1+4 corrective, which
#: changes only its brows, it reads 0.877 at 0.5 and 0.885 / 0.907 at 0.25 / 0.35, so the
#: default was not moved to chase it (benchmarks/README.md).
DEFAULT_APPEARANCE = 0.5

#: Default cap on render threads: a chunk holds a few dozen frames at most, and the face work
#: per frame is small, so more threads mostly wait on each other.
MAX_RENDER_THREADS = 8


@dataclass(frozen=True)
class EditSettings:
    """How an edit is rendered.

    appearance: strength 0..1 of appearance transferred from the actor's own frames (0 = the
    geometric warp only); actor_library: folder of other shots of the same actor to draw
    appearance from; shutter: degrees, for the motion blur re-applied to transferred
    appearance; face: which actor (``largest``, ``center`` or a track id); seed: grain noise;
    threads: CPU threads that render faces side by side (None: every core, at most
    :data:`MAX_RENDER_THREADS`; a farm node running several jobs sets fewer).
    """

    appearance: float = DEFAULT_APPEARANCE
    actor_library: Path | None = None
    shutter: float = 180.0
    face: str = "largest"
    seed: int = 0
    threads: int | None = None

    @property
    def render_threads(self) -> int:
        return self.threads or min(MAX_RENDER_THREADS, os.cpu_count() or 1)


@dataclass
class EditResult:
    output: Path
    frames_written: int
    info: object  # MediaInfo
    stats: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    report_path: Path | None = None


@dataclass
class Shot:
    """What the analysis pass gives an edit: the context, the tracks, the fit and the plan."""

    ctx: object  # RunContext
    tracks: object  # FaceTracks
    fit: object | None  # FaceFit (None: no face)
    plan: object | None  # EditPlan (None: no face)
    analysis_seconds: float = 0.0


def is_passthrough(request: EditRequest) -> bool:
    """True when the request changes nothing (every keyframe at intensity 0, no AU override)."""
    if request.overrides:
        return False
    return all((request.intensity if k.intensity is None else k.intensity) == 0 for k in request.keyframes)


def check_request(request: EditRequest, info) -> None:
    """Resolve the request on the clip and the rig's AUs now: RequestError before any analysis."""
    from facepipe.face.model import load_model

    request.resolve(info.fps, info.frame_count, load_model().au_names, info.timecode, 0)


def analyse_and_plan(info, request: EditRequest, settings: EditSettings, open_ctx, log) -> Shot:
    """Track and fit the shot (cached) and plan the edit on it. No face: ``fit`` and ``plan`` None."""
    from facepipe.plan.planner import make_plan
    from facepipe.stages.graph import track_and_fit

    t0 = time.perf_counter()
    ctx = open_ctx(info)
    tracks, fit = track_and_fit(ctx, settings.face)
    if fit is None:
        log(f"edit: {tracks.message or 'no face found in the clip'}; the frames pass through unchanged")
        return Shot(ctx, tracks, None, None, time.perf_counter() - t0)
    plan = make_plan(fit.au, fit.au_names, request, info.fps, tracks.usable(), start_timecode=info.timecode,
                     device=ctx.device)  # fmt: skip
    return Shot(ctx, tracks, fit, plan, time.perf_counter() - t0)


def make_renderer(shot: Shot, settings: EditSettings, scale: float, open_ctx, log, fast: bool = False):
    """The :class:`~facepipe.stages.render.FaceRenderer` of an analysed shot, and the appearance
    report (``{}`` without transfer). ``fast`` (preview): a coarser warp grid and no grain match."""
    from facepipe.face.model import load_model
    from facepipe.render.geometry import EditGeometry
    from facepipe.stages.render import FaceRenderer, RenderOptions

    model = load_model()
    fit, tracks, plan = shot.fit, shot.tracks, shot.plan
    geometry = EditGeometry(model, tracks.landmarks, fit, plan.target, plan.weight, fit.frame_index)
    appearance, appearance_report = None, {}
    if settings.appearance > 0:
        from facepipe.stages.appearance import appearance_for_shot

        appearance, appearance_report = appearance_for_shot(shot, model, settings, scale, open_ctx, log)
    options = RenderOptions(shutter=settings.shutter, workers=settings.render_threads)
    if fast:
        options = dataclasses.replace(options, grain=False, work_px=64.0)
    renderer = FaceRenderer(geometry, model.triangles, tracks.velocity, options, scale, appearance, settings.seed)
    return renderer, appearance_report


def run_edit(
    src,
    request: EditRequest,
    out=None,
    force: bool = False,
    frames: str | None = None,
    frame_base: str = "index",
    codec: str | None = None,
    settings: EditSettings = EditSettings(),
    open_ctx=None,
    log=print,
) -> EditResult:
    """Edit ``src`` as ``request`` says and write the result (movie or image sequence) and its
    report (``OUT.report.json``, with the plan's per-frame AU targets for ``facepipe eval``).

    open_ctx: MediaInfo -> RunContext (work directory, device, progress).
    """
    from facepipe.edit import report as rep
    from facepipe.io.codecs import choose_codec
    from facepipe.io.frameranges import first_frame_number, parse_frame_range
    from facepipe.io.media import probe
    from facepipe.pipeline.synthesis import passthrough, render_frames

    t_start = time.perf_counter()
    src = Path(src)
    info = probe(src)
    check_request(request, info)
    first_number = first_frame_number(frame_base, info.timecode, info.fps)
    indices = np.arange(info.frame_count) if frames is None else parse_frame_range(frames, info.frame_count, first_number)
    out = Path(out) if out else default_output(src, request.label, frames)
    spec = choose_codec(codec, info, out)
    provenance = {
        "tool": "facepipe", "version": __version__, "source": src.name, "request": request.to_dict(),
        "appearance": settings.appearance, "shutter": settings.shutter, "frames": frames or "all", "codec": spec.name,
    }  # fmt: skip
    writer = make_writer(out, info, spec, indices, first_number, provenance, force, src)
    report_path = rep.report_path(out)
    _check_free(report_path, force)
    passes = is_passthrough(request)
    shot = None
    appearance_report = {}
    if passes:
        ctx = open_ctx(info)
        transform = passthrough
    else:
        shot = analyse_and_plan(info, request, settings, open_ctx, log)
        ctx = shot.ctx
        if shot.plan is None:
            transform = passthrough
        else:
            transform, appearance_report = make_renderer(shot, settings, 1.0, open_ctx, log)
    t_render = time.perf_counter()
    with writer:
        written = render_frames(ctx, indices, transform, writer, desc="edit")
    render_s = time.perf_counter() - t_render
    doc = rep.edit_report(
        src, out, info, request, indices, shot, transform, appearance_report, settings,
        timing={"analysis_s": shot.analysis_seconds if shot else 0.0, "render_s": render_s,
                "total_s": time.perf_counter() - t_start},
    )  # fmt: skip
    rep.write_report(doc, report_path)
    return EditResult(out, written, info, ctx.stats, doc, report_path)


def default_output(src: Path, label: str, frames: str | None) -> Path:
    """``clip.mp4`` -> ``clip.happy.mp4`` (``clip.happy.40-120.mp4`` for a frame range)."""
    tag = label if frames is None else f"{label}.{frames.replace(',', '_')}"
    return src.with_name(f"{src.stem}.{tag}{src.suffix if src.suffix.lower() != '.png' else '.mp4'}")


def _check_free(path: Path, force: bool) -> None:
    from facepipe.errors import OutputExistsError

    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass --force to overwrite it")


def make_writer(out: Path, info, spec, indices, first_number: int, provenance: dict, force: bool, src: Path):
    """The movie or image-sequence writer of ``out``, after refusing outputs that must not be written."""
    from facepipe.errors import OutputExistsError
    from facepipe.io.atomic import check_output_path
    from facepipe.io.writer import ImageSequenceWriter, MovieWriter

    if spec.image_sequence:
        numbers = {int(i): int(i) + first_number for i in indices}
        writer = ImageSequenceWriter(out, info, spec, numbers, provenance)
        check_output_path(writer.paths()[0], force=True, inputs=(src,))
        existing = [p for p in writer.paths() if p.exists()]
        if existing and not force:
            raise OutputExistsError(f"{existing[0]} exists ({len(existing)} frames of the sequence do); pass --force")
        return writer
    check_output_path(out, force=force, inputs=(src,))
    return MovieWriter(out, info, spec, indices, provenance)

