"""Emotions that change over a shot: happy, then sad, eased in and out, from a keyframe file.

    python examples/keyframed_edit.py CLIP --out out/

The keyframe file is JSON (or YAML); times are seconds ("1.5s"), frames (36) or timecode.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import clip_or_demo

from facepipe import api


def keyframes(duration: float) -> dict:
    """Happy over the first 40% of the shot, sad from 60% to the end, 0.2 s ramps."""
    return {
        "ramp": "0.2s",
        "keyframes": [
            {"emotion": "happy", "start": "0s", "end": f"{0.4 * duration:.3f}s"},
            {"emotion": "sad", "start": f"{0.6 * duration:.3f}s", "intensity": 0.8},
        ],
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", nargs="?", help="a video (default: the demo clip)")
    ap.add_argument("--out", type=Path, default=Path("out"))
    args = ap.parse_args(argv)

    clip = clip_or_demo(args.clip, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    info = api.probe(clip)
    plan_file = args.out / f"{clip.stem}.keyframes.json"
    plan_file.write_text(json.dumps(keyframes(float(info.duration)), indent=1))
    result = api.edit(clip, keyframes=plan_file, out=args.out / f"{clip.stem}.happy-sad.mp4", force=True,
                      progress="off", log=lambda m: None)
    for segment in result.report.get("segments", []):
        print(f"{segment['emotion']:>6}: frames {segment['start']}-{segment['end'] - 1} at {segment['intensity']:g}")
    weight = result.report.get("weight", [])
    if weight:
        print("edit weight over the shot: " + " ".join(f"{w:.1f}" for w in weight[:: max(1, len(weight) // 12)]))
    print(f"wrote {result.output}")


if __name__ == "__main__":
    main()
