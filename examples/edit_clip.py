"""Edit one clip with the Python API and read what the edit did from its report.

    python examples/edit_clip.py CLIP --emotion happy --out out/ [--frames 0-49]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import clip_or_demo

from facepipe import api


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", nargs="?", help="a video (default: the demo clip)")
    ap.add_argument("--emotion", default="happy")
    ap.add_argument("--intensity", type=float, default=1.0)
    ap.add_argument("--frames", default=None, help="a frame range, e.g. 0-49 (default: all)")
    ap.add_argument("--out", type=Path, default=Path("out"))
    args = ap.parse_args(argv)

    clip = clip_or_demo(args.clip, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    result = api.edit(clip, emotion=args.emotion, intensity=args.intensity, frames=args.frames, force=True,
                      out=args.out / f"{clip.stem}.{args.emotion}.mp4", progress="off", log=lambda m: None)
    report = result.report
    print(f"wrote {result.output}: {result.frames_written} frames, mode {report['mode']}")
    if report["mode"] == "edit":
        render = report["render"]
        print(f"  edited {render['edited']} frames, appearance transferred on {render['frames_transferred']}, "
              f"smoothed {report['smoothing']['frames']}")
        print(f"  speech AUs kept from the source: {', '.join(report['speech_aus_locked'])}")
    print(f"  analysis reused from the cache: {', '.join(result.stats['cached']) or 'nothing (first run)'}")
    print(f"  report: {result.report_path}")


if __name__ == "__main__":
    main()
