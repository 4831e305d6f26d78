"""Helpers of the prepared GPU session (``prepare.sh`` here, ``run.sh`` on the GPU machine).

    python benchmarks/gpu_session/session.py clips                      # the renderer benchmark's shared clips
    python benchmarks/gpu_session/session.py check-cache --workdir W CLIP...   # their analysis is cached
    python benchmarks/gpu_session/session.py inference --device cuda --json OUT [--batches 1,8,32]  # 256 px crops/s
    python benchmarks/gpu_session/session.py sources --out DIR          # here: the edits' trimmed sources
    python benchmarks/gpu_session/session.py edits --out DIR SOURCE...  # there: neural edits of them, a tar per clip
    python benchmarks/gpu_session/session.py score --json OUT TAR...    # here: the harness on them, beside `full`

The edits: the first :data:`EDIT_FRAMES` frames of :data:`EDIT_CLIPS` (trimmed losslessly here,
as ``edit_quality.py`` does, their analysis carried), edited on the GPU machine to each of
:data:`EMOTIONS` with the clip's renderer that ``renderer.py --save-renderers`` trained there
(the 256 px config), written losslessly. The harness cannot run there (it tracks the edits, and
the image has no mediapipe), and a 256 px checkpoint (about 93 MiB in fp16) is too large to come
back, so the edited clips come back and are scored here, next to the ``full`` path edited here
from the same trimmed source.

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
#: Clips edited with their GPU-trained renderer (talking, 512 px) and how many of their first
#: frames: losslessly, 40 frames of hdtf_aoc are 5 MB, so 24 keep three edits of a clip in one
#: file under the tool's 16 MiB, and the carried sources within its 64 MiB with the wheels.
EDIT_CLIPS = ("hdtf_aoc_talk.mp4", "lp_d10_surprise_talk.mp4")
EDIT_FRAMES = 24
EMOTIONS = ("happy", "sad", "surprised")


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


def edit_sources(folder: Path) -> list[Path]:
    """The trimmed sources of :data:`EDIT_CLIPS` (``edit_quality.py``'s ``trimmed_source``) in ``folder``."""
    from common import SHARED
    from quality import trimmed_source

    folder.mkdir(parents=True, exist_ok=True)
    return [trimmed_source(SHARED / name, folder, EDIT_FRAMES, None) for name in EDIT_CLIPS]


def clip_of(source: Path) -> str:
    """``NAME.first24.mkv`` -> ``NAME``: the shared clip a trimmed source was cut from (its actor)."""
    return Path(source).name.split(".")[0]


def neural_edits(sources, out: Path, device: str) -> list[Path]:
    """Each trimmed source edited to each of :data:`EMOTIONS` with its clip's renderer, tracking
    backends blocked (as on the GPU machine) -> one tar per clip in ``out`` (edits, their reports)."""
    import tarfile

    from common import LOSSLESS_CODEC, LOSSLESS_EXT

    from facepipe import api

    out.mkdir(parents=True, exist_ok=True)
    tars = []
    for source in map(Path, sources):
        written = []
        for emotion in EMOTIONS:
            edit = out / f"{source.stem}.{emotion}.neural_gpu{LOSSLESS_EXT}"
            t0 = time.perf_counter()
            with imports_blocked():
                result = api.edit(source, emotion=emotion, out=edit, force=True, codec=LOSSLESS_CODEC, renderer="neural",
                                  actor=clip_of(source), device=device, progress="off", log=lambda m: None)  # fmt: skip
            print(f"edit {edit.name}: {time.perf_counter() - t0:.1f} s, {result.report['render']['frames_refined']} "
                  "frames refined", flush=True)
            written += [edit, result.report_path]
        tars.append(out / f"edits_{clip_of(source)}.tar")
        with tarfile.open(tars[-1], "w") as tar:
            for path in written:
                tar.add(path, arcname=Path(path).name)
    return tars


def score_edits(tars, json_path: Path) -> dict:
    """The harness on the returned edits (path ``neural_gpu``) and on ``full`` edits made here
    from the same trimmed sources; written as ``edit_quality.py`` writes its results."""
    import tarfile
    import tempfile
    from types import SimpleNamespace

    import edit_quality as eq
    from common import LOSSLESS_EXT
    from quality import SHARED, trimmed_source

    from facepipe import api
    from facepipe.defaults import APPEARANCE_STRENGTH

    reports, sources, t0 = [], {}, time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="facepipe-gpu-edits-") as tmp:
        folder = Path(tmp)
        for tar_path in tars:
            with tarfile.open(tar_path) as tar:
                tar.extractall(folder, filter="data")
        for edit in sorted(folder.glob(f"*.neural_gpu{LOSSLESS_EXT}")):
            clip, emotion = clip_of(edit), edit.name.split(".")[-3]  # NAME.first24.EMOTION.neural_gpu.mkv
            if clip not in sources:  # the carried source's pixels again (a lossless, deterministic trim)
                sources[clip] = trimmed_source(SHARED / f"{clip}.mp4", folder, EDIT_FRAMES, None)
            source = sources[clip]
            gpu = api.evaluate(source, edit, emotion, plan=edit.with_suffix(".report.json"), identity=True, log=lambda m: None)
            full = eq.edit_and_score(source, folder, emotion, "full", {"appearance": APPEARANCE_STRENGTH}, None, True)
            for report, path in ((full, "full"), (gpu, "neural_gpu")):
                report.update(path=path, clip=f"{clip}.mp4", requested=emotion)
                reports.append(report)
                print(f"{clip} {emotion} {path}: top {report['emotion'].get('top_share_after')}", flush=True)
    args = SimpleNamespace(json=Path(json_path), max_frames=EDIT_FRAMES, appearance=APPEARANCE_STRENGTH)  # write's argparse fields
    paths = {"full": {"appearance": APPEARANCE_STRENGTH},
             "neural_gpu": {"appearance": APPEARANCE_STRENGTH, "renderer": "neural", "note": "edited on the GPU machine"}}
    eq.write(args, reports, [], list(EMOTIONS), paths, [SHARED / c for c in EDIT_CLIPS], time.perf_counter() - t0)
    return json.loads(Path(json_path).read_text())


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
    sources = sub.add_parser("sources", help="Write the edits' trimmed sources (here) and print their paths.")
    sources.add_argument("--out", type=Path, required=True)
    edits = sub.add_parser("edits", help="Edit the trimmed sources with their clips' renderers; a tar per clip.")
    edits.add_argument("sources", nargs="+")
    edits.add_argument("--out", type=Path, required=True)
    edits.add_argument("--device", default="cuda")
    score = sub.add_parser("score", help="Score the returned edits with the harness, beside full edits made here.")
    score.add_argument("tars", nargs="+")
    score.add_argument("--json", type=Path, required=True)
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
    elif args.command == "sources":
        print("\n".join(str(p) for p in edit_sources(args.out)))
    elif args.command == "edits":
        neural_edits(args.sources, args.out, args.device)
    elif args.command == "score":
        score_edits(args.tars, args.json)
    else:
        report = inference_speed(args.device, batches=[int(b) for b in args.batches.split(",")])
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
