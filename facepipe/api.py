"""facepipe as plain Python functions; the CLI is a thin layer over these.

    from facepipe import api
    info = api.probe("clip.mp4")
    result = api.edit("clip.mp4", emotion="happy")            # -> clip.happy.mp4 + clip.happy.report.json
    api.preview("clip.mp4", emotion="sad", frames="40-120")   # half size, side by side with the source
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from facepipe.edit.job import DEFAULT_APPEARANCE, EditResult
from facepipe.errors import RequestError
from facepipe.io.media import MediaInfo
from facepipe.io.media import probe as _probe
from facepipe.pipeline.cache import ArtifactCache
from facepipe.pipeline.runner import RunContext, source_key

from facepipe.plan.emotions import EMOTIONS  # noqa: F401 - re-exported: the emotions an edit knows
from facepipe.stages.graph import analysis_stages  # noqa: F401 - re-exported for scripts


def probe(path: str | os.PathLike) -> MediaInfo:
    """Facts about a media file's video stream and audio (see :class:`MediaInfo`)."""
    return _probe(path)


def default_workdir() -> Path:
    """``$FACEPIPE_WORKDIR`` or the user cache dir: never beside the input, which may be read-only."""
    env = os.environ.get("FACEPIPE_WORKDIR")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "facepipe" / "work"


def open_context(info: MediaInfo, workdir: Path | None, device: str = "auto", progress: str = "auto",
                 chunk_mb: int = 32, log=print) -> RunContext:
    from facepipe.pipeline.device import select_device

    root = Path(workdir) if workdir else default_workdir()
    cache = ArtifactCache(root / source_key(info))
    return RunContext(media=info, cache=cache, device=select_device(device), progress_mode=progress,
                      chunk_bytes=chunk_mb * 2**20, log=log)


def _request(emotion, intensity, ramp, au, keyframes):
    from facepipe.plan.request import parse_request

    emotions = [emotion] if isinstance(emotion, str) else list(emotion or ())
    return parse_request(emotions, intensity, ramp, list(au or ()), keyframes)


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
    appearance: float = DEFAULT_APPEARANCE,
    actor_library: str | os.PathLike | None = None,
    shutter: float = 180.0,
    face: str = "largest",
    threads: int | None = None,
    workdir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: str = "auto",
    chunk_mb: int = 32,
    log=print,
) -> EditResult:
    """Change the actor's expression in ``src`` and write the result and its report.

    emotion: one emotion (``"happy"``) or keyframes (``["happy@0s-2.5s", "sad@3s-"]``);
    intensity 0..1 (default 1); ramp: ease in/out (``"0.25s"``, ``"6"`` frames); au: overrides
    (``["AU12=0.6"]``); keyframes: a JSON/YAML keyframe file. ``neutral`` at intensity 0 is the
    exact pass-through (no analysis). appearance: strength 0..1 of appearance transferred from
    the actor's own frames (0 = warp only); actor_library: folder of other shots of the actor;
    shutter: degrees for the re-applied motion blur; threads: CPU threads for rendering (None:
    every core, at most :data:`~facepipe.edit.job.MAX_RENDER_THREADS`). See :func:`facepipe.edit.run_edit`.
    """
    from facepipe.edit import run_edit

    request = _request(emotion, intensity, ramp, au, keyframes)
    settings = _settings(appearance, actor_library, shutter, face, threads)
    return run_edit(src, request, out, force, frames, frame_base, codec, settings,
                    _context_opener(workdir, device, progress, chunk_mb, log), log)  # fmt: skip


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
    appearance: float = DEFAULT_APPEARANCE,
    actor_library: str | os.PathLike | None = None,
    shutter: float = 180.0,
    face: str = "largest",
    threads: int | None = None,
    workdir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: str = "auto",
    chunk_mb: int = 32,
    log=print,
):
    """The same edit, fast, for review: ``frames`` only, at ``scale``, written as H.264 with the
    source beside it (``compare="side"``), a wipe (``"wipe"``) or alone (``"none"``). Returns a
    :class:`facepipe.edit.preview.PreviewResult` (with the render speed)."""
    from facepipe.edit.preview import run_preview

    request = _request(emotion, intensity, ramp, au, keyframes)
    settings = _settings(appearance, actor_library, shutter, face, threads)
    return run_preview(src, request, out, force, frames, frame_base, scale, compare, settings,
                       _context_opener(workdir, device, progress, chunk_mb, log), log)  # fmt: skip


def _settings(appearance, actor_library, shutter, face, threads):
    from facepipe.edit import EditSettings

    if not 0.0 <= float(appearance) <= 1.0:
        raise RequestError(f"--appearance {appearance} is out of range: use a value from 0 to 1")
    if not 0.0 <= float(shutter) <= 360.0:
        raise RequestError(f"--shutter {shutter} is out of range: use degrees from 0 to 360")
    library = Path(actor_library) if actor_library else None
    if library is not None and not library.is_dir():
        raise RequestError(f"--actor-library {library}: not a folder of clips")
    if threads is not None and int(threads) < 1:
        raise RequestError(f"--threads {threads}: use 1 or more")
    return EditSettings(appearance=float(appearance), actor_library=library, shutter=float(shutter), face=str(face),
                        threads=None if threads is None else int(threads))  # fmt: skip


def _context_opener(workdir, device, progress, chunk_mb, log):
    return lambda info: open_context(info, workdir, device, progress, chunk_mb, log)


def evaluate(
    source: str | os.PathLike,
    edited: str | os.PathLike,
    emotion: str,
    plan: str | os.PathLike | None = None,
    frames: str | None = None,
    codec: str | None = None,
    reencode: str | os.PathLike | None = None,
    identity: bool = True,
    workdir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: str = "off",
    log=print,
) -> dict:
    """Score ``edited`` against ``source`` for an edit towards ``emotion``: the evaluation
    harness (:func:`facepipe.evaluation.harness.evaluate`) with both clips analysed (and cached)
    in ``workdir``, and the background compared with a plain re-encode made by :func:`edit`
    (emotion neutral, intensity 0, ``codec``) unless ``reencode`` is given. Returns the report."""
    from facepipe.analysis.job import run_analysis
    from facepipe.evaluation.harness import evaluate as score

    quiet = lambda m: None  # noqa: E731

    def analyse(path, au: bool):
        return run_analysis(path, au=au, workdir=workdir, device=device, progress=progress, log=quiet)

    def reencode_source(src, out, codec_name, frame_range):
        return edit(src, emotion="neutral", intensity=0.0, out=out, force=True, frames=frame_range, codec=codec_name,
                    workdir=workdir, progress="off", log=quiet).output  # fmt: skip

    return score(source, edited, emotion, analyse=analyse, reencode_source=reencode_source, plan=plan, frames=frames,
                 codec=codec, reencode=reencode, identity=identity, log=log)  # fmt: skip
