"""What the benchmarks share: the shared footage folder, machine facts, resolving clip arguments
and reading frames."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "clips"
#: Codec preset and container of the clips that quality benchmarks write and then score (trimmed
#: sources, edits, breakers, re-encodes): lossless, so the same frames always give the same
#: pixels. libx264 with its default lookahead and B-frames does not (run-to-run bitstreams differ
#: slightly), and the tracker's landmark jitter on 40 frames moved by up to 0.3 with it.
LOSSLESS_CODEC, LOSSLESS_EXT = "ffv1", ".mkv"


def machine() -> dict:
    import av
    import torch

    import facepipe

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "facepipe": facepipe.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "av": av.__version__,
        "ffmpeg_libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def resolve_clips(given: list, defaults: tuple, error) -> tuple[list[Path], list[str]]:
    """(clips, skipped): the clips given (``error(msg)`` when one is missing), or the default
    shared clips that exist (the missing ones listed in ``skipped``: the footage may be absent)."""
    given = [Path(c) for c in given or []]
    clips, skipped = [], []
    for clip in given or [SHARED / c for c in defaults]:
        if clip.exists():
            clips.append(clip)
        elif given:
            error(f"{clip}: no such file")
        else:
            skipped.append(f"{clip.name}: not found under {SHARED}")
            print(f"skipping {clip}: not found (the shared footage is not beside this checkout)", file=sys.stderr)
    return clips, skipped


def actor_name(clip: Path) -> str:
    """The actor name the benchmarks give a clip's neural renderer: the clip's name, made legal."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(clip).stem)


def write_report(report: dict, json_path, markdown, started: float) -> None:
    """Stamp ``report`` with the end load and the wall time since ``started`` (time.time()), write
    it as JSON and its table (``markdown(report)``) beside it (same stem, .md), and print the table."""
    report["machine"]["load_average_end"] = list(os.getloadavg())
    report["wall_s"] = round(time.time() - started, 1)
    out = Path(json_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    table = markdown(report)
    out.with_suffix(".md").write_text(table)
    print(table)


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (encoder and decoder threads included)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ------------------------------------------------------------- bare PyAV, set up like the writer

MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".mxf": "mxf"}


def add_video_encoder(dst, info, spec):
    """A video stream on the PyAV output ``dst`` with the encoder, size, time base, options and
    colour tags facepipe's writer uses for ``info`` with codec ``spec``: (stream, colour tags)."""
    pix_fmt = spec.pix_fmt(info)
    vs = dst.add_stream(spec.encoder, rate=info.fps)
    vs.width, vs.height, vs.pix_fmt = info.coded_width, info.coded_height, pix_fmt
    vs.time_base = vs.codec_context.time_base = info.time_base
    vs.options = spec.encoder_options(info)
    tags = info.colour
    if pix_fmt.startswith(("rgb", "bgr", "gbr")):  # RGB coding: identity matrix, full range
        tags = tags.__class__(tags.primaries, tags.transfer, 0, 2)
    cc = vs.codec_context
    cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = (
        tags.primaries, tags.transfer, tags.matrix, tags.range)
    return vs, tags


def through_rgb(frame, fmt: str, stream, tags):
    """A decoded frame through an ``fmt`` (rgb24 / rgb48le) ndarray and back, tagged and
    converted to ``stream``'s pixel format as the writer does (single-threaded swscale: see
    MovieWriter.write)."""
    import av

    out = av.VideoFrame.from_ndarray(frame.to_ndarray(format=fmt), format=fmt)
    out.colorspace, out.color_range = tags.matrix, tags.range
    out.color_primaries, out.color_trc = tags.primaries, tags.transfer
    out.pts, out.time_base = frame.pts, frame.time_base
    return out.reformat(format=stream.pix_fmt, threads=1) if fmt != stream.pix_fmt else out


def read_frames(path: Path, indices) -> np.ndarray:
    """(T,H,W,3) uint8 rgb of frames ``indices`` of ``path`` (upright, as facepipe reads them)."""
    from facepipe.io.media import probe
    from facepipe.io.reader import VideoReader

    info = probe(path)
    out = []
    for chunk in VideoReader(info).chunks(np.asarray(indices, np.int64), read_ahead=0):
        f = chunk.frames.numpy() if hasattr(chunk.frames, "numpy") else np.asarray(chunk.frames)
        out.append(np.clip(np.rint(f.transpose(0, 2, 3, 1) * 255.0), 0, 255).astype(np.uint8))
    return np.concatenate(out)
