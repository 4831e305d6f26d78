"""The person-specific neural renderer vs the geometric warp: reconstruct held-out real frames.

For each clip the renderer trains on the clip's own frames (``--minutes`` each, the recipe of
``facepipe train renderer``; every 10th frame held out). Each held-out frame i is then rebuilt
from the training frame farthest from it in AU space, warped to frame i's mesh: the *warp* is
that warp alone, the *renderer* is the net's output from it. Both are scored against the real
frame inside the mesh's matte: PSNR, SSIM and sharpness (Laplacian variance over the real
frame's; the classifier rewards blur, so a renderer that wins PSNR by blurring shows here).
Also: inference crops/s of the trained config and of the 256 px GPU config (untrained; speed
only) on this machine, batched.

    python benchmarks/renderer.py --json benchmarks/results/renderer.json [--minutes 4] [--clips ...]

Contact sheets (warp | renderer | real, held-out frames) go to ``benchmarks/results/sheets/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import actor_name, machine, resolve_clips, write_report  # noqa: E402

from facepipe.face.model import load_model  # noqa: E402
from facepipe.io.media import probe  # noqa: E402
from facepipe.jobs.context import default_workdir, open_context  # noqa: E402
from facepipe.jobs.train_renderer import sheet_image, shot_samples  # noqa: E402
from facepipe.nn.face_renderer import FaceRendererNet  # noqa: E402
from facepipe.pipeline.device import select_device  # noqa: E402
from facepipe.render.neural.conditioning import MAP_CHANNELS, closed_triangles  # noqa: E402
from facepipe.render.neural.checkpoint import save_renderer  # noqa: E402
from facepipe.render.neural.config import RendererConfig  # noqa: E402
from facepipe.render.neural.library import renderer_path  # noqa: E402
from facepipe.render.neural.train import train_renderer  # noqa: E402
from facepipe.tracking.sheets import write_png  # noqa: E402

#: Talking, smiling, frowning and surprised shots (see ../shared/data/clips/README.md).
DEFAULT_CLIPS = ("hdtf_aoc_talk.mp4", "lp_d8_frown_smile.mp4", "lp_d10_surprise_talk.mp4", "lp_d19_grin_glasses.mp4",
                 "vr_face4_talk.mp4", "lp_s29_portrait_laugh.mp4")


def crops_per_second(config: RendererConfig, au_dim: int, device, batch: int = 8, repeats: int = 3) -> float:
    """Forward passes of an (untrained) generator of ``config``, batched: crops per second."""
    net = FaceRendererNet(3 + MAP_CHANNELS, au_dim, config.width, config.levels, config.embed_dim).to(device).eval()
    x = torch.rand(batch, 3 + MAP_CHANNELS, config.size, config.size, device=device)
    au = torch.rand(batch, au_dim, device=device)
    with torch.no_grad():
        net(x, au)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(repeats):
            net(x, au)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return round(batch * repeats / (time.perf_counter() - t0), 1)


def bench_clip(clip: Path, config: RendererConfig, minutes: float, device, sheets: Path, save: bool = False) -> dict:
    """Train on ``clip``, score the held-out frames; with ``save``, keep the renderer as the
    clip's actor's (``common.actor_name``) in the work dir, where an edit with ``actor=`` finds it."""
    ctx = open_context(probe(clip), None, str(device), progress="off", log=lambda *a, **k: None)
    samples = shot_samples(ctx, config)
    model = load_model()
    triangles = closed_triangles(model.triangles)
    generator, report, rows = train_renderer(samples, config, triangles, None, minutes, device, log=lambda m: None)
    scores = report["validation_after"]
    write_png(sheets / f"renderer_{clip.stem}.png", sheet_image(rows, 8))
    if save:
        actor = actor_name(clip)
        save_renderer(renderer_path(actor, None, default_workdir()), config, generator, model.au_names, actor, report)
    print(f"{clip.name}: {report['steps']} steps in {report['seconds']} s; {scores}", flush=True)
    return {"clip": clip.name, "frames": len(samples), "train_frames": report["train_frames"],
            "steps": report["steps"], "train_s": report["seconds"], **scores}


def markdown(report: dict) -> str:
    m = report["machine"]
    c = report["config"]
    lines = [
        "# Neural renderer vs geometric warp: held-out frames rebuilt from the farthest expression",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({report['device']}). "
        f"Config: {c['size']} px crops, width {c['width']}, {c['levels']} levels, batch {c['batch']}; "
        f"{report['minutes']} min of training per clip. Scores inside the face matte; sharpness = "
        "Laplacian variance / the real frame's (1 = as sharp as real).",
        "",
        "| clip | frames (train) | steps | PSNR warp -> renderer | SSIM warp -> renderer | sharpness warp -> renderer |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["clips"]:
        w, n = r["warp"], r["renderer"]
        lines.append(f"| {r['clip']} | {r['frames']} ({r['train_frames']}) | {r['steps']} | {w['psnr']:.2f} -> {n['psnr']:.2f} "
                     f"| {w['ssim']:.3f} -> {n['ssim']:.3f} | {w['sharpness']:.2f} -> {n['sharpness']:.2f} |")
    s = report["summary"]
    lines += ["", f"Median PSNR gain {s['psnr_gain_median']:+.2f} dB (renderer better on {s['psnr_better']}/{len(report['clips'])} "
              f"clips), median SSIM gain {s['ssim_gain_median']:+.4f}, median sharpness {s['sharpness_median']:.2f}.", "",
              "Inference (batched, untrained nets, this machine): "
              + ", ".join(f"{k}: {v} crops/s" for k, v in report["crops_per_second"].items()) + ".", ""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="*")
    ap.add_argument("--minutes", type=float, default=4.0, help="Training wall time per clip.")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default).")
    ap.add_argument("--json", default="benchmarks/results/renderer.json")
    ap.add_argument("--save-renderers", action="store_true",
                    help="keep each clip's renderer as its actor's (the clip's name) in the work dir, for edits")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    clips, skipped = resolve_clips(args.clips, DEFAULT_CLIPS, ap.error)
    device = select_device(args.device)
    config = RendererConfig.for_device(device)
    sheets = Path(args.json).parent / "sheets"
    rows = [bench_clip(c, config, args.minutes, device, sheets, args.save_renderers) for c in clips]
    gains = [r["renderer"]["psnr"] - r["warp"]["psnr"] for r in rows]
    au_dim = len(load_model().au_names)
    report = {
        "machine": machine(), "device": str(device), "minutes": args.minutes, "config": config.__dict__, "clips": rows,
        "skipped": skipped,
        "summary": {"psnr_gain_median": round(float(np.median(gains)), 3) if gains else None,
                    "psnr_better": int(sum(g > 0 for g in gains)),
                    "ssim_gain_median": round(float(np.median([r["renderer"]["ssim"] - r["warp"]["ssim"] for r in rows])), 4) if rows else None,
                    "sharpness_median": round(float(np.median([r["renderer"]["sharpness"] for r in rows])), 3) if rows else None},
        "crops_per_second": {f"{config.size}px width {config.width}": crops_per_second(config, au_dim, device),
                             "256px width 64 (GPU config)": crops_per_second(RendererConfig.gpu(), au_dim, device)},
    }
    write_report(report, args.json, markdown, started)


if __name__ == "__main__":
    main()
