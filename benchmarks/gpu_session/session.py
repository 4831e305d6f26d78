"""Helpers of the prepared GPU session (``prepare.sh`` here, ``run.sh`` on the GPU machine).

    python benchmarks/gpu_session/session.py clips                      # the renderer benchmark's shared clips
    python benchmarks/gpu_session/session.py check-cache --workdir W CLIP...   # their analysis is cached
    python benchmarks/gpu_session/session.py inference --device cuda --json OUT [--batches 1,8,32]  # 256 px crops/s

The GPU machine has no mediapipe or face-alignment (and nothing can be installed there from an
index), so the tracking and the 3D fit of every clip it trains on must come from the carried
cache: ``check-cache`` pulls them with those packages made unimportable and fails if any stage
would run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCHMARKS))

#: What the GPU image lacks and only the tracking backends import.
TRACKING_ONLY = ("mediapipe", "face_alignment")
#: Batch sizes of the inference measurement: one face (an edit's frame), and batched.
BATCHES = (1, 8, 32)


@contextlib.contextmanager
def imports_blocked(names=TRACKING_ONLY):
    """Inside the block ``import name`` raises ImportError, as on the GPU machine."""
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update(dict.fromkeys(names))
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def default_clips() -> list[Path]:
    """The shared clips ``benchmarks/renderer.py`` trains on by default, in its order."""
    from common import SHARED
    from renderer import DEFAULT_CLIPS

    return [SHARED / name for name in DEFAULT_CLIPS]


def check_cache(clips, workdir) -> list[dict]:
    """Pull each clip's ``track`` and ``fit3d`` from ``workdir`` with the tracking backends
    blocked. -> per clip {clip, frames, fitted}; FacepipeError names a clip whose analysis would run."""
    import numpy as np

    from facepipe.errors import FacepipeError
    from facepipe.io.media import probe
    from facepipe.jobs.context import open_context
    from facepipe.pipeline.graph import Graph
    from facepipe.stages.graph import analysis_stages

    rows = []
    for clip in clips:
        ctx = open_context(probe(clip), workdir, "cpu", progress="off", log=lambda *a, **k: None)
        graph = Graph(analysis_stages("largest"), ctx)
        try:
            with imports_blocked():
                graph.get("track")
                fit = graph.get("fit3d")
        except (ImportError, FacepipeError) as exc:  # a cache miss reached a tracking backend (it says which package)
            raise FacepipeError(f"{Path(clip).name}: analysis not cached in {workdir} ({exc})") from exc
        if ctx.stats["ran"]:
            raise FacepipeError(f"{Path(clip).name}: {', '.join(ctx.stats['ran'])} ran instead of coming from {workdir}")
        rows.append({"clip": Path(clip).name, "frames": ctx.media.frame_count, "fitted": int(np.sum(fit.valid))})
    return rows


def inference_speed(device_name: str, repeats: int = 5, batches=BATCHES) -> dict:
    """Crops/s of the 256 px GPU config's generator (untrained) through the edit's own inference
    call (``NeuralRefiner.render``: the render node's batched call, fp16 autocast on CUDA, the
    faces back on the CPU), per batch size, with the time of the first call (kernel selection,
    allocation) apart. The crops are one face prepared as an edit prepares it, repeated."""
    import torch

    from facepipe.face.model import load_model
    from facepipe.pipeline.device import select_device
    from facepipe.render.neural.config import RendererConfig
    from facepipe.render.neural.refine import NeuralRefiner
    from facepipe.render.neural.train import build_generator

    device = select_device(device_name)
    config = RendererConfig.gpu()
    model = load_model()
    generator = build_generator(config, len(model.au_names)).to(device).eval()
    refiner = NeuralRefiner(generator, config, model.template, model.triangles, batch=max(batches))
    mesh = torch.as_tensor(model.template, dtype=torch.float32) * 150.0  # a 300 px face in a 512 px frame
    prepared = refiner.prepare(torch.rand(3, 512, 512), mesh[:, :2] * torch.tensor([1.0, -1.0]) + 256.0, -mesh[:, 2],
                               torch.rand(len(model.au_names)))  # fmt: skip

    def timed(crops) -> float:
        t0 = time.perf_counter()
        refiner.render(crops)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    rows = []
    for batch in batches:
        crops = [prepared] * batch
        first = timed(crops)
        best = min(timed(crops) for _ in range(repeats))  # inputs start on the CPU, as in an edit
        rows.append({"batch": batch, "first_call_s": round(first, 3), "crops_per_s": round(batch / best, 1)})
        print(f"inference {config.size}px width {config.width} on {device}: batch {batch}: "
              f"{rows[-1]['crops_per_s']} crops/s (first call {first:.2f} s)", flush=True)
    return {"device": str(device), "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch": torch.__version__, "config": {"size": config.size, "width": config.width, "levels": config.levels},
            "autocast_fp16": device.type == "cuda", "rows": rows}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("clips", help="Print the renderer benchmark's default shared clips (fails if one is missing).")
    check = sub.add_parser("check-cache", help="Fail unless every clip's track and fit3d are cached.")
    check.add_argument("clips", nargs="+")
    check.add_argument("--workdir", required=True)
    infer = sub.add_parser("inference", help="Crops/s of the 256 px config through the edit's inference call.")
    infer.add_argument("--device", default="cuda")
    infer.add_argument("--batches", default=",".join(map(str, BATCHES)), help="Batch sizes, comma-separated.")
    infer.add_argument("--json", required=True)
    args = ap.parse_args(argv)
    if args.command == "clips":
        clips = default_clips()
        missing = [str(c) for c in clips if not c.exists()]
        if missing:
            ap.exit(2, f"missing shared clips: {', '.join(missing)}\n")
        print("\n".join(str(c) for c in clips))
    elif args.command == "check-cache":
        for row in check_cache(args.clips, args.workdir):
            print(f"cached: {row['clip']}: {row['fitted']}/{row['frames']} frames fitted", flush=True)
    else:
        report = inference_speed(args.device, batches=[int(b) for b in args.batches.split(",")])
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
