"""What the deblur node does to tracking and fitting: landmark jitter and fit residual with it on vs off.

On the shared clips with the fastest face motion (``benchmarks/results/deblur.md``), the
analysis graph is pulled (track, fit3d) with the deblur node off (method ``none``), with the
classical baseline and with the GAN (``--weights``). Reported per clip and method:

- the frames the node restored (face moving >= ``--threshold`` px/frame, from the motion stage);
- landmark jitter (:func:`facepipe.tracking.filters.jitter`, % of the inter-ocular distance,
  the unsmoothed landmarks) over the whole clip and over the restored frames alone (the same
  frames for every method, off included: they depend on the motion stage only);
- the 3D fit's landmark residual (:class:`facepipe.face.fit.ShotFit`, mean image-plane error /
  inter-ocular distance), median over the clip and over the restored frames;
- the wall time of the analysis (track + fit, and the deblur node's work inside it).

    python benchmarks/deblur_tracking.py --weights /tmp/gan/deblur_cpu.pt --json benchmarks/results/deblur_tracking.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, resolve_clips, write_report  # noqa: E402

from facepipe.io.media import probe  # noqa: E402
from facepipe.jobs.context import open_context  # noqa: E402
from facepipe.pipeline.graph import Graph  # noqa: E402
from facepipe.stages.deblur import DEFAULT_THRESHOLD, DeblurStage  # noqa: E402
from facepipe.stages.graph import analysis_stages  # noqa: E402
from facepipe.tracking.filters import jitter  # noqa: E402

#: The clips whose face moves most over 7-frame windows (benchmarks/results/deblur.md: 16.8, 16.7, 4.8 crop px).
DEFAULT_CLIPS = ("hdtf_radio2_talk.mp4", "lp_d9_cheeks_yaw.mp4", "vr_face1_2213fps.mp4")


def only(landmarks: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """landmarks (T,N,3) with every frame not in ``frames`` (T,) bool set to NaN."""
    out = np.array(landmarks, np.float32, copy=True)
    out[~frames] = np.nan
    return out


def measure(clip: Path, deblur: DeblurStage, workdir: Path) -> dict:
    """One analysis of ``clip`` with ``deblur``: restored frames (T,) bool, jitter, residual, time."""
    info = probe(clip)
    t0 = time.perf_counter()
    with open_context(info, workdir, "cpu", "off", 32, lambda m: None) as ctx:
        graph = Graph(analysis_stages(deblur=deblur), ctx)
        tracks, fit = graph.get("track"), graph.get("fit3d")
        motion = graph.get("motion")
    seconds = time.perf_counter() - t0
    restored = (motion.speed >= deblur.threshold) & np.isfinite(motion.box).all(1)
    cuts = [int(np.searchsorted(tracks.frame_index, c)) for c in tracks.shot_cuts]
    residual = np.asarray(fit.residual, np.float64)
    return {"restored": restored, "seconds": round(seconds, 1),
            "jitter": round(jitter(tracks.landmarks_raw, tracks.scheme, cuts), 4),
            "jitter_restored": round(jitter(only(tracks.landmarks_raw, restored), tracks.scheme, cuts), 4),
            "residual": round(float(np.nanmedian(residual)), 5),
            "residual_restored": round(float(np.nanmedian(residual[restored])), 5) if restored.any() else None}


def measure_clip(clip: Path, methods: dict, workdir: Path, log) -> dict:
    rows = {}
    for name, stage in methods.items():
        row = measure(clip, stage, workdir)
        restored = row.pop("restored")
        rows[name] = {**row, "frames_restored": int(restored.sum()), "frames": int(len(restored))}
        log(f"{clip.name} {name}: {rows[name]}")
    return {"clip": clip.name, "methods": rows}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Deblur node: tracking and fit with it on vs off ({m['cpu']}, {m['cores']} cores)", "",
             f"Analysis graph (track, fit3d) pulled with the deblur node's method none (off), classical and gan "
             f"(`{report['weights']}`); frames restored where the detected face moves >= {report['threshold']} px/frame. "
             "Jitter: RMS second difference of the unsmoothed landmarks, % of the inter-ocular distance (lower is steadier); "
             "residual: the 3D fit's median landmark error / IOD. `restored` columns: over the restored frames alone "
             "(the same frames for every method). Time: the whole analysis, s.", "",
             "| clip | method | frames restored | jitter | jitter (restored) | residual | residual (restored) | time s |",
             "|---|---|---|---|---|---|---|---|"]
    for c in report["clips"]:
        for name, r in c["methods"].items():
            rr = "" if r["residual_restored"] is None else f"{r['residual_restored']:.5f}"
            lines.append(f"| {c['clip']} | {name} | {r['frames_restored']}/{r['frames']} | {r['jitter']:.3f} | "
                         f"{r['jitter_restored']:.3f} | {r['residual']:.5f} | {rr} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--weights", type=Path, required=True, help="deblur GAN checkpoint (facepipe train deblur)")
    ap.add_argument("--clips", nargs="*", default=None, help="default: " + ", ".join(DEFAULT_CLIPS))
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="px/frame from which a frame is restored")
    ap.add_argument("--workdir", type=Path, default=None, help="analysis cache (default: a temporary folder)")
    args = ap.parse_args(argv)
    started = time.time()
    clips, skipped = resolve_clips(args.clips or [], DEFAULT_CLIPS, ap.error)
    methods = {"off": DeblurStage(threshold=args.threshold),  # method none: the threshold only picks the frames measured
               "classical": DeblurStage(method="classical", threshold=args.threshold),
               "gan": DeblurStage(method="gan", weights=str(args.weights), threshold=args.threshold)}
    report = {"machine": machine(), "weights": str(args.weights), "threshold": args.threshold, "skipped": skipped,
              "clips": []}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            report["clips"].append(measure_clip(clip, methods, args.workdir or Path(tmp), print))
    write_report(report, args.json, markdown, started)


if __name__ == "__main__":
    main()
