"""A quick review copy: a frame range at half size, the source beside the edit, with its speed.

    python examples/preview_range.py CLIP --emotion surprised --frames 20-80 --out out/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import clip_or_demo

from facepipe import api


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", nargs="?", help="a video (default: the demo clip)")
    ap.add_argument("--emotion", default="surprised")
    ap.add_argument("--frames", default=None, help="a frame range, e.g. 20-80 (default: all)")
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--compare", choices=["side", "wipe", "none"], default="side")
    ap.add_argument("--out", type=Path, default=Path("out"))
    args = ap.parse_args(argv)

    clip = clip_or_demo(args.clip, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    result = api.preview(clip, emotion=args.emotion, frames=args.frames, scale=args.scale, compare=args.compare,
                         out=args.out / f"{clip.stem}.{args.emotion}.preview.mp4", force=True, progress="off",
                         log=lambda m: None)  # fmt: skip
    print(result.summary())


if __name__ == "__main__":
    main()
