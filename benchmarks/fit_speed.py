"""Speed of the fit3d fit (identity + pose + AUs over a whole shot), in frames per second.

    python benchmarks/fit_speed.py [CLIP] [--frames 300] [--device cpu] [--json benchmarks/results/fit_speed.json]

Landmarks of the first ``--frames`` frames of CLIP (default: the shared lp_d3_talk_glasses.mp4,
a talking head that turns) come from mediapipe FaceMesh (cached under /tmp) and are not part
of the timing; without footage a synthetic shot rendered from the face model is used. The fit
runs ``--repeat`` times with the default settings; the median wall time gives frames/s.
Writes JSON and a markdown table next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "clips"
DEFAULT_CLIP = SHARED / "lp_d3_talk_glasses.mp4"


def _landmarks(clip: Path | None, frames: int):
    """(landmarks (T,478,3) px, confidence (T,), (W,H), source name)."""
    if clip is not None and clip.exists():
        from facepipe.face.mesh_landmarks import clip_landmarks

        lm, conf, size = clip_landmarks(str(clip), np.arange(frames))
        return lm, conf, size, clip.name
    import torch

    from facepipe.face.camera import project
    from facepipe.face.model import load_model

    model = load_model()
    t = np.arange(frames)
    rng = np.random.default_rng(0)
    au = np.clip(0.5 + 0.5 * np.sin(t[:, None] / (5 + 20 * rng.random(len(model.au_names)))), 0, 1) * (rng.random(len(model.au_names)) < 0.3)
    verts = torch.from_numpy(model.shape(None, au.astype(np.float32)))
    rot = torch.tensor(np.stack([0.1 * np.sin(t / 20), 0.3 * np.sin(t / 30), 0 * t], 1), dtype=torch.float32)
    lm = project(verts, rot, torch.tensor([[256.0, 256.0, 0.0]]).repeat(frames, 1), torch.full((frames,), 150.0)).numpy()
    return lm, np.ones(frames, np.float32), (512, 512), "synthetic"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", nargs="?", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "fit_speed.json")
    args = ap.parse_args(argv)

    import torch

    from facepipe.face.fit import FitConfig, fit_shot
    from facepipe.face.model import load_model

    lm, conf, size, source = _landmarks(args.clip, args.frames)
    model = load_model()
    config = FitConfig()
    fit_shot(lm[:8], conf[:8], size, model, FitConfig(iterations=5), device=args.device)  # warm-up
    times, fit = [], None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        fit = fit_shot(lm, conf, size, model, config, device=args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    wall = float(np.median(times))
    result = {
        "source": source,
        "frames": len(lm),
        "device": args.device,
        "torch_threads": 1 if args.device == "cpu" else None,  # fit_shot runs single-threaded on CPU
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "iterations": config.iterations,
        "aus": len(model.au_names),
        "wall_s": [round(t, 3) for t in times],
        "fps": round(len(lm) / wall, 1),
        "ms_per_iteration": round(1000 * wall / config.iterations, 2),
        "median_residual_iod": round(float(np.nanmedian(fit.residual)), 5),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    table = (
        "| source | frames | device | threads | iterations | median wall s | frames/s | ms/iteration | median residual (IOD) |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        f"| {source} | {result['frames']} | {args.device} | {result['torch_threads'] or '-'} | {config.iterations} | "
        f"{wall:.2f} | {result['fps']} | {result['ms_per_iteration']} | {result['median_residual_iod']:.4f} |\n"
    )
    args.json.with_suffix(".md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
