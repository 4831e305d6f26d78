"""Face-tracking speed next to decode-only speed, for the same frames of the same clip, in one run.

    python benchmarks/tracking_speed.py CLIP [CLIP ...] --json benchmarks/results/tracking_speed.json

With no CLIP, the shared 512x512 and 1280x720 clips are used (``../shared/data/clips``). For
each clip and the first ``--frames`` frames it measures, in frames per second:

- ``decode_pyav``: PyAV decode to rgb24 arrays (the floor of any reader);
- ``decode``: facepipe's VideoReader (float32 tensors, what stages receive);
- ``track``: the tracker alone on already-decoded frames (detection every 10 frames, evidence
  check every frame: the stage's defaults), and without the evidence check;
- ``pipeline``: decode + conversion + tracking, as the track stage runs them;
- the same at half resolution (``--scale 0.5``) for clips wider than 640 pixels.

Writes OUT (JSON) and a markdown table next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "clips"
DEFAULT_CLIPS = ("lp_d0_grin.mp4", "lp_s18_720p_threequarter.mp4")


def _decode_pyav(path: str, n: int) -> float:
    import av

    t0 = time.perf_counter()
    k = 0
    with av.open(path) as c:
        c.streams.video[0].thread_type = "AUTO"
        for f in c.decode(video=0):
            f.to_ndarray(format="rgb24")
            k += 1
            if k == n:
                break
    return k / (time.perf_counter() - t0)


def _decode_reader(info, n: int, scale: float = 1.0) -> float:
    from facepipe.io.reader import VideoReader

    t0 = time.perf_counter()
    k = 0
    for ch in VideoReader(info).chunks(np.arange(n), scale=scale):
        k += len(ch)
    return k / (time.perf_counter() - t0)


def _images(info, n: int, scale: float):
    from facepipe.io.reader import VideoReader
    from facepipe.io.reader import to_uint8_images

    out = []
    for ch in VideoReader(info).chunks(np.arange(n), scale=scale):
        out += to_uint8_images(ch.frames)
    return out


def _track(backend, images, evidence_every: int) -> tuple[float, int]:
    from facepipe.tracking.tracker import FaceTracker, TrackerConfig

    tr = FaceTracker(backend, TrackerConfig(evidence_every=evidence_every))
    seen = 0
    t0 = time.perf_counter()
    for i, im in enumerate(images):
        seen += bool(tr.step(im, i).faces)
    return len(images) / (time.perf_counter() - t0), seen


def _pipeline(backend, info, n: int, scale: float) -> float:
    from facepipe.io.reader import VideoReader
    from facepipe.io.reader import to_uint8_images
    from facepipe.tracking.tracker import FaceTracker

    tr = FaceTracker(backend)
    t0 = time.perf_counter()
    k = 0
    for ch in VideoReader(info).chunks(np.arange(n), scale=scale):
        for i, im in zip(ch.indices.tolist(), to_uint8_images(ch.frames)):
            tr.step(im, i)
            k += 1
    return k / (time.perf_counter() - t0)


def bench_clip(path: str, backend, n: int) -> dict:
    from facepipe.io.media import probe

    info = probe(path)
    n = min(n, info.frame_count)
    row = {"clip": Path(path).name, "size": f"{info.width}x{info.height}", "frames": n}
    _decode_pyav(path, min(n, 10))  # warm the file cache
    row["decode_pyav_fps"] = _decode_pyav(path, n)
    row["decode_fps"] = _decode_reader(info, n)
    images = _images(info, n, 1.0)
    backend.landmarks(images[0], backend.roi_from_landmarks(np.zeros((478, 3), np.float32) + 1))  # warm up
    row["track_fps"], seen = _track(backend, images, 1)
    row["track_no_evidence_fps"], _ = _track(backend, images, 0)
    row["face_frames"] = seen
    row["pipeline_fps"] = _pipeline(backend, info, n, 1.0)
    if info.width > 640:
        row["decode_half_fps"] = _decode_reader(info, n, 0.5)
        row["pipeline_half_fps"] = _pipeline(backend, info, n, 0.5)
    return row


def markdown(report: dict) -> str:
    cols = [("clip", "clip"), ("size", "size"), ("frames", "frames"), ("decode_pyav_fps", "PyAV decode"),
            ("decode_fps", "reader decode"), ("track_fps", "track"), ("track_no_evidence_fps", "track (no evidence check)"),
            ("pipeline_fps", "decode+track"), ("decode_half_fps", "reader decode @0.5"),
            ("pipeline_half_fps", "decode+track @0.5")]  # fmt: skip
    lines = [f"# Tracking speed (frames/s) on {report['machine']}", "",
             "| " + " | ".join(c[1] for c in cols) + " |", "|" + "---|" * len(cols)]  # fmt: skip
    for r in report["clips"]:
        cells = []
        for key, _ in cols:
            v = r.get(key, "")
            cells.append(f"{v:.1f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="*", help="clips (default: the shared 512x512 and 1280x720 clips)")
    ap.add_argument("--json", type=Path, required=True, help="output JSON (a .md table is written next to it)")
    ap.add_argument("--frames", type=int, default=150, help="frames per clip (from the start)")
    ap.add_argument("--backend", default="mediapipe")
    args = ap.parse_args(argv)

    from facepipe.tracking.backends import get_backend

    clips = args.clips or [str(SHARED / c) for c in DEFAULT_CLIPS if (SHARED / c).exists()]
    if not clips:
        print("error: give one or more clips (the shared clips were not found)", file=sys.stderr)
        return 2
    import torch

    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        "backend": args.backend,
        "clips": [],
    }
    with get_backend(args.backend) as backend:
        for c in clips:
            row = bench_clip(c, backend, args.frames)
            report["clips"].append(row)
            print(json.dumps(row))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    args.json.with_suffix(".md").write_text(markdown(report))
    print(f"wrote {args.json} and {args.json.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
