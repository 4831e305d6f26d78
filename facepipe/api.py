"""facepipe as plain Python functions; the CLI is a thin layer over these.

    from facepipe import api
    info = api.probe("clip.mp4")
    result = api.edit("clip.mp4", emotion="neutral", intensity=0.0)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facepipe import __version__
from facepipe.errors import RequestError
from facepipe.io.media import MediaInfo
from facepipe.io.media import probe as _probe
from facepipe.pipeline.cache import ArtifactCache
from facepipe.pipeline.runner import RunContext, Runner, source_key
from facepipe.pipeline.synthesis import passthrough, render_frames

EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "fearful", "disgusted", "contempt")


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


def default_output(src: Path, emotion: str, frames: str | None) -> Path:
    """``clip.mp4`` -> ``clip.happy.mp4`` (``clip.happy.40-120.mp4`` for a frame range)."""
    tag = emotion if frames is None else f"{emotion}.{frames.replace(',', '_')}"
    return src.with_name(f"{src.stem}.{tag}{src.suffix if src.suffix.lower() != '.png' else '.mp4'}")


@dataclass
class EditResult:
    output: Path
    frames_written: int
    info: MediaInfo
    stats: dict = field(default_factory=dict)


def open_context(info: MediaInfo, workdir: Path | None, device: str = "auto", progress: str = "auto",
                 chunk_mb: int = 32, log=print) -> RunContext:
    from facepipe.pipeline.device import select_device

    root = Path(workdir) if workdir else default_workdir()
    cache = ArtifactCache(root / source_key(info))
    return RunContext(media=info, cache=cache, device=select_device(device), progress_mode=progress,
                      chunk_bytes=chunk_mb * 2**20, log=log)


def analysis_stages(face: str = "largest") -> list:
    """The analysis graph: every stage an edit or an analysis may pull artifacts from.

    ``face`` picks the actor (``largest``, ``center`` or a track id from ``facepipe faces``).
    """
    from facepipe.analysis.expression import ExpressionStage
    from facepipe.stages.fit3d import Fit3DStage
    from facepipe.stages.scan import ScanStage
    from facepipe.stages.track import TrackStage

    return [ScanStage(), TrackStage(face=str(face).strip().lower()), Fit3DStage(), ExpressionStage()]


def edit(
    src: str | os.PathLike,
    emotion: str,
    intensity: float = 1.0,
    out: str | os.PathLike | None = None,
    force: bool = False,
    frames: str | None = None,
    frame_base: str = "index",
    codec: str | None = None,
    workdir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: str = "auto",
    chunk_mb: int = 32,
    log=print,
) -> EditResult:
    """Change the actor's expression in ``src`` and write the result.

    Until the synthesis stages exist, only the exact pass-through (``emotion="neutral",
    intensity=0``) is available; it re-encodes the selected frames with the source's timing,
    timecode, colour tags and audio.
    """
    from facepipe.io.codecs import choose_codec
    from facepipe.io.frameranges import first_frame_number, parse_frame_range

    if emotion not in EMOTIONS:
        raise RequestError(f"unknown emotion {emotion!r}: use one of {', '.join(EMOTIONS)}")
    if not 0.0 <= intensity <= 1.0:
        raise RequestError(f"--intensity {intensity} is out of range: use a value from 0 to 1")
    if not (emotion == "neutral" and intensity == 0.0):
        raise RequestError(
            "expression synthesis is not built yet: only the pass-through edit "
            "(--emotion neutral --intensity 0) is available in this version"
        )
    src = Path(src)
    info = _probe(src)
    first_number = first_frame_number(frame_base, info.timecode, info.fps)
    indices = np.arange(info.frame_count) if frames is None else parse_frame_range(frames, info.frame_count, first_number)
    out = Path(out) if out else default_output(src, emotion, frames)
    spec = choose_codec(codec, info, out)
    provenance = {
        "tool": "facepipe",
        "version": __version__,
        "source": src.name,
        "emotion": emotion,
        "intensity": intensity,
        "frames": frames or "all",
        "codec": spec.name,
    }
    writer = _make_writer(out, info, spec, indices, first_number, provenance, force, src)
    ctx = open_context(info, workdir, device, progress, chunk_mb, log)
    runner = Runner(analysis_stages(), ctx)
    runner.get("scan")
    with writer:
        written = render_frames(ctx, indices, passthrough, writer)
    return EditResult(output=out, frames_written=written, info=info, stats=ctx.stats)


def _make_writer(out: Path, info: MediaInfo, spec, indices, first_number: int, provenance: dict, force: bool, src: Path):
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
