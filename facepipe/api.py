"""facepipe as plain Python functions; the CLI is a thin layer over these.

    from facepipe import api
    info = api.probe("clip.mp4")
    result = api.edit("clip.mp4", emotion="happy")            # -> clip.happy.mp4 + clip.happy.report.json
    api.prepare("shot.mov")                                   # the analysis pass alone (a farm's first step)
    api.preview("clip.mp4", emotion="sad", frames="40-120")   # half size, side by side with the source
    api.analyze("clip.mp4")                                   # AU / emotion curves: CSV, JSON, plot, sheet
    api.evaluate("clip.mp4", "clip.happy.mp4", "happy")       # the evaluation harness's report
    api.assemble("renders/sh010.%04d.exr", like="shot.mov", out="sh010.happy.mov")   # chunks -> movie
    api.deblur("clip.mp4", weights="deblur.pt", moments=5)   # -> clip.deblurred.mp4 + clip.deblurred.moments/
    api.edit("clip.mp4", emotion="happy", deblur_method="classical", deblur=True)   # track and deliver restored faces

Options shared by the functions that run the pipeline: ``workdir`` (analysis cache; default
``$FACEPIPE_WORKDIR`` or ``~/.cache/facepipe/work``), ``device`` (``auto``, ``cpu``, ``cuda``),
``progress`` (``auto``, ``bar``, ``plain``, ``off``, or a job progress from
:func:`facepipe.pipeline.progress.job_progress` for a farm manager's line format; printed lines
count 0..100 once over the whole call), ``chunk_mb`` (memory budget of one chunk of decoded
frames) and ``log`` (where messages go).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from facepipe import defaults
from facepipe.errors import RequestError
from facepipe.io.media import MediaInfo
from facepipe.io.media import probe as _probe
from facepipe.deblur.config import DeblurConfig
from facepipe.jobs.analyze import AnalysisResult
from facepipe.jobs.analyze import analyze as run_analyze
from facepipe.jobs.assemble import AssembleResult, run_assemble
from facepipe.jobs.context import open_context
from facepipe.jobs.deblur import DeblurResult, run_deblur
from facepipe.jobs.edit import EditResult, EditSettings, run_edit
from facepipe.jobs.evaluate import evaluate
from facepipe.jobs.faces import list_faces as faces
from facepipe.jobs.prepare import PrepareResult, run_prepare
from facepipe.jobs.preview import PreviewResult, run_preview
from facepipe.jobs.train_deblur import run_train_deblur
from facepipe.pipeline.progress import finish_progress, job_progress
from facepipe.plan.emotions import EMOTIONS
from facepipe.plan.request import parse_request
from facepipe.render.neural.config import RendererConfig
from facepipe.stages.deblur import DEFAULT_THRESHOLD, DeblurStage

__all__ = ["EMOTIONS", "analyze", "assemble", "deblur", "edit", "evaluate", "faces", "prepare", "preview", "probe",
           "train_deblur", "train_renderer"]


def probe(path: str | os.PathLike) -> MediaInfo:
    """Facts about a media file's video stream and audio (see :class:`MediaInfo`)."""
    return _probe(path)


def analyze(
    clip: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    json_path: str | os.PathLike | None = None,
    au: bool = True,
    plot: bool = True,
    sheet: bool = True,
    samples: int = 12,
    face: str = "largest",
    deblur_method: str = "none",
    deblur_weights: str | os.PathLike | None = None,
    workdir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: str = "auto",
    chunk_mb: int = 32,
    log=print,
) -> AnalysisResult:
    """AU intensities, emotion probabilities, head pose and face confidence of ``clip`` per
    frame, written to ``out_dir/CLIP.analysis.{json,csv}``, ``CLIP.curves.png`` and
    ``CLIP.sheet.png`` (``json_path`` moves the JSON); see :func:`facepipe.jobs.analyze.analyze`.
    ``deblur_method`` / ``deblur_weights``: the deblur node the tracking reads, as :func:`edit`'s
    (they key the tracking: an analyze, a prepare and an edit with the same method share it)."""
    stage = _deblur_stage(deblur_method, deblur_weights)
    return run_analyze(clip, out_dir, json_path, au, plot, sheet, samples, face, workdir, device, progress, chunk_mb, log,
                       stage)  # fmt: skip


def prepare(
    src: str | os.PathLike,
    face: str = "largest",
    deblur_method: str = "none",
    deblur_weights: str | os.PathLike | None = None,
    workdir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: str = "auto",
    chunk_mb: int = 32,
    log=print,
) -> PrepareResult:
    """The analysis pass of a shot (tracking, the 3D fit) into ``workdir``, once, before the
    chunks of its edit run (on a farm, each on its own machine, all reading that cache).
    ``deblur_method`` / ``deblur_weights``: as the chunks' :func:`edit` will ask (they key the
    tracking)."""
    stage = _deblur_stage(deblur_method, deblur_weights)
    progress = job_progress("prepare", progress)
    result = run_prepare(src, face, lambda info: open_context(info, workdir, device, progress, chunk_mb, log), stage)
    finish_progress(progress)
    return result


def assemble(
    pattern: str | os.PathLike,
    like: str | os.PathLike,
    out: str | os.PathLike | None = None,
    force: bool = False,
    codec: str | None = None,
    frame_base: str = "index",
    frames: str | None = None,
    progress: str = "auto",
) -> AssembleResult:
    """Encode the image sequence ``pattern`` (``renders/sh010.%04d.exr``, the chunks of a farm
    edit) as a movie with the timing, timecode, colour tags and audio of the clip ``like``.

    frame_base: how the sequence is numbered (``index``, ``1`` or ``timecode``, as ``edit
    --frame-base``); frames: the range to assemble (default: first to last on disk); out:
    default ``sh010`` + the source's extension beside the sequence; codec: default like the source.
    """
    progress = job_progress("assemble", progress)
    result = run_assemble(pattern, like, out, force, codec, frame_base, frames, progress)
    finish_progress(progress)
    return result


def edit(
    src: str | os.PathLike,
    emotion: str | Sequence[str] = (),
    intensity: float | None = None,
    out: str | os.PathLike | None = None,
    force: bool = False,
    frames: str | None = None,
    frame_base: str = "index",
    codec: str | None = None,
    ramp: str | None = None,
    au: Sequence[str] = (),
    keyframes: str | os.PathLike | None = None,
    appearance: float = defaults.APPEARANCE_STRENGTH,
    actor_library: str | os.PathLike | None = None,
    shutter: float = 180.0,
    smooth: float = defaults.SMOOTH,
    face: str = "largest",
    threads: int | None = None,
    renderer: str = defaults.RENDERER,
    actor: str = "",
    renderer_minutes: float = defaults.RENDERER_MINUTES,
    deblur: bool = False,
    deblur_method: str = "none",
    deblur_weights: str | os.PathLike | None = None,
    deblur_ramp: bool = True,
    workdir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: str = "auto",
    chunk_mb: int = 32,
    log=print,
) -> EditResult:
    """Change the actor's expression in ``src`` and write the result and its report.

    emotion: one emotion (``"happy"``) or keyframes (``["happy@0s-2.5s", "sad@3s-"]``);
    intensity 0..1.5 (default 1: the emotion's real peak; above 1 exaggerated, see
    :data:`facepipe.plan.emotions.MAX_INTENSITY`); ramp: ease in/out (``"0.25s"``, ``"6"`` frames); au: overrides
    (``["AU12=0.6"]``); keyframes: a JSON/YAML keyframe file. ``neutral`` at intensity 0 is the
    exact pass-through (no analysis). appearance: strength 0..1 of appearance transferred from
    the actor's own frames (0 = warp only); actor_library: folder of other shots of the actor;
    shutter: degrees for the re-applied motion blur; smooth: strength 0..1 of the temporal
    smoothing of the edit (0 = off); threads: CPU threads for rendering (None: every core, at
    most :data:`facepipe.defaults.MAX_RENDER_THREADS`); renderer: ``auto`` (the actor's neural
    renderer when trained, else the geometric warp), ``geometric`` or ``neural`` (trains one on
    this shot for ``renderer_minutes`` when missing); actor: whose renderer ("": this shot's own).
    deblur_method: how the frames the tracking reads are deblurred first (``none``, ``classical``:
    Richardson-Lucy with the face's motion over a 180-degree shutter, ``gan``: the checkpoint
    ``deblur_weights`` from :func:`train_deblur`; only frames whose face moves at least 3
    px/frame); deblur: also deliver those restored faces (the edit is laid over the deblur
    node's frames, not the decoded ones; needs a method), blended in by a weight that ramps from
    3 to 6 px/frame and is averaged over 5 frames (``deblur_ramp=False``: all or nothing at 3
    px/frame, which flickers; :mod:`facepipe.deblur.ramp`). See :func:`facepipe.jobs.edit.run_edit`.
    """
    request = _request(emotion, intensity, ramp, au, keyframes)
    settings = _settings(appearance, actor_library, shutter, smooth, face, threads, renderer, actor, renderer_minutes,
                         deblur, deblur_method, deblur_weights, deblur_ramp)  # fmt: skip
    progress = job_progress("edit", progress)
    result = run_edit(src, request, out, force, frames, frame_base, codec, settings,
                      _context_opener(workdir, device, progress, chunk_mb, log, settings), log)  # fmt: skip
    finish_progress(progress)
    return result


def preview(
    src: str | os.PathLike,
    emotion: str | Sequence[str] = (),
    intensity: float | None = None,
    out: str | os.PathLike | None = None,
    force: bool = False,
    frames: str | None = None,
    frame_base: str = "index",
    scale: float = 0.5,
    compare: str = "side",
    ramp: str | None = None,
    au: Sequence[str] = (),
    keyframes: str | os.PathLike | None = None,
    appearance: float = defaults.APPEARANCE_STRENGTH,
    actor_library: str | os.PathLike | None = None,
    shutter: float = 180.0,
    smooth: float = defaults.SMOOTH,
    face: str = "largest",
    threads: int | None = None,
    renderer: str = defaults.RENDERER,
    actor: str = "",
    renderer_minutes: float = defaults.RENDERER_MINUTES,
    deblur: bool = False,
    deblur_method: str = "none",
    deblur_weights: str | os.PathLike | None = None,
    deblur_ramp: bool = True,
    workdir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: str = "auto",
    chunk_mb: int = 32,
    log=print,
) -> PreviewResult:
    """The same edit, fast, for review: ``frames`` only, at ``scale``, written as H.264 with the
    source beside it (``compare="side"``), a wipe (``"wipe"``) or alone (``"none"``). Returns a
    :class:`facepipe.jobs.preview.PreviewResult` (with the render speed). The other arguments
    are :func:`edit`'s."""
    request = _request(emotion, intensity, ramp, au, keyframes)
    settings = _settings(appearance, actor_library, shutter, smooth, face, threads, renderer, actor, renderer_minutes,
                         deblur, deblur_method, deblur_weights, deblur_ramp)  # fmt: skip
    progress = job_progress("preview", progress)
    result = run_preview(src, request, out, force, frames, frame_base, scale, compare, settings,
                         _context_opener(workdir, device, progress, chunk_mb, log, settings), log)  # fmt: skip
    finish_progress(progress)
    return result


def deblur(
    src: str | os.PathLike,
    weights: str | os.PathLike | None = None,
    method: str = "gan",
    out: str | os.PathLike | None = None,
    force: bool = False,
    moments: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    shutter: float = 180.0,
    workdir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: str = "auto",
    chunk_mb: int = 32,
    log=print,
) -> DeblurResult:
    """Restore the faces of ``src``'s motion-blurred frames (face moving at least ``threshold``
    px/frame) and write the clip (default ``clip.deblurred.mp4``; same timing and audio).

    method: ``gan`` (the checkpoint ``weights``, from ``facepipe train deblur``) or
    ``classical`` (Richardson-Lucy with the face's velocity over a ``shutter``-degree exposure);
    moments: N > 0 (gan) also writes N sharp moments per restored frame as PNG crops into
    ``OUT.moments/`` (see :mod:`facepipe.jobs.deblur`)."""
    if int(moments) < 0:
        raise RequestError(f"--moments {moments}: use 0 (none) or more")
    stage = DeblurStage(method=method, weights=str(weights or ""), threshold=float(threshold), shutter=float(shutter))
    progress = job_progress("deblur", progress)
    result = run_deblur(src, stage, out, force, int(moments),
                        lambda info: open_context(info, workdir, device, progress, chunk_mb, log), log)  # fmt: skip
    finish_progress(progress)
    return result


def train_deblur(
    clips: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    val_clips: Sequence[str | os.PathLike] = (),
    steps: int | None = None,
    minutes: float | None = None,
    size: int = 128,
    exposure: int = 7,
    shutter: float | None = None,
    samples: int = 16,
    width: int = 16,
    seed: int = 0,
    max_windows: int = 60,
    workdir: str | os.PathLike | None = None,
    device: str = "auto",
    force: bool = False,
    log=print,
) -> dict:
    """Train the continuous-motion deblur GAN on windows of sharp consecutive face crops of
    ``clips`` (synthetic exposures, :mod:`facepipe.jobs.train_deblur`) for ``steps`` or
    ``minutes``, validate on ``val_clips`` (default: every tenth window) and save the checkpoint
    at ``out``. ``shutter`` (degrees): exposures as long as a real shutter, ``samples`` moments
    interpolated between frames (default None: whole frames averaged; the recipe of
    ``benchmarks/deblur.py --shutter``). Returns the training report (validation PSNR
    before/after, moment order, how the exposures were made)."""
    if steps is None and minutes is None:
        raise RequestError("give --steps or --minutes (the training budget)")
    if exposure < 3 or exposure % 2 == 0:
        raise RequestError(f"--exposure {exposure}: give an odd number of frames, at least 3")
    if size % 8:
        raise RequestError(f"--size {size}: give a multiple of 8 (the generator halves it three times)")
    if shutter is not None and not 0 < shutter <= 360 * (exposure - 1):
        raise RequestError(f"--shutter {shutter:g}: give degrees above 0 and at most {360 * (exposure - 1)} "
                           f"(the span of --exposure {exposure} frames)")  # fmt: skip
    if samples < 2:
        raise RequestError(f"--samples {samples}: give at least 2 moments per exposure")
    config = DeblurConfig(width=width, regressor_width=width, size=size, exposure=exposure,
                          train_size=min(size, DeblurConfig.train_size), seed=seed,
                          shutter=None if shutter is None else float(shutter), samples=int(samples))  # fmt: skip
    return run_train_deblur(clips, out, val_clips, config, steps, minutes, max_windows, workdir, device, force, log)


def _request(emotion, intensity, ramp, au, keyframes):
    emotions = [emotion] if isinstance(emotion, str) else list(emotion or ())
    return parse_request(emotions, intensity, ramp, list(au or ()), keyframes)


def train_renderer(
    src: str | os.PathLike,
    actor: str = "",
    actor_library: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    steps: int | None = None,
    minutes: float | None = None,
    size: int | None = None,
    width: int | None = None,
    seed: int = 0,
    face: str = "largest",
    workdir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: str = "auto",
    force: bool = False,
    log=print,
) -> dict:
    """Train the person-specific neural renderer on ``src`` for ``steps`` or ``minutes`` and save
    it as ``actor``'s (in ``actor_library``/renderers, else the work dir's; "" = the shot's
    own) or at ``out``. ``size`` / ``width``: crop px and network width (default: the CPU config
    on a CPU, the 256 px config on CUDA). Returns the training report with ``checkpoint``."""
    if steps is None and minutes is None:
        raise RequestError("give --steps or --minutes (the training budget)")
    library = Path(actor_library) if actor_library else None
    if library is not None and not library.is_dir():
        raise RequestError(f"--actor-library {library}: not a folder")
    from facepipe.jobs.train_renderer import run_train_renderer  # lazy: it imports diffusers (1 s), which no other call needs

    info = _probe(src)
    with open_context(info, workdir, device, progress, log=log) as ctx:
        changes = {k: v for k, v in (("size", size), ("width", width)) if v is not None}
        config = RendererConfig.for_device(ctx.device, seed=seed, **changes)
        if config.size % 2 ** config.levels:
            raise RequestError(f"--size {config.size}: give a multiple of {2 ** config.levels}")
        path, report = run_train_renderer(ctx, actor, library, config, steps, minutes, face, out, force, log)
    return {"checkpoint": str(path), **report}


def _deblur_stage(method: str, weights) -> DeblurStage:
    """The deblur node the tracking reads, checked (exit 2 for a bad request, 4 for a missing
    checkpoint) before anything runs. Its other parameters stay the node's defaults (3 px/frame,
    a 180-degree classical kernel), so ``prepare`` and the chunks of an edit key the same tracking."""
    if weights and method != "gan":
        raise RequestError(f"--deblur-weights is the gan method's checkpoint: add --deblur-method gan "
                           f"(the method is {method!r})")  # fmt: skip
    return DeblurStage(method=method, weights=str(weights or ""))


def _settings(appearance, actor_library, shutter, smooth, face, threads, renderer=defaults.RENDERER, actor="",
              renderer_minutes=defaults.RENDERER_MINUTES, deblur=False, deblur_method="none",
              deblur_weights=None, deblur_ramp=True) -> EditSettings:  # fmt: skip
    for name, value in (("--appearance", appearance), ("--smooth", smooth)):
        if not 0.0 <= float(value) <= 1.0:
            raise RequestError(f"{name} {value} is out of range: use a value from 0 to 1")
    if not 0.0 <= float(shutter) <= 360.0:
        raise RequestError(f"--shutter {shutter} is out of range: use degrees from 0 to 360")
    library = Path(actor_library) if actor_library else None
    if library is not None and not library.is_dir():
        raise RequestError(f"--actor-library {library}: not a folder of clips")
    if threads is not None and int(threads) < 1:
        raise RequestError(f"--threads {threads}: use 1 or more")
    if renderer not in defaults.RENDERERS:
        raise RequestError(f"--renderer {renderer!r}: use one of {', '.join(defaults.RENDERERS)}")
    if not float(renderer_minutes) > 0:
        raise RequestError(f"--renderer-minutes {renderer_minutes}: give a training budget above 0")
    if deblur and deblur_method == "none":
        raise RequestError("--deblur delivers the deblur node's restored faces: choose --deblur-method classical or gan")
    return EditSettings(appearance_strength=float(appearance), actor_library=library, shutter=float(shutter),
                        smooth=float(smooth), face=str(face), threads=None if threads is None else int(threads),
                        renderer=renderer, actor=str(actor), renderer_minutes=float(renderer_minutes),
                        deblur=_deblur_stage(deblur_method, deblur_weights), deliver_deblurred=bool(deblur),
                        deblur_ramp=bool(deblur_ramp))  # fmt: skip


def _context_opener(workdir, device, progress, chunk_mb, log, settings: EditSettings):
    return lambda info: open_context(info, workdir, device, progress, chunk_mb, log, settings.render_threads)
