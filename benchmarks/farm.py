"""Wall time of one batch of shots on Dask with 1 and 2 worker processes on this machine, and
where each shot's time goes (prepare: tracking + fit; chunks: the edit's render; assemble).

    python benchmarks/farm.py --json benchmarks/results/farm.json

The shots are the first FRAMES frames of three shared clips, cut losslessly (FFV1) by a
pass-through edit; each worker count runs with a fresh work directory, so both pay for the
analysis. The runs' frames are compared: a batch gives the same frames on any number of workers.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LOSSLESS_CODEC, LOSSLESS_EXT, machine, resolve_clips, write_report  # noqa: E402

DEFAULT_CLIPS = ("hdtf_aoc_talk.mp4", "lp_d3_talk_glasses.mp4", "lp_d8_frown_smile.mp4")


def trim(clip: Path, frames: int, folder: Path) -> Path:
    from facepipe import api

    out = folder / f"{clip.stem}{LOSSLESS_EXT}"
    api.edit(clip, emotion="neutral", intensity=0.0, frames=f"0-{frames - 1}", out=out, codec=LOSSLESS_CODEC,
             progress="off", log=lambda m: None)  # fmt: skip
    return out


def run(shots: list[Path], workers: int, chunk: int, emotion: str, folder: Path) -> tuple[dict, dict]:
    from facepipe.farm.engine import FarmSettings, run_farm
    from facepipe.farm.shots import shots_from_args
    from facepipe.io.sequence import read_image, sequence_frames

    settings = FarmSettings(out_dir=folder / f"out-{workers}", chunk=chunk, workdir=folder / f"work-{workers}")
    t0 = time.perf_counter()
    result = run_farm(shots_from_args(shots, emotion), settings, workers=workers, log=lambda m: None)
    wall = time.perf_counter() - t0
    row = {"workers": workers, "wall_s": round(wall, 1), "shots": [{
        "shot": s.shot.label, "frames": s.frames, "prepare_s": round(s.prepare_s, 1), "chunks": len(s.chunks),
        "chunk_s": round(s.chunk_s, 1), "assemble_s": round(s.assemble_s, 1)} for s in result.shots]}  # fmt: skip
    frames = {s.shot.label: {n: read_image(p) for n, p in sequence_frames(
        s.output.parent / f"{s.shot.label}.{emotion}.frames" / f"{s.shot.label}.%06d.png").items()} for s in result.shots}
    return row, frames


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Farm batch on Dask: {len(report['clips'])} shots x {report['frames']} frames, chunks of {report['chunk']}",
             "", f"Machine: {m['cpu']}, {m['cores_usable']} cores usable, SHARED with other work while it ran "
             f"(load average {m['load_average_start'][0]:.1f} at the start, {m['load_average_end'][0]:.1f} at the end): "
             "the times are indicative, not a clean measurement.", "",
             "The batch wall time includes starting the LocalCluster and loading facepipe in each worker. A local "
             "cluster splits the cores between its workers (render and torch threads per task = cores / workers), "
             "so on 2 cores the second worker adds concurrency (one shot's prepare beside another's chunks), "
             "not cores.", "",
             "| workers | threads per task | batch wall s | speed-up |", "|---|---|---|---|"]
    base = report["runs"][0]["wall_s"]
    lines += [f"| {r['workers']} | {max(1, m['cores_usable'] // r['workers'])} | {r['wall_s']} | {base / r['wall_s']:.2f}x |"
              for r in report["runs"]]
    lines += ["", "Per shot (task seconds on its worker; chunks summed):", "",
              "| workers | shot | frames | prepare s | chunks | chunk s (sum) | assemble s |", "|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        lines += [f"| {r['workers']} | {s['shot']} | {s['frames']} | {s['prepare_s']} | {s['chunks']} | {s['chunk_s']} | "
                  f"{s['assemble_s']} |" for s in r["shots"]]
    lines += ["", f"Frames identical across worker counts: {report['identical_frames']}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", help=f"default: {', '.join(DEFAULT_CLIPS)} from the shared footage")
    parser.add_argument("--frames", type=int, default=60, help="frames of each clip (a trim from its start)")
    parser.add_argument("--chunk", type=int, default=20, help="frames per chunk task")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--emotion", default="happy")
    parser.add_argument("--json", default="benchmarks/results/farm.json")
    args = parser.parse_args()
    clips, skipped = resolve_clips(args.clips, DEFAULT_CLIPS, parser.error)
    if not clips:
        parser.exit(0, "no clips: nothing to measure\n")
    started = time.time()
    report = {"machine": machine(), "clips": [c.name for c in clips], "skipped": skipped, "frames": args.frames,
              "chunk": args.chunk, "emotion": args.emotion, "runs": []}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="facepipe-farm-bench-") as tmp:
        folder = Path(tmp)
        shots = [trim(c, args.frames, folder) for c in clips]
        outputs = []
        for workers in args.workers:
            row, frames = run(shots, workers, args.chunk, args.emotion, folder)
            report["runs"].append(row)
            outputs.append(frames)
            print(f"{workers} workers: {row['wall_s']} s", file=sys.stderr)
        report["identical_frames"] = all(
            o.keys() == outputs[0].keys() and all(np.array_equal(o[s][n], outputs[0][s][n]) for s in o for n in o[s])
            for o in outputs[1:])  # fmt: skip
    write_report(report, args.json, markdown, started)


if __name__ == "__main__":
    main()
