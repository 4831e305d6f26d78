"""Glasses rims held out of the warp (render.occluders, issue 18): do the rims stay put while the brows move?

    python benchmarks/glasses_rims.py [--clips CLIP ...] [--bare CLIP ...] [--emotions happy,sad,surprised] \
        [--window-len 40] [--json benchmarks/results/glasses_rims.json]

For each glasses clip (default lp_d9_cheeks_yaw, lp_d19_grin_glasses) the window of
``edit_sheets.choose_window`` (``--window-len`` frames where the mouth opening spans the widest
range) is edited per emotion twice, losslessly: with the rims held out (the render stage as it
is) and with the warp alone (``render._rim_template`` switched off: the render stage before the
layer, without its presence test; the appearance transfer's donors still have their rims erased,
``occluders.erase_rims``). Happy is among the emotions for its transfer of the cheeks and the eyes'
corners, which carried the donors' rims in as a ghost rim before they were erased (lp_d9).
Measured per edit, on the source frames' rims (``occluders.rim_alpha`` > 0.5 under the tracked
mesh, over the eyes' zone box):

- ``rims``: mean |edit - source| over the rim pixels, 0..255 (0: the rims did not move);
- ``brows``: the same over the brows (between the tracked brows' upper and lower rows): the edit
  must still move them;
- ``zone_flicker``: the mean frame-to-frame luma change over the glasses' zone
  (``occluders.rim_zone``), edit / source (> 1: the edit adds flicker there); ``rim_flicker`` and
  ``skin_flicker`` the same over the rim pixels and over the rest of the zone;
- ``rims_held``: frames whose rims were held (the edit report's ``frames_rims_held``).

For each clip without glasses (``--bare``, default hdtf_aoc_talk, vr_face4_talk) the first
emotion is edited both ways and must come out bit for bit the same (``max_diff`` 0, no frame held).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LOSSLESS_CODEC, LOSSLESS_EXT, SHARED, machine, read_frames, write_report  # noqa: E402
from edit_sheets import choose_window  # noqa: E402

from facepipe.composite.matte import polygon_mask  # noqa: E402
from facepipe.face import topology as topo  # noqa: E402
from facepipe.render import occluders  # noqa: E402

GLASSES = ("lp_d9_cheeks_yaw.mp4", "lp_d19_grin_glasses.mp4")
BARE = ("hdtf_aoc_talk.mp4", "vr_face4_talk.mp4")


def _quiet(*_a, **_k) -> None:
    pass


def _edit(clip: Path, emotion: str, window: str, out: Path, hold: bool):
    """The edit of ``window`` written losslessly to ``out``; with ``hold`` False the rims are not held."""
    from facepipe import api
    from facepipe.stages import render

    found = render._rim_template
    if not hold:
        render._rim_template = lambda *_a: None  # the render stage before the layer: no presence test either
    try:
        return api.edit(clip, emotion=emotion, frames=window, out=out, force=True, codec=LOSSLESS_CODEC,
                        progress="off", log=_quiet)  # fmt: skip
    finally:
        render._rim_template = found


def _masks(frames: np.ndarray, landmarks: np.ndarray):
    """Per frame of frames (T,H,W,3) uint8 under its tracked mesh (T,468,2): rim pixels, brow
    pixels and the glasses' zone, each (T,H,W) bool."""
    T, H, W = frames.shape[:3]
    rims, brows, zones = (np.zeros((T, H, W), bool) for _ in range(3))
    for t in range(T):
        src = torch.from_numpy(np.asarray(landmarks[t, :468, :2], np.float32))
        frame = torch.from_numpy(frames[t]).permute(2, 0, 1).float() / 255
        x0, y0, x1, y1 = box = occluders.zone_box(src, (H, W))
        rims[t, y0:y1, x0:x1] = (occluders.rim_alpha(frame, src, box)[0] > 0.5).numpy()
        zones[t, y0:y1, x0:x1] = occluders.rim_zone(src, box).numpy()
        for upper, lower in ((topo.BROW_UPPER_R, occluders.BROW_LOWER_R), (topo.BROW_UPPER_L, occluders.BROW_LOWER_L)):
            brows[t] |= polygon_mask(src[list(upper) + list(lower)[::-1]], (H, W))[0].numpy() > 0
    return rims, brows, zones


def _luma(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)


def _scores(src: np.ndarray, edit: np.ndarray, rims, brows, zones) -> dict:
    diff = np.abs(edit.astype(np.float32) - src.astype(np.float32)).mean(-1)
    def flicker(where):  # frame-to-frame luma change over where (T,H,W), edit / source
        both = where[1:] & where[:-1]
        return round(float(np.abs(np.diff(_luma(edit), axis=0))[both].mean() / np.abs(np.diff(_luma(src), axis=0))[both].mean()), 3)

    return {"rims": round(float(diff[rims].mean()), 2), "brows": round(float(diff[brows].mean()), 2),
            "zone_flicker": flicker(zones), "rim_flicker": flicker(rims), "skin_flicker": flicker(zones & ~rims)}  # fmt: skip


def run(glasses: list[Path], bare: list[Path], emotions: list[str], window_len: int, tmp: Path, log) -> dict:
    from facepipe.analysis.regions import mouth_opening
    from facepipe.jobs.analyze import run_analysis

    results = []
    for clip in glasses + bare:
        tracks = run_analysis(clip, au=False, progress="off", log=_quiet).tracks
        n = int(tracks.frame_index.max()) + 1
        lm = np.full((n,) + tracks.landmarks.shape[1:], np.nan, np.float32)
        lm[tracks.frame_index] = tracks.landmarks
        a, b = choose_window(mouth_opening(lm), window_len)
        idx = np.arange(a, b + 1)
        src = read_frames(clip, idx)
        row = {"clip": clip.name, "window": f"{a}-{b}", "emotions": {}}
        if clip in glasses:
            masks = _masks(src, lm[idx])
            row["rim_px_per_frame"] = int(masks[0].sum() / len(idx))
        for emotion in emotions if clip in glasses else emotions[:1]:
            got = {}
            for hold in (False, True):
                out = tmp / f"{clip.stem}.{emotion}.{int(hold)}{LOSSLESS_EXT}"
                t0 = time.perf_counter()
                result = _edit(clip, emotion, f"{a}-{b}", out, hold)
                edit = read_frames(out, np.arange(result.frames_written))
                key = "held" if hold else "warp"
                got[key] = edit
                edit_s = time.perf_counter() - t0
                entry = {"edit_s": round(edit_s, 1), "s_per_frame": round(edit_s / max(1, result.frames_written), 3),
                         "rims_held": result.report.get("render", {}).get("frames_rims_held")}  # fmt: skip
                if clip in glasses:
                    entry.update(_scores(src, edit, *masks))
                row["emotions"].setdefault(emotion, {})[key] = entry
                log(f"{clip.name} {emotion} {key}: {entry}")
            if clip in bare:
                row["emotions"][emotion]["max_diff"] = int(np.abs(got["held"].astype(int) - got["warp"].astype(int)).max())
        results.append(row)
    return {"results": results}


def markdown(report: dict) -> str:
    lines = [
        "# Glasses rims held out of the warp",
        "",
        "`python benchmarks/glasses_rims.py` (see its docstring). `rims` / `brows`: mean |edit - source| "
        "(0..255) over the source's rim pixels / the brows; `zone flicker`: frame-to-frame luma change "
        "over the glasses' zone, edit / source; warp = the warp alone, held = rims held out "
        "(render.occluders); `s/frame`: the whole edit's wall time per frame; `held`: frames with rims held / frames edited.",
        "",
        "| clip | window | emotion | rims warp | rims held | brows warp | brows held (ratio) | zone flicker warp "
        "| zone flicker held | rim / skin flicker warp | rim / skin flicker held | s/frame warp / held | held |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        for emotion, e in r["emotions"].items():
            w, h = e["warp"], e["held"]
            if "rims" in w:
                lines.append(f"| {r['clip']} | {r['window']} | {emotion} | {w['rims']} | {h['rims']} | {w['brows']} | "
                             f"{h['brows']} ({h['brows'] / w['brows']:.2f}) | {w['zone_flicker']} | {h['zone_flicker']} | "
                             f"{w['rim_flicker']} / {w['skin_flicker']} | {h['rim_flicker']} / {h['skin_flicker']} | "
                             f"{w['s_per_frame']} / {h['s_per_frame']} | {h['rims_held']} |")
            else:
                lines.append(f"| {r['clip']} (no glasses) | {r['window']} | {emotion} | | | | | | | | | "
                             f"{w['s_per_frame']} / {h['s_per_frame']} | {h['rims_held']}; max diff held vs warp {e['max_diff']} |")
    lines += ["", f"Wall time {report['wall_s']} s on {report['machine'].get('cpu', '?')}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", nargs="*", type=Path, default=[SHARED / c for c in GLASSES], help="clips with glasses")
    parser.add_argument("--bare", nargs="*", type=Path, default=[SHARED / c for c in BARE], help="clips without glasses")
    parser.add_argument("--emotions", default="happy,sad,surprised")
    parser.add_argument("--window-len", type=int, default=40)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "glasses_rims.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="facepipe-rims-") as tmp:
        report = run([c for c in args.clips if c.exists()], [c for c in args.bare if c.exists()],
                     [e.strip() for e in args.emotions.split(",") if e.strip()], args.window_len, Path(tmp),
                     log=lambda s: print(s, flush=True))  # fmt: skip
    report["machine"] = machine()
    write_report(report, args.json, markdown, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
