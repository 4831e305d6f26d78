"""Speed of the real edit: ``facepipe edit`` and ``facepipe preview`` next to the transcode floor, in one run.

    python benchmarks/speed.py [CLIP ...] --json benchmarks/results/speed.json \
        [--emotion happy] [--appearance 1.0] [--repeats 2] [--skip-cold]

With no CLIP, the shared clips hdtf_aoc_talk (512x512) and lp_s18_720p_threequarter (1280x720)
are used (``../shared/data/clips``; missing ones are skipped with a message). For each clip, in
frames per second of the whole clip:

- ``floor``: bare PyAV decode -> rgb24 ndarray -> encode with the encoder, pixel format, options
  and colour tags ``choose_codec(None, info, out)`` gives the edit (no audio): what any edit
  costs at least;
- ``edit warm``: the whole ``api.edit(clip, emotion=..., appearance=...)`` call, wall clock,
  with the analysis (tracking, 3D fit) already in the work directory;
- ``edit cold``: the same call in a fresh, empty work directory: tracking and fit included;
- ``render``: the report's ``timing.render_fps`` of the warm edit (decode + render + encode, no
  analysis, no set-up);
- ``preview``: ``api.preview(clip, scale=0.5, compare="side")`` over the whole clip, warm: the
  render frames/s it reports and the real-time factor = render fps / the clip's frame rate.

The methods run interleaved (rotating order) ``--repeats`` times after an untimed warm-up (the
analysis of the warm work directory and a 10-frame edit, so model loading lands on no method).
The table shows the best run of each; the JSON also keeps medians, every run and CPU seconds.
Ratios are against the floor measured in the same run (the machine is shared and noisy):
target ``edit warm / floor >= 0.3`` on CPU, preview real time > 1 on the 512x512 clip.

Writes OUT (JSON) and a markdown table next to it (same name, ``.md``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MUXERS, add_video_encoder, cpu_seconds, machine, resolve_clips, through_rgb, write_report  # noqa: E402
DEFAULT_CLIPS = ("hdtf_aoc_talk.mp4", "lp_s18_720p_threequarter.mp4")
TARGET_EDIT_RATIO = 0.3
TARGET_PREVIEW_RT = 1.0
PREVIEW_SCALE = 0.5


def _quiet(*_a, **_k) -> None:
    pass


# ------------------------------------------------------------------------------------ methods


def floor(info, spec, out: Path) -> int:
    """Bare PyAV decode -> rgb24 ndarray -> encode with the edit's encoder settings (no audio)."""
    import av

    from facepipe.io.reader import rgb_format

    fmt = rgb_format(info.bit_depth)
    n = 0
    with av.open(info.path) as src, av.open(str(out), "w", format=MUXERS[out.suffix.lower()]) as dst:
        vin = src.streams.video[0]
        vin.thread_type = "AUTO"
        vs, tags = add_video_encoder(dst, info, spec)
        for frame in src.decode(vin):
            dst.mux(vs.encode(through_rgb(frame, fmt, vs, tags)))
            n += 1
        dst.mux(vs.encode(None))
    return n


def edit(info, out: Path, workdir: Path, emotion: str, appearance: float, frames: str | None = None):
    from facepipe import api

    return api.edit(info.path, emotion=emotion, appearance=appearance, out=out, force=True, frames=frames,
                    workdir=workdir, progress="off", log=_quiet)


def preview(info, out: Path, workdir: Path, emotion: str, appearance: float):
    from facepipe import api

    return api.preview(info.path, emotion=emotion, appearance=appearance, out=out, force=True,
                       scale=PREVIEW_SCALE, compare="side", workdir=workdir, progress="off", log=_quiet)


def warm_analysis(info, workdir: Path) -> float:
    """Run the analysis an edit pulls (track, fit3d) into ``workdir``; seconds."""
    from facepipe.jobs.context import open_context
    from facepipe.pipeline.graph import Graph
    from facepipe.stages.graph import analysis_stages

    t0 = time.perf_counter()
    graph = Graph(analysis_stages(), open_context(info, workdir, "auto", "off", log=_quiet))
    graph.get("fit3d")
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------- the run


def bench_clip(path: Path, emotion: str, appearance: float, repeats: int, cold: bool, tmp: Path, log) -> dict:
    from facepipe.io.codecs import choose_codec
    from facepipe.io.media import probe

    info = probe(path)
    suffix = path.suffix if path.suffix.lower() in (".mp4", ".mov", ".mkv", ".mxf", ".m4v") else ".mp4"
    out = tmp / f"edit{suffix}"
    spec = choose_codec(None, info, out)  # what the edit of this clip writes
    warm_dir = tmp / "work-warm"
    shutil.rmtree(warm_dir, ignore_errors=True)
    # Untimed warm-up: the analysis (the cache a warm edit finds), then a short edit (model and
    # encoder loading, first-call allocations), so no timed method pays the process's first costs.
    analysis_s = warm_analysis(info, warm_dir)
    edit(info, out, warm_dir, emotion, appearance, frames=f"0-{min(9, info.frame_count - 1)}")
    log(f"{path.name}: {info.width}x{info.height}, {info.frame_count} frames at {float(info.fps):.3f} fps, "
        f"codec {spec.name} ({spec.encoder} {spec.encoder_options(info)}); analysis (untimed) {analysis_s:.1f} s")

    records: dict[str, list[dict]] = {}

    def run_floor():
        n = floor(info, spec, tmp / f"floor{suffix}")
        return n, {}

    def run_warm():
        r = edit(info, out, warm_dir, emotion, appearance)
        return r.frames_written, {"render_fps": r.report["timing"].get("render_fps"),
                                  "analysis_s": r.report["timing"].get("analysis_s"),
                                  "render_s": r.report["timing"].get("render_s")}

    def run_cold():
        work = tmp / "work-cold"
        shutil.rmtree(work, ignore_errors=True)
        r = edit(info, out, work, emotion, appearance)
        shutil.rmtree(work, ignore_errors=True)
        return r.frames_written, {"render_fps": r.report["timing"].get("render_fps"),
                                  "analysis_s": r.report["timing"].get("analysis_s"),
                                  "render_s": r.report["timing"].get("render_s")}

    def run_preview():
        p = preview(info, tmp / "preview.mp4", warm_dir, emotion, appearance)
        return p.frames_written, {"render_fps": p.render_fps, "render_s": p.render_seconds,
                                  "analysis_s": p.analysis_seconds}

    methods = {"floor": run_floor, "edit_warm": run_warm, "preview": run_preview}
    if cold:
        methods["edit_cold"] = run_cold
    order = list(methods)
    for r in range(repeats):
        for m in order[r % len(order):] + order[: r % len(order)]:  # rotate: no method always first
            c0, t0 = cpu_seconds(), time.perf_counter()
            frames, extra = methods[m]()
            wall = time.perf_counter() - t0
            if frames != info.frame_count:
                raise SystemExit(f"{m} handled {frames} of {info.frame_count} frames of {path}")
            records.setdefault(m, []).append({"wall_s": wall, "cpu_s": cpu_seconds() - c0, **extra})
            log(f"  {m} run {r + 1}: {wall:.2f} s = {frames / wall:.1f} fps"
                + (f" (render {extra['render_fps']:.1f} fps)" if extra.get("render_fps") else ""))

    n, clip_fps = info.frame_count, float(info.fps)
    best = {m: min(x["wall_s"] for x in v) for m, v in records.items()}
    median = {m: statistics.median(x["wall_s"] for x in v) for m, v in records.items()}
    fps = {m: n / v for m, v in best.items()}
    fps_median = {m: n / v for m, v in median.items()}
    row = {
        "clip": path.name,
        "size": f"{info.width}x{info.height}",
        "frames": n,
        "fps_source": round(clip_fps, 3),
        "codec": spec.name,
        "encoder": spec.encoder,
        "encoder_options": spec.encoder_options(info),
        "pix_fmt": spec.pix_fmt(info),
        "analysis_untimed_s": round(analysis_s, 2),
        "fps": {m: round(v, 2) for m, v in fps.items()},
        "fps_median": {m: round(v, 2) for m, v in fps_median.items()},
        "runs": {m: [{k: (round(x, 3) if isinstance(x, float) else x) for k, x in rec.items()} for rec in v]
                 for m, v in records.items()},
        "render_fps_warm": max(x["render_fps"] for x in records["edit_warm"]),
        "preview_render_fps": round(max(x["render_fps"] for x in records["preview"]), 2),
    }
    row["ratio_warm"] = round(fps["edit_warm"] / fps["floor"], 3)
    row["ratio_warm_median"] = round(fps_median["edit_warm"] / fps_median["floor"], 3)
    row["ratio_render"] = round(row["render_fps_warm"] / fps["floor"], 3)
    row["ratio_warm_cpu"] = round(min(x["cpu_s"] for x in records["floor"]) / min(x["cpu_s"] for x in records["edit_warm"]), 3)
    if cold:
        row["ratio_cold"] = round(fps["edit_cold"] / fps["floor"], 3)
        row["ratio_cold_median"] = round(fps_median["edit_cold"] / fps_median["floor"], 3)
        row["cold_analysis_s"] = round(min(x["analysis_s"] for x in records["edit_cold"]), 2)
    row["preview_realtime"] = round(row["preview_render_fps"] / clip_fps, 3)
    row["edit_within_target"] = row["ratio_warm"] >= TARGET_EDIT_RATIO
    row["preview_within_target"] = row["preview_realtime"] > TARGET_PREVIEW_RT
    log(f"{path.name}: floor {fps['floor']:.1f} fps, edit warm {fps['edit_warm']:.1f} fps "
        f"({row['ratio_warm']:.2f}x floor)" + (f", cold {fps['edit_cold']:.1f} fps ({row['ratio_cold']:.2f}x)" if cold else "")
        + f", preview {row['preview_render_fps']:.1f} fps = {row['preview_realtime']:.2f}x real time")
    return row


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Edit speed: facepipe edit and preview vs the transcode floor",
        "",
        f"Machine: {m['cpu']}, {m['cores_usable']} usable cores (of {m['cores']}), load average at start "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_start'])}; facepipe {m['facepipe']}, Python {m['python']}, "
        f"torch {m['torch']} ({m['torch_threads']} threads, CUDA {'yes' if m['cuda'] else 'no'}), PyAV {m['av']} "
        f"(libavcodec {m['ffmpeg_libavcodec']}), numpy {m['numpy']}.",
        "",
        f"Edit: `--emotion {report['emotion']} --appearance {report['appearance']:g}` over the whole clip. Frames per "
        f"second, best of {report['repeats']} interleaved runs (median in brackets). `floor` = bare PyAV decode -> "
        "rgb24 -> encode with the edit's codec settings, no audio; `edit warm` / `edit cold` = the whole `api.edit` "
        "call, wall clock, with the analysis cached / in an empty work directory (tracking + fit included; "
        "`cold analysis s`); `render` = the warm edit report's render fps (decode + render + encode); `preview` = "
        f"`api.preview --scale {PREVIEW_SCALE:g} --compare side` render fps, warm, and its real-time factor "
        f"(render fps / clip fps). Ratios are against the floor of the same run: target edit warm >= "
        f"{TARGET_EDIT_RATIO:g}x, preview > {TARGET_PREVIEW_RT:g}x real time on 512x512. `CPU ratio` = floor CPU s / "
        "warm edit CPU s (all threads; least disturbed by other work).",
    ]
    if report.get("note"):
        lines += ["", report["note"]]
    lines += [
        "",
        "| clip | size | frames | codec | floor | edit warm | edit cold | render | warm / floor | cold / floor "
        "| render / floor | CPU ratio | cold analysis s | preview | preview real time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        f, fm = r["fps"], r["fps_median"]
        cold = f"{f['edit_cold']:.1f} ({fm['edit_cold']:.1f})" if "edit_cold" in f else "-"
        lines.append(
            f"| {r['clip']} | {r['size']} | {r['frames']} | {r['codec']} | {f['floor']:.1f} ({fm['floor']:.1f}) | "
            f"{f['edit_warm']:.1f} ({fm['edit_warm']:.1f}) | {cold} | {r['render_fps_warm']:.1f} | "
            f"{r['ratio_warm']:.2f}x{'' if r['edit_within_target'] else ' (below target)'} | "
            f"{format(r['ratio_cold'], '.2f') + 'x' if 'ratio_cold' in r else '-'} | {r['ratio_render']:.2f}x | "
            f"{r['ratio_warm_cpu']:.2f}x | {r.get('cold_analysis_s', '-')} | {r['preview_render_fps']:.1f} | "
            f"{r['preview_realtime']:.2f}x |"
        )
    for s in report.get("skipped", []):
        lines.append(f"\nSkipped {s}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="*", help="clips to measure (default: a 512x512 and a 1280x720 shared clip)")
    parser.add_argument("--json", required=True, help="output JSON; a .md table is written beside it")
    parser.add_argument("--emotion", default="happy")
    parser.add_argument("--appearance", type=float, default=1.0, help="appearance transfer 0..1 (default 1)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-cold", action="store_true", help="leave out the cold (empty work directory) edit")
    args = parser.parse_args(argv)

    clips, skipped = resolve_clips(args.clips, DEFAULT_CLIPS, parser.error)
    if not clips:
        print("no clips to measure", file=sys.stderr)
        return 1

    report = {"machine": machine(), "emotion": args.emotion, "appearance": args.appearance,
              "repeats": args.repeats, "results": [], "skipped": skipped}
    if args.appearance == 0:
        report["note"] = "Appearance transfer off (`--appearance 0`): the geometric warp only."
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="facepipe-speed-bench-") as tmp:
        for clip in clips:
            report["results"].append(bench_clip(clip, args.emotion, args.appearance, args.repeats, not args.skip_cold,
                                                Path(tmp), log=lambda s: print(s, flush=True)))
    write_report(report, args.json, markdown, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
