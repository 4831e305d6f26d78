"""Edit every clip of a folder the same way, skipping clips whose output is already there, and
write a CSV of what happened (the simplest batch; render farms use frame-range chunks).

    python examples/batch_folder.py FOLDER --emotion sad --out out/ [--frames 0-39]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from _common import clip_or_demo

from facepipe import api
from facepipe.errors import FacepipeError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".mxf", ".m4v")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", type=Path, help="a folder of videos (default: the demo clip alone)")
    ap.add_argument("--emotion", default="sad")
    ap.add_argument("--frames", default=None, help="the same frame range of every clip (default: all)")
    ap.add_argument("--out", type=Path, default=Path("out"))
    args = ap.parse_args(argv)

    clips = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) if args.folder else [
        clip_or_demo(None, args.out)]
    args.out.mkdir(parents=True, exist_ok=True)
    rows, failed = [], 0
    for clip in clips:
        out = args.out / f"{clip.stem}.{args.emotion}.mp4"
        if out.exists():
            rows.append({"clip": clip.name, "status": "skipped (output exists)", "output": str(out)})
            continue
        try:
            result = api.edit(clip, emotion=args.emotion, frames=args.frames, out=out, progress="off",
                              log=lambda m: None)
        except FacepipeError as exc:  # one bad clip does not stop the batch
            failed += 1
            rows.append({"clip": clip.name, "status": f"failed: {exc}", "output": ""})
            continue
        rows.append({"clip": clip.name, "status": result.report["mode"], "output": str(result.output),
                     "frames": result.frames_written, "render_fps": result.report["timing"]["render_fps"]})
        print(f"{clip.name}: {result.report['mode']}, {result.frames_written} frames", flush=True)
    with open(args.out / "batch.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["clip", "status", "output", "frames", "render_fps"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} clips, {failed} failed; summary in {args.out / 'batch.csv'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
