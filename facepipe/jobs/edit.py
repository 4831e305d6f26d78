"""``facepipe edit``: build the edit's stage graph, pull ``encode``, write the report.

    from facepipe.jobs.edit import run_edit
    result = run_edit("clip.mp4", parse_request(["happy"]), out="clip.happy.mp4")

The request is checked against the clip and the face rig before anything heavy runs, so a bad
request fails in a second. Frames stream from decode through render, composite and smooth to
encode chunk by chunk; only per-frame artifacts (tracks, fit, plan) are held for the whole shot.
The preview (:mod:`facepipe.jobs.preview`) is the same graph with a compare node before encode.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facepipe import __version__, defaults
from facepipe.errors import OutputExistsError
from facepipe.face.model import load_model
from facepipe.io.atomic import check_output_path
from facepipe.io.codecs import choose_codec
from facepipe.io.frameranges import contiguous_runs, first_frame_number, parse_frame_range
from facepipe.io.media import MediaInfo, probe
from facepipe.io.writer import ImageSequenceWriter, MovieWriter
from facepipe.jobs import report as rep
from facepipe.jobs.renderer import resolve_renderer
from facepipe.pipeline.graph import Graph
from facepipe.pipeline.stage import Stage
from facepipe.plan.request import EditRequest
from facepipe.render.neural.temporal import WINDOW
from facepipe.stages.composite import CompositeStage
from facepipe.stages.deblur import DeblurStage, DeliveredDeblurStage
from facepipe.stages.decode import DecodeStage
from facepipe.stages.encode import EncodeStage
from facepipe.stages.graph import analysis_stages
from facepipe.stages.motion import MotionStage
from facepipe.stages.plan import PlanStage
from facepipe.stages.render import RenderStage
from facepipe.stages.smooth import SmoothStage

@dataclass(frozen=True)
class EditSettings:
    """How an edit is rendered.

    appearance_strength: 0..1 strength of appearance transferred from the actor's own frames
    (0 = the geometric warp only); actor_library: folder of other shots of the same actor to
    draw appearance from; shutter: degrees, for the motion blur re-applied to transferred
    appearance; smooth: 0..1 strength of the temporal smoothing of the edit (0 = off); face:
    which actor (``largest``, ``center`` or a track id); seed: grain noise; threads: CPU threads
    that render faces side by side (None: every core, at most :data:`facepipe.defaults.MAX_RENDER_THREADS`; a
    farm node running several jobs sets fewer); renderer: ``auto``, ``geometric`` or ``neural``
    (:func:`facepipe.jobs.train_renderer.resolve_renderer`); actor: whose renderer ("": the
    shot's own); renderer_minutes: training budget when an edit trains one; deblur: the deblur
    node the tracking reads (:class:`~facepipe.stages.deblur.DeblurStage`, method ``none`` by
    default: the decoded frames); deliver_deblurred: render and composite over its restored
    faces (:class:`~facepipe.stages.deblur.DeliveredDeblurStage`) instead of the decoded frames;
    deblur_ramp: blend the delivered restoration in by the blur ramp (False: the plain switch at
    the threshold, which flickers where the face's speed hovers around it).
    """

    appearance_strength: float = defaults.APPEARANCE_STRENGTH
    actor_library: Path | None = None
    shutter: float = 180.0
    smooth: float = defaults.SMOOTH
    face: str = "largest"
    seed: int = 0
    threads: int | None = None
    renderer: str = defaults.RENDERER
    actor: str = ""
    renderer_minutes: float = defaults.RENDERER_MINUTES
    deblur: DeblurStage = field(default_factory=DeblurStage)
    deliver_deblurred: bool = False
    deblur_ramp: bool = True

    @property
    def delivered_deblur(self) -> DeliveredDeblurStage | None:
        """The node whose restored faces the edit is laid over (None: the decoded frames)."""
        return DeliveredDeblurStage.of(self.deblur, self.deblur_ramp) if self.deliver_deblurred else None

    @property
    def plate(self) -> str:
        """The frame node the edit is laid over: the delivered deblur node's when it delivers."""
        return DeliveredDeblurStage.name if self.deliver_deblurred else "decode"

    def deblur_provenance(self) -> dict:
        """What the output's provenance says of deblurring: nothing at the default (so outputs and
        farm sidecars of edits without it stay as they were), else the key parameters of the
        node the tracking reads (and of the delivered one)."""
        if self.deblur.method == "none" and not self.deliver_deblurred:
            return {}
        delivered = self.delivered_deblur
        return {"deblur": {**self.deblur.params(), "delivered": delivered.params() if delivered else False}}

    @property
    def render_threads(self) -> int:
        return self.threads or min(defaults.MAX_RENDER_THREADS, os.cpu_count() or 1)


@dataclass
class EditResult:
    output: Path
    frames_written: int
    info: MediaInfo
    stats: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    report_path: Path | None = None


@dataclass
class Shot:
    """The clip an edit or preview reads: its path, facts, the selected source frames (T,) and
    the number of the first frame in the frame-range syntax (0, 1 or the timecode's)."""

    src: Path
    info: MediaInfo
    indices: np.ndarray
    first_number: int


@dataclass
class Pulled:
    """What pulling an edit graph gave: frames written, the analysis artifacts (None for a
    pass-through), the frame transforms opened (render, smooth: their statistics) and timings."""

    frames_written: int
    tracks: object = None
    fit: object = None
    plan: object = None
    opened: dict = field(default_factory=dict)
    analysis_s: float = 0.0
    render_s: float = 0.0


def is_passthrough(request: EditRequest) -> bool:
    """True when the request changes nothing (every keyframe at intensity 0, no AU override)."""
    if request.overrides:
        return False
    return all((request.intensity if k.intensity is None else k.intensity) == 0 for k in request.keyframes)


def open_shot(src, request: EditRequest, frames: str | None, frame_base: str) -> Shot:
    """Probe ``src``, resolve the request on it and the rig's AUs (RequestError before any
    analysis) and the frame range."""
    src = Path(src)
    info = probe(src)
    request.resolve(info.fps, info.frame_count, load_model().au_names, info.timecode, 0)
    first_number = first_frame_number(frame_base, info.timecode, info.fps)
    indices = np.arange(info.frame_count) if frames is None else parse_frame_range(frames, info.frame_count, first_number)
    return Shot(src, info, indices, first_number)


def edit_stages(request: EditRequest, settings: EditSettings, preview: bool = False,
                renderer_weights: str = "") -> tuple[list[Stage], str]:  # fmt: skip
    """The stages of an edit up to its last frame node, and that node's name: ``decode`` for a
    pass-through request (no analysis; the delivered deblur node when it delivers), else
    analysis -> plan -> render -> composite -> smooth. ``preview``: a coarser warp grid and no
    grain match, for speed; ``renderer_weights``: the neural renderer's checkpoint ("": geometric)."""
    if is_passthrough(request):
        if settings.deliver_deblurred:
            return [DecodeStage(), MotionStage(), settings.delivered_deblur], settings.plate
        return [DecodeStage()], "decode"
    library = str(settings.actor_library) if settings.actor_library else ""
    # A delivered restored face is sharp: re-blurring transferred appearance with the plate's
    # motion would put back the smear the deblur node took out (frames it leaves alone move
    # under its threshold, a blur of under 1.5 px at 180 degrees).
    shutter = 0.0 if settings.deliver_deblurred else settings.shutter
    render = RenderStage(appearance_strength=settings.appearance_strength, actor_library=library,
                         face=settings.face, shutter=shutter, work_px=64.0 if preview else 96.0,
                         renderer_weights=renderer_weights, frames_from=settings.plate)  # fmt: skip
    composite = CompositeStage(grain=not preview, seed=settings.seed)
    delivered = [settings.delivered_deblur] if settings.deliver_deblurred else []
    stages = [*analysis_stages(settings.face, settings.deblur), *delivered, PlanStage.of(request), render, composite,
              SmoothStage(strength=settings.smooth)]  # fmt: skip
    return stages, "smooth"


def temporal_context(indices: np.ndarray, repeats, frames: int) -> np.ndarray:
    """Source frames to render, not write, before each contiguous run of ``indices``: as far back
    as it takes to cover ``frames`` frames that do not repeat the one before (a repeat is not
    rendered but takes its predecessor's edit, so it adds nothing to the matte's history and the
    context must not start on one). ``repeats``: the shot's
    :class:`~facepipe.stages.repeats.RepeatFrames`."""
    repeated = set(np.asarray(repeats.frame_index)[np.asarray(repeats.repeat) > 0].tolist())
    context: set[int] = set()
    for first, _ in contiguous_runs(np.asarray(indices, np.int64)):
        start, needed = first, frames
        while needed > 0 and start > 0:
            start -= 1
            needed -= start not in repeated
        while start > 0 and start in repeated:
            start -= 1
        context.update(range(start, first))
    return np.array(sorted(context - set(np.asarray(indices).tolist())), np.int64)


def context_frames(graph: Graph) -> int:
    """How many frames before a frame its edit depends on: the composite averages the matte over
    ``matte_window`` frames and the smooth stage the edit over ``window`` earlier composites; a
    neural renderer's change is held steady over :data:`~facepipe.render.neural.temporal.WINDOW`
    earlier frames."""
    steady = WINDOW if graph.stage("render").renderer_weights else 0
    return graph.stage("composite").matte_window - 1 + graph.stage("smooth").window + steady


def pull_edit(graph: Graph, sink: str, passthrough: bool) -> Pulled:
    """Pull the analysis (unless ``passthrough``), then ``sink`` (an :class:`EncodeStage`, given
    the temporal context its frames need); time both."""
    t0 = time.perf_counter()
    artifacts = {} if passthrough else {n: graph.get(n) for n in ("track", "fit3d", "plan", "repeats")}
    if not passthrough:
        encode = graph.stage(sink)
        encode.context = temporal_context(encode.indices, artifacts["repeats"], context_frames(graph))
    t1 = time.perf_counter()
    written = graph.get(sink)
    t2 = time.perf_counter()
    return Pulled(written.frames, artifacts.get("track"), artifacts.get("fit3d"), artifacts.get("plan"),
                  dict(graph.opened), t1 - t0, t2 - t1)  # fmt: skip


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

    open_ctx: MediaInfo -> RunContext (work directory, device, progress, threads).
    """
    t_start = time.perf_counter()
    shot = open_shot(src, request, frames, frame_base)
    out = Path(out) if out else default_output(shot.src, request.label, frames)
    spec = choose_codec(codec, shot.info, out)
    provenance = {
        "tool": "facepipe", "version": __version__, "source": shot.src.name, "request": request.to_dict(),
        "appearance": settings.appearance_strength, "shutter": settings.shutter, "smooth": settings.smooth,
        "frames": frames or "all", "codec": spec.name, "renderer": settings.renderer, "actor": settings.actor,
        **settings.deblur_provenance(),
    }  # fmt: skip
    writer = make_writer(out, shot.info, spec, shot.indices, shot.first_number, provenance, force, shot.src)
    report_path = rep.report_path(out, frames)
    if report_path.exists() and not force and not spec.image_sequence:
        raise OutputExistsError(f"{report_path} exists; pass --force to overwrite it")
    todo = frames_to_write(writer, shot.indices, force)
    if not len(todo):
        log(f"edit: every frame of {out} exists; nothing to do (pass --force to render them again)")
        return EditResult(out, 0, shot.info, {}, {"mode": "done", "frames": [], "output": str(out)}, None)
    passthrough = is_passthrough(request)
    with open_ctx(shot.info) as ctx:
        weights = "" if passthrough else resolve_renderer(ctx, settings, frames is None, log)
        stages, last = edit_stages(request, settings, renderer_weights=weights)
        graph = Graph([*stages, EncodeStage(writer, todo, frames_from=last, desc="edit")], ctx)
        pulled = pull_edit(graph, "encode", passthrough)
        if pulled.fit is not None and not pulled.fit.has_face:
            log(f"edit: {pulled.tracks.message or pulled.fit.message}; the frames pass through unchanged")
        timing = {"analysis_s": pulled.analysis_s, "render_s": pulled.render_s, "total_s": time.perf_counter() - t_start}
        doc = rep.edit_report(dataclasses.replace(shot, indices=todo), out, request, pulled, settings, timing)
        doc["renderer"] = {"mode": settings.renderer, "weights": weights or None}
        doc["deblur"] = rep.deblur_report(graph, settings, todo)
        if doc.get("mode") == "edit" and not doc["render"]["edited"]:
            log(f"edit: {doc['warnings'][0]}")
        rep.write_report(doc, report_path)
        return EditResult(out, pulled.frames_written, shot.info, ctx.stats, doc, report_path)


def default_output(src: Path, label: str, frames: str | None) -> Path:
    """``clip.mp4`` -> ``clip.happy.mp4`` (``clip.happy.40-120.mp4`` for a frame range)."""
    tag = label if frames is None else f"{label}.{frames.replace(',', '_')}"
    return src.with_name(f"{src.stem}.{tag}{src.suffix if src.suffix.lower() != '.png' else '.mp4'}")


def make_writer(out: Path, info, spec, indices, first_number: int, provenance: dict, force: bool, src: Path):
    """The movie or image-sequence writer of ``out``, after refusing outputs that must not be
    written (a sequence's existing frames are skipped, see :func:`frames_to_write`)."""
    if spec.image_sequence:
        numbers = {int(i): int(i) + first_number for i in indices}
        writer = ImageSequenceWriter(out, info, spec, numbers, provenance)
        check_output_path(writer.paths()[0], force=True, inputs=(src,))
        return writer
    check_output_path(out, force=force, inputs=(src,))
    return MovieWriter(out, info, spec, indices, provenance)


def frames_to_write(writer, indices: np.ndarray, force: bool) -> np.ndarray:
    """The frames of ``indices`` to render: all of a movie; of an image sequence those whose file
    does not exist yet (every one with ``force``), so a killed chunk re-run finishes the rest.
    Frames another edit made (its sidecar says so) are not mixed in: OutputExistsError."""
    if force or not isinstance(writer, ImageSequenceWriter):
        return np.asarray(indices, np.int64)
    todo = np.array([i for i, p in zip(indices, writer.paths()) if not p.exists()], np.int64)
    if len(todo) < len(indices) and writer.sidecar.exists():
        made = {k: v for k, v in json.loads(writer.sidecar.read_text()).items() if k != "frames"}
        ours = json.loads(json.dumps({k: v for k, v in writer.provenance.items() if k != "frames"}, default=str))
        if made != ours:
            raise OutputExistsError(f"frames of another edit exist in {writer.pattern.parent} (see {writer.sidecar.name}); "
                                    "pass --force to replace them")  # fmt: skip
    return todo
