"""I/O throughput: facepipe's decode and pass-through edit next to a bare PyAV transcode, in one run.

    python benchmarks/io_speed.py CLIP [CLIP ...] --json benchmarks/results/io_speed.json \
        [--codecs h264,prores] [--repeats 3]

With no CLIP, the shared clips lp_d0_grin, hdtf_aoc_talk and lp_s18_720p_threequarter are used
(``../shared/data/clips``). For each clip and codec preset, in frames per second:

- ``decode``: facepipe's VideoReader over every frame (rgb -> (T,3,H,W) float32 tensors);
- ``decode_pyav``: bare PyAV decode to rgb arrays (the floor of any reader);
- ``edit``: ``api.edit(..., emotion="neutral", intensity=0, codec=...)``, the whole pass-through
  command as a user runs it (probe, cache look-up, decode, tensors, encode, audio copy, atomic
  rename), with the analysis cache warm: the scan stage's first run is timed separately
  (``scan_s``) and is not part of ``edit``;
- ``transcode_rgb``: bare PyAV, same encoder, pixel format, options, colour tags and container:
  decode -> rgb ndarray -> VideoFrame -> encode, audio packets copied. The same colour path as
  the pipeline without the pipeline: the floor the edit is measured against;
- ``transcode``: bare PyAV decode -> encode (the encoder's own conversion, no RGB round trip).

Methods run interleaved (rotating order) ``--repeats`` times; the table shows the best run of
each (least disturbed by other work on a shared machine) and the JSON also keeps the medians.
``overhead = edit time / transcode_rgb time - 1`` (target: at most 15 %).

Writes OUT (JSON) and a markdown table next to it (same name, ``.md``).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MUXERS, SHARED, add_video_encoder, cpu_seconds, machine, through_rgb, write_report  # noqa: E402
DEFAULT_CLIPS = ("lp_d0_grin.mp4", "hdtf_aoc_talk.mp4", "lp_s18_720p_threequarter.mp4")
TARGET_OVERHEAD = 0.15


# ------------------------------------------------------------------------------------ methods


def decode_reader(info) -> int:
    from facepipe.io.reader import VideoReader

    n = 0
    for chunk in VideoReader(info).chunks():
        n += len(chunk)
    return n


def decode_pyav(info) -> int:
    import av

    from facepipe.io.reader import rgb_format

    n = 0
    with av.open(info.path) as c:
        c.streams.video[0].thread_type = "AUTO"
        for frame in c.decode(video=0):
            frame.to_ndarray(format=rgb_format(info.bit_depth))
            n += 1
    return n


def edit(info, spec, out: Path, workdir: Path) -> int:
    from facepipe import api

    result = api.edit(info.path, emotion="neutral", intensity=0.0, out=out, force=True, codec=spec.name,
                      workdir=workdir, progress="off", log=lambda *a: None)
    return result.frames_written


def transcode(info, spec, out: Path, rgb: bool) -> int:
    """Bare PyAV transcode with the writer's encoder settings; ``rgb``: through rgb ndarrays."""
    import av

    from facepipe.io.reader import rgb_format

    fmt = rgb_format(info.bit_depth)
    muxer = MUXERS[out.suffix.lower()]
    scale = math.lcm(info.time_base.denominator, *(a.sample_rate for a in info.audio if a.sample_rate))
    options = {"movie_timescale": str(scale)} if muxer in ("mp4", "mov") else {}
    n = 0
    with av.open(info.path) as src, av.open(str(out), "w", format=muxer, options=options) as dst:
        vin = src.streams.video[0]
        vin.thread_type = "AUTO"
        vs, tags = add_video_encoder(dst, info, spec)
        audio = {s.index: dst.add_stream_from_template(s) for s in src.streams.audio}
        for packet in src.demux([vin] + list(src.streams.audio)):
            if packet.stream.type == "audio":
                if packet.size:
                    packet.stream = audio[packet.stream.index]
                    dst.mux(packet)
                continue
            for frame in packet.decode():
                if rgb:
                    frame = through_rgb(frame, fmt, vs, tags)
                dst.mux(vs.encode(frame))
                n += 1
        dst.mux(vs.encode(None))
    return n


# ---------------------------------------------------------------------------------- the run


def bench_clip(path: Path, codecs: list[str], repeats: int, tmp: Path, log) -> list[dict]:
    from facepipe.io.codecs import CODECS, choose_codec
    from facepipe.io.media import probe
    from facepipe.jobs.context import open_context
    from facepipe.pipeline.graph import Graph
    from facepipe.stages.graph import analysis_stages

    info = probe(path)
    workdir = tmp / "work"
    _warm_up_encoders(codecs, tmp)
    # The scan stage, cold, once: the analysis pass a real edit runs the first time.
    shutil.rmtree(workdir, ignore_errors=True)
    ctx = open_context(info, workdir, "cpu", "off", log=lambda *a: None)
    t0 = time.perf_counter()
    Graph(analysis_stages(), ctx).get("scan")
    scan_s = time.perf_counter() - t0

    rows = []
    for name in codecs:
        spec = CODECS[name]
        out = tmp / f"out{spec.containers[0]}"
        choose_codec(name, info, out)  # the same checks as an edit (size limits, containers)
        methods = {
            "decode": lambda: decode_reader(info),
            "decode_pyav": lambda: decode_pyav(info),
            "edit": lambda spec=spec, out=out: edit(info, spec, out, workdir),
            "transcode_rgb": lambda spec=spec, out=out: transcode(info, spec, tmp / f"rgb{out.suffix}", rgb=True),
            "transcode": lambda spec=spec, out=out: transcode(info, spec, tmp / f"direct{out.suffix}", rgb=False),
        }
        times: dict[str, list[float]] = {m: [] for m in methods}
        cpu: dict[str, list[float]] = {m: [] for m in methods}
        order = list(methods)
        for r in range(repeats):
            for m in order[r % len(order):] + order[: r % len(order)]:  # rotate: no method always first
                c0 = cpu_seconds()
                t0 = time.perf_counter()
                frames = methods[m]()
                times[m].append(time.perf_counter() - t0)
                cpu[m].append(cpu_seconds() - c0)
                if frames != info.frame_count:
                    raise SystemExit(f"{m} handled {frames} of {info.frame_count} frames of {path}")
        best = {m: min(v) for m, v in times.items()}
        median = {m: statistics.median(v) for m, v in times.items()}
        row = {
            "clip": path.name,
            "codec": name,
            "size": f"{info.width}x{info.height}",
            "frames": info.frame_count,
            "fps_source": str(info.fps),
            "audio_streams": len(info.audio),
            "scan_s": round(scan_s, 3),
            "seconds_best": {m: round(v, 3) for m, v in best.items()},
            "seconds_median": {m: round(v, 3) for m, v in median.items()},
            "seconds_all": {m: [round(x, 3) for x in v] for m, v in times.items()},
            "cpu_seconds_best": {m: round(min(v), 3) for m, v in cpu.items()},
            "fps": {m: round(info.frame_count / v, 1) for m, v in best.items()},
            "overhead": round(best["edit"] / best["transcode_rgb"] - 1, 4),
            "overhead_median": round(median["edit"] / median["transcode_rgb"] - 1, 4),
            # CPU seconds of all threads: what the work costs, whatever else shares the machine
            "overhead_cpu": round(min(cpu["edit"]) / min(cpu["transcode_rgb"]) - 1, 4),
            "rgb_round_trip_cost": round(best["transcode_rgb"] / best["transcode"] - 1, 4),
        }
        row["within_target"] = row["overhead"] <= TARGET_OVERHEAD
        log(f"{path.name} {name}: edit {row['fps']['edit']} fps, transcode_rgb {row['fps']['transcode_rgb']} fps, "
            f"overhead {100 * row['overhead']:+.1f}% (median {100 * row['overhead_median']:+.1f}%)")
        rows.append(row)
    return rows


def _warm_up_encoders(codecs: list[str], tmp: Path) -> None:
    """Open each encoder once, untimed: the first libx264 encoder opened in a process behaves
    differently from later ones (PyAV 18.1 wheel), and every method should see the same state."""
    import av
    import numpy as np

    from facepipe.io.codecs import CODECS

    for name in codecs:
        spec = CODECS[name]
        cc = av.CodecContext.create(spec.encoder, "w")
        cc.width, cc.height, cc.pix_fmt = 256, 128, spec.pix_fmt_8
        cc.time_base, cc.framerate = Fraction(1, 25), 25
        cc.options = dict(spec.options)
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((128, 256, 3), 40 * i, np.uint8), format="rgb24")
            frame.pts = i
            cc.encode(frame.reformat(format=spec.pix_fmt_8))
        cc.encode(None)


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# I/O speed: facepipe pass-through vs bare PyAV transcode",
        "",
        f"Machine: {m['cpu']}, {m['cores_usable']} usable cores (of {m['cores']}), load average at start "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_start'])}; Python {m['python']}, torch {m['torch']} "
        f"({m['torch_threads']} threads), PyAV {m['av']} (libavcodec {m['ffmpeg_libavcodec']}), numpy {m['numpy']}.",
        "",
        f"Frames per second, best of {report['repeats']} interleaved runs. `edit` = `api.edit` pass-through with a "
        "warm analysis cache (the scan stage's first run is `scan s`); `transcode rgb` = bare PyAV "
        "decode -> rgb -> encode with the same encoder settings and audio copy; `transcode` = decode -> encode. "
        f"Overhead = edit time / transcode-rgb time - 1 (target <= {100 * TARGET_OVERHEAD:.0f}%); the CPU column "
        "compares CPU seconds (all threads), which other work on a shared machine disturbs least.",
        "",
        "| clip | size | frames | codec | decode (VideoReader) | decode (PyAV) | edit | transcode rgb | transcode "
        "| overhead (best) | overhead (median) | overhead (CPU s) | scan s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        f = r["fps"]
        lines.append(
            f"| {r['clip']} | {r['size']} | {r['frames']} | {r['codec']} | {f['decode']} | {f['decode_pyav']} | "
            f"{f['edit']} | {f['transcode_rgb']} | {f['transcode']} | {100 * r['overhead']:+.1f}% | "
            f"{100 * r['overhead_median']:+.1f}% | {100 * r['overhead_cpu']:+.1f}% | {r['scan_s']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="*", help="clips to measure (default: three shared clips)")
    parser.add_argument("--json", required=True, help="output JSON; a .md table is written beside it")
    parser.add_argument("--codecs", default="h264", help="comma-separated movie presets (default: h264)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from facepipe.io.codecs import CODECS

    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    bad = [c for c in codecs if c not in CODECS or CODECS[c].image_sequence]
    if bad:
        parser.error(f"not a movie codec preset: {', '.join(bad)} (use {', '.join(n for n, c in CODECS.items() if not c.image_sequence)})")
    clips = [Path(c) for c in args.clips] or [SHARED / c for c in DEFAULT_CLIPS]
    for clip in clips:
        if not clip.exists():
            parser.error(f"{clip}: no such file")

    report = {"machine": machine(), "repeats": args.repeats, "codecs": codecs, "results": []}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="facepipe-io-bench-") as tmp:
        for clip in clips:
            report["results"] += bench_clip(clip, codecs, args.repeats, Path(tmp), log=lambda s: print(s, flush=True))
    write_report(report, args.json, markdown, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
