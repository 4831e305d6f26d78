"""Tracking quality on clips without ground truth: coverage, flags, jitter before/after smoothing.

    python benchmarks/tracking_quality.py ../shared/data/clips/*.mp4 --json out/tracking_eval.json --sheets out/sheets

For each clip: frames with the target tracked, track ids, flags, shot cuts, and the jitter
measure (:func:`facepipe.tracking.filters.jitter`, % of inter-ocular distance) of the raw
landmarks, after the offline smoother and after the causal One Euro filter, with how far each
moved the mean landmark positions. ``--sheets`` writes a landmarks contact sheet per clip.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def evaluate_clip(path, strength: float = 1.0, sheets_dir=None, **stage_params) -> dict:
    from facepipe.io.media import probe
    from facepipe.tracking.filters import jitter, mean_shift, smooth_causal
    from facepipe.jobs.faces import track_clip
    from facepipe.tracking.sheets import tracks_sheet, write_png

    info = probe(path)
    t0 = time.perf_counter()
    tracks = track_clip(info, smoothing="offline", smooth_strength=strength, **stage_params)
    seconds = time.perf_counter() - t0
    raw, off = tracks.landmarks_raw, tracks.landmarks
    cuts = [int(np.searchsorted(tracks.frame_index, c)) for c in tracks.shot_cuts]
    causal = smooth_causal(raw, float(info.fps), strength, cuts=cuts)
    present = (tracks.flags & 1) == 0
    j0 = jitter(raw, tracks.scheme, cuts)
    j_off = jitter(off, tracks.scheme, cuts)
    j_causal = jitter(causal, tracks.scheme, cuts)
    row = {
        "clip": Path(path).name,
        "size": f"{info.width}x{info.height}",
        "frames": len(tracks),
        "tracked": int(present.sum()),
        "coverage": float(present.mean()) if len(present) else 0.0,
        "ids": tracks.face_ids(),
        "target": tracks.target_id,
        "shot_cuts": tracks.shot_cuts.tolist(),
        "flags": tracks.describe_flags(),
        "usable": int(tracks.usable().sum()),
        "yaw_range": [float(np.nanmin(tracks.pose[:, 0])), float(np.nanmax(tracks.pose[:, 0]))]
        if present.any()
        else None,
        "evidence_p5_median": [float(np.nanpercentile(tracks.evidence, 5)), float(np.nanmedian(tracks.evidence))]
        if present.any()
        else None,
        "jitter_raw": j0,
        "jitter_offline": j_off,
        "jitter_causal": j_causal,
        "jitter_reduction_offline": 1 - j_off / j0 if j0 else None,
        "jitter_reduction_causal": 1 - j_causal / j0 if j0 else None,
        "mean_shift_offline_pct_iod": mean_shift(raw, off, tracks.scheme),
        "mean_shift_causal_pct_iod": mean_shift(raw, causal, tracks.scheme),
        "seconds": seconds,
        "fps": len(tracks) / seconds if seconds else None,
    }
    if sheets_dir:
        sheet = tracks_sheet(info, tracks, None, n=8)
        row["sheet"] = str(write_png(Path(sheets_dir) / f"{Path(path).stem}.landmarks.png", sheet))
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="+")
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--sheets", type=Path, default=None, help="folder for one contact sheet per clip")
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args(argv)
    rows = []
    for c in args.clips:
        row = evaluate_clip(c, args.strength, args.sheets, scale=args.scale)
        rows.append(row)
        print(
            f"{row['clip']:32s} {row['tracked']:4d}/{row['frames']:<4d} ids={row['ids']} cuts={row['shot_cuts']} "
            f"jitter {row['jitter_raw']:.2f} -> {row['jitter_offline']:.2f} ({100 * (row['jitter_reduction_offline'] or 0):.0f}%) "
            f"shift {row['mean_shift_offline_pct_iod']:.3f}% | causal {row['jitter_causal']:.2f} "
            f"({100 * (row['jitter_reduction_causal'] or 0):.0f}%) shift {row['mean_shift_causal_pct_iod']:.3f}% "
            f"| {row['fps']:.0f} fps",
            flush=True,
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"strength": args.strength, "scale": args.scale, "clips": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
