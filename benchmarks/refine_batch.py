"""The render node's neural refinement, frame by frame vs in batches: refined frames per second.

The edit refines each warped face in three steps (``facepipe.render.neural.refine``): prepare
(crop, conditioning maps; for the edited face and for the source frame), the generator (two
crops a frame) and the change, paste (the low-passed, feathered change). Before batching the
generator ran once per crop (batch 1, the baseline here); the render node now runs it on up to
``NeuralRefiner.batch`` crops at once. Per batch size, on the same frames in
the same run: seconds per frame of each step and in all, the best of ``--repeats`` passes.

The frames are synthetic (random pixels, the face model's mean face of ``--face`` px in a
``--frame`` px frame, random AUs): speed only. The generator is an untrained one of the config
(its speed does not depend on its weights).

    python benchmarks/refine_batch.py --json benchmarks/results/refine_batch.json [--batches 1,4,16] [--config cpu|gpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_report  # noqa: E402

from facepipe.face.model import load_model  # noqa: E402
from facepipe.pipeline.device import select_device  # noqa: E402
from facepipe.render.neural.config import RendererConfig  # noqa: E402
from facepipe.render.neural.refine import NeuralRefiner, RefinePair  # noqa: E402
from facepipe.render.neural.train import build_generator  # noqa: E402


def synthetic_frames(model, n: int, frame: int, face: float, seed: int = 0) -> list[tuple]:
    """``n`` (frame (3,frame,frame), dst (N,2) px, depth (N,) px, au (K,)): the mean face ``face``
    px tall, moved a little from frame to frame."""
    g = torch.Generator().manual_seed(seed)
    mesh = torch.as_tensor(model.template, dtype=torch.float32)
    mesh = mesh * face / float(mesh[:, 1].amax() - mesh[:, 1].amin())
    out = []
    for _ in range(n):
        centre = frame / 2 + 20 * (torch.rand(2, generator=g) - 0.5)
        dst = mesh[:, :2] * torch.tensor([1.0, -1.0]) + centre
        out.append((torch.rand(3, frame, frame, generator=g), dst, -mesh[:, 2], torch.rand(len(model.au_names), generator=g)))
    return out


def refine_pass(refiner: NeuralRefiner, frames: list[tuple]) -> dict:
    """One refinement of every frame (copies: the paste writes in place) as the render node does
    it; -> seconds of each step."""
    faces = [f.clone() for f, *_ in frames]
    t0 = time.perf_counter()
    pairs = [RefinePair(refiner.prepare(face, dst, depth, au), refiner.prepare(face, dst, depth, torch.zeros_like(au)))
             for face, (_, dst, depth, au) in zip(faces, frames)]
    t1 = time.perf_counter()
    changes = refiner.changes(pairs)
    if refiner.device.type == "cuda":
        torch.cuda.synchronize()
    t2 = time.perf_counter()
    for face, pair, change in zip(faces, pairs, changes):
        refiner.paste(face, pair.edited, change)
    t3 = time.perf_counter()
    return {"prepare": t1 - t0, "generator": t2 - t1, "paste": t3 - t2, "total": t3 - t0}


def bench(config: RendererConfig, batches: list[int], n: int, frame: int, face: float, repeats: int, device) -> list[dict]:
    """Per batch size: ms per frame of each step (the best of ``repeats`` passes, step by step;
    the batch sizes take turns pass by pass, so a busy spell of the shared machine hits them
    alike) and refined frames per second."""
    model = load_model()
    torch.manual_seed(0)
    generator = build_generator(config, len(model.au_names)).to(device).eval()
    frames = synthetic_frames(model, n, frame, face)
    refiners = [NeuralRefiner(generator, config, model.template, model.triangles, batch=b) for b in batches]
    for refiner in refiners:
        refine_pass(refiner, frames[:refiner.batch])  # warm-up: allocation, kernel choice
    passes = [[refine_pass(refiner, frames) for refiner in refiners] for _ in range(repeats)]
    rows = []
    for k, batch in enumerate(batches):
        best = {step: min(p[k][step] for p in passes) for step in passes[0][k]}
        rows.append({"batch": batch, **{f"{step}_ms_per_frame": round(1000 * v / n, 2) for step, v in best.items()},
                     "frames_per_s": round(n / best["total"], 1),
                     "generator_crops_per_s": round(2 * n / best["generator"], 1)})
        print(f"batch {batch}: {rows[-1]}", flush=True)
    base = rows[0]["total_ms_per_frame"]
    for row in rows:
        row["speedup_vs_first"] = round(base / row["total_ms_per_frame"], 3)
    return rows


def markdown(report: dict) -> str:
    m, c = report["machine"], report["config"]
    lines = [
        "# Neural refinement: frame by frame vs batched",
        "",
        f"{m['cpu']}, {m['cores_usable']} usable cores, torch {m['torch']} with {m['torch_threads']} thread(s), "
        f"device {report['device']}; load average {m['load_average_start'][0]:.2f} at the start, "
        f"{m['load_average_end'][0]:.2f} at the end.",
        f"Config: {c['size']} px crops, width {c['width']}, {c['levels']} levels. {report['frames']} synthetic frames of "
        f"{report['frame_px']} px with a {report['face_px']:g} px face; best of {report['repeats']} passes per step "
        "(the batch sizes take turns pass by pass). "
        "Two crops a frame (the edited face and the source frame). "
        "Batch 1 is the path the edit ran before batching (one generator call per crop).",
        "",
        "| batch | prepare ms/frame | generator ms/frame | paste ms/frame | total ms/frame | frames/s | x batch 1 |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        lines.append(f"| {r['batch']} | {r['prepare_ms_per_frame']} | {r['generator_ms_per_frame']} | "
                     f"{r['paste_ms_per_frame']} | {r['total_ms_per_frame']} | {r['frames_per_s']} | {r['speedup_vs_first']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,4,16", help="Batch sizes, comma-separated; the first is the baseline.")
    ap.add_argument("--config", choices=("cpu", "gpu"), default="cpu", help="RendererConfig() or RendererConfig.gpu().")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--frame", type=int, default=720, help="Frame side in px.")
    ap.add_argument("--face", type=float, default=300.0, help="Face height in px.")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads.")
    ap.add_argument("--json", default="benchmarks/results/refine_batch.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    started, host = time.time(), machine()  # the load average before the run
    device = select_device(args.device)
    config = RendererConfig.gpu() if args.config == "gpu" else RendererConfig()
    rows = bench(config, [int(b) for b in args.batches.split(",")], args.frames, args.frame, args.face, args.repeats, device)
    report = {"machine": host, "device": str(device), "config": config.__dict__, "frames": args.frames,
              "frame_px": args.frame, "face_px": args.face, "repeats": args.repeats, "rows": rows}
    write_report(report, args.json, markdown, started)


if __name__ == "__main__":
    main()
