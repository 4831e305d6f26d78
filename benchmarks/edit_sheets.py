"""Contact sheets of real edits, for looking at: before|after face crops per emotion, mouth and eyes zoomed.

    python benchmarks/edit_sheets.py [--clips CLIP ...] [--emotions happy,sad,...] [--appearance 0.5] \
        [--out benchmarks/results/sheets] [--frames-per-clip 4] [--window auto|A-B] [--window-len 40]

With no ``--clips``, four shared clips (``../shared/data/clips``; missing ones are skipped):
hdtf_aoc_talk (talking), lp_d0_grin (closed mouth, then a grin), lp_d3_talk_glasses (talking,
glasses) and vr_face4_talk (700x700, talking). For each clip:

1. the source is analysed (``run_analysis(au=False)``, cached in the work directory) and a
   window of ``--window-len`` frames is chosen (``auto``: where the source's mouth opening,
   ``regions.mouth_opening``, spans the widest range, so closed and open mouths are both in it);
2. every emotion is edited over that window only (``api.edit(..., frames="A-B")``);
3. ``--frames-per-clip`` sample frames are picked by the source's mouth opening: the most
   closed, the most open and evenly spaced openings between;
4. ``CLIP.sheet.png``: one row per emotion; the first column group holds the source face crops
   of the sample frames, the second the same frames edited (crop: the tracked face box grown
   25 %, resized to ``--crop`` px);
5. ``CLIP.zoom.png``: one row per emotion, mouth and eyes of the emotion's strongest frame (the
   largest mean change inside the face) at 2x the source's pixels, source | edit (boxes of
   0.8 x 0.55 and 1.35 x 0.42 inter-ocular distances).

``sheets.json`` / ``sheets.md`` beside the sheets record the windows, sample frames and, for
every clip and emotion, temporal flicker: the mean absolute frame-to-frame luma change inside
the face (landmark hull of both frames), edit / source (``> 1.2``: the edit adds flicker or
popping), next to the same ratio for a plain re-encode (what the codec alone adds: nothing, the
edits and the re-encode are written losslessly, FFV1 in .mkv, so the ratio is 1.00), and the
worst single step (``pop``: the largest step the edit adds over the source's step at the same
frame, / the mean source step; the per-frame steps are in the JSON).

PNGs are kept under ``--max-kb`` (default 400): the colours are reduced to a 256-colour palette
and, if that is not enough, the face crops are made smaller (16 px at a time, down to 80) and
the zoom lower (2x, 1.75x, ... 1x; the column headers say which); the JSON's ``png`` records
what was written. ``--full DIR`` also writes them as asked (``--crop`` px, 2x), without a limit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from facepipe.defaults import APPEARANCE_STRENGTH as DEFAULT_APPEARANCE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LOSSLESS_CODEC, LOSSLESS_EXT, actor_name, read_frames, resolve_clips  # noqa: E402
DEFAULT_CLIPS = ("hdtf_aoc_talk.mp4", "lp_d0_grin.mp4", "lp_d3_talk_glasses.mp4", "vr_face4_talk.mp4")
DEFAULT_EMOTIONS = "happy,sad,surprised,angry,fearful,disgusted,contempt,neutral"
LABEL_W = 96
HEADER_H = 18
FLICKER_LIMIT = 1.2


def _quiet(*_a, **_k) -> None:
    pass


# ------------------------------------------------------------------------------- frames, crops


def crop(img: np.ndarray, cx: float, cy: float, w: float, h: float, size: tuple[int, int]):
    """The (w,h) px box around (cx,cy) of ``img`` (edges padded grey), resized to ``size`` (W,H)."""
    from PIL import Image

    H, W = img.shape[:2]
    x0, y0 = round(float(cx) - w / 2), round(float(cy) - h / 2)
    x1, y1 = x0 + max(1, round(float(w))), y0 + max(1, round(float(h)))
    pad = np.full((y1 - y0, x1 - x0, 3), 96, np.uint8)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if sx1 > sx0 and sy1 > sy0:
        pad[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = img[sy0:sy1, sx0:sx1]
    return Image.fromarray(pad).resize(size, Image.LANCZOS)


def luma(frames: np.ndarray) -> np.ndarray:
    return frames[..., 0] * 0.299 + frames[..., 1] * 0.587 + frames[..., 2] * 0.114


def frame_steps(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(T-1,) mean |luma(t) - luma(t-1)| inside masks[t] | masks[t-1]."""
    y = luma(frames.astype(np.float32))
    out = np.empty(len(frames) - 1)
    for t in range(1, len(frames)):
        m = masks[t] | masks[t - 1]
        out[t - 1] = np.abs(y[t] - y[t - 1])[m].mean() if m.any() else np.nan
    return out


def face_change(src: np.ndarray, edit: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(T,) mean |edit - source| (rgb, 0..255) inside each frame's face mask."""
    d = np.abs(edit.astype(np.int16) - src.astype(np.int16)).mean(-1)
    return np.array([d[t][masks[t]].mean() if masks[t].any() else 0.0 for t in range(len(src))])


# ------------------------------------------------------------------------------ choosing frames


def choose_window(opening: np.ndarray, length: int) -> tuple[int, int]:
    """[a, b] (inclusive) of ``length`` frames where the mouth opening spans the widest range."""
    n = len(opening)
    length = min(length, n)
    best, best_a = -1.0, 0
    for a in range(n - length + 1):
        w = opening[a : a + length]
        if np.isfinite(w).sum() < length // 2:
            continue
        span = float(np.nanmax(w) - np.nanmin(w))
        if span > best + 1e-9:
            best, best_a = span, a
    return best_a, best_a + length - 1


def choose_samples(opening: np.ndarray, a: int, b: int, k: int) -> list[int]:
    """``k`` source frames in [a, b]: the most closed and most open mouth, and evenly spaced
    openings between (frames at least 3 apart where possible), in time order."""
    idx = np.arange(a, b + 1)
    op = opening[a : b + 1]
    ok = np.isfinite(op)
    idx, op = idx[ok], op[ok]
    if len(idx) == 0:
        return list(np.linspace(a, b, k).round().astype(int))
    chosen = [int(idx[np.argmin(op)]), int(idx[np.argmax(op)])]
    for target in np.linspace(op.min(), op.max(), k)[1:-1]:
        order = np.argsort(np.abs(op - target))
        for gap in (3, 1):
            pick = next((int(idx[j]) for j in order if all(abs(int(idx[j]) - c) >= gap for c in chosen)), None)
            if pick is not None:
                chosen.append(pick)
                break
    return sorted(set(chosen))[:k]


# ------------------------------------------------------------------------------- drawing, saving


def _font(size: int = 13):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def grid(rows: list[tuple[str, list]], header: list[str], cell_w: list[int], row_h: int, gap_after: set[int] = frozenset()):
    """A sheet: a label column, then cells (PIL images) per row; ``header`` names the columns."""
    from PIL import Image, ImageDraw

    sep = 6
    width = LABEL_W + sum(cell_w) + sep * len(gap_after)
    sheet = Image.new("RGB", (width, HEADER_H + row_h * len(rows)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = _font()
    xs, x = [], LABEL_W
    for c, w in enumerate(cell_w):
        xs.append(x)
        x += w + (sep if c in gap_after else 0)
    for c, text in enumerate(header):
        draw.text((xs[c] + 3, 2), text, fill=(230, 230, 230), font=font)
    for r, (label, cells) in enumerate(rows):
        y = HEADER_H + r * row_h
        for i, line in enumerate(label.split("\n")):
            draw.text((4, y + 4 + 15 * i), line, fill=(255, 255, 255), font=font)
        for c, img in enumerate(cells):
            sheet.paste(img, (xs[c], y))
    return sheet


def save_small(build, sizes: list, path: Path, max_bytes: int) -> dict:
    """Write the sheet ``build(size)`` as PNG under ``max_bytes``: the first of ``sizes`` (largest
    first) that fits in full colour or as a 256-colour palette; failing all, the last one's
    palette image downscaled step by step. Returns how it was stored."""
    import io

    from PIL import Image

    def encode(im):
        buf = io.BytesIO()
        im.save(buf, "PNG", optimize=True)
        return buf.getvalue()

    for size in sizes:
        img = build(size)
        for mode in ("rgb", "palette"):
            im = img if mode == "rgb" else img.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                                        dither=Image.Dither.NONE)
            data = encode(im)
            if len(data) <= max_bytes:
                path.write_bytes(data)
                return {"file": path.name, "bytes": len(data), "stored": mode, "cell": size, "downscale": 1.0,
                        "size": [im.width, im.height]}
    scale = 1.0
    while True:
        scale *= 0.9
        im = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
        im = im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        data = encode(im)
        if len(data) <= max_bytes or scale < 0.3:
            path.write_bytes(data)
            return {"file": path.name, "bytes": len(data), "stored": "palette", "cell": size,
                    "downscale": round(scale, 3), "size": [im.width, im.height]}


# ------------------------------------------------------------------------------------ one clip


def sheet_clip(clip: Path, emotions: list[str], appearance: float, k: int, window: str, window_len: int,
               crop_px: int, out_dir: Path, tmp: Path, max_bytes: int, log, full_dir: Path | None = None,
               renderer: str = "geometric") -> dict:  # fmt: skip
    from facepipe import api
    from facepipe.jobs.analyze import run_analysis
    from facepipe.analysis.regions import hull_mask, mouth_opening
    from facepipe.tracking.schemes import MESH_LEFT_EYE, MESH_LIPS_OUTER, MESH_RIGHT_EYE, inter_ocular
    from facepipe.face.extent import square_around

    t0 = time.perf_counter()
    analysis = run_analysis(clip, au=False, progress="off", log=_quiet)
    tracks, info = analysis.tracks, analysis.info
    if not tracks.has_face:
        return {"clip": clip.name, "skipped": "no face found"}
    n = info.frame_count
    lm = np.full((n,) + tracks.landmarks.shape[1:], np.nan, np.float32)
    box = np.full((n, 4), np.nan, np.float32)
    lm[tracks.frame_index] = tracks.landmarks
    box[tracks.frame_index] = tracks.box
    opening = mouth_opening(lm)
    if window == "auto":
        a, b = choose_window(opening, window_len)
    else:
        a, b = (int(v) for v in window.split("-"))
        b = min(b, n - 1)
    window_idx = np.arange(a, b + 1)
    samples = choose_samples(opening, a, b, k)
    log(f"{clip.name}: window {a}-{b}, mouth opening {np.nanmin(opening[a:b + 1]):.3f}..{np.nanmax(opening[a:b + 1]):.3f} "
        f"IOD; sample frames {samples} (opening {', '.join(f'{opening[s]:.2f}' for s in samples)})")

    src = read_frames(clip, window_idx)
    H, W = src.shape[1:3]
    masks = np.stack([hull_mask(lm[i], H, W) for i in window_idx])
    iod = float(np.nanmedian(inter_ocular(np.asarray(lm[window_idx], np.float64))))
    is_mesh = lm.shape[1] >= 468

    def face_crop(img, i, px):
        cx, cy, side = square_around(box[i])
        return crop(img, cx, cy, side, side, (px, px))

    # zoom boxes (native px) from the clip's inter-ocular distance
    mouth_wh = (0.8 * iod, 0.55 * iod)
    eyes_wh = (1.35 * iod, 0.42 * iod)

    def zoom_boxes(i):
        p = lm[i, :, :2]
        lips = p[list(MESH_LIPS_OUTER)] if is_mesh else p[48:60]
        eyes = p[list(MESH_RIGHT_EYE) + list(MESH_LEFT_EYE)] if is_mesh else p[36:48]
        return np.nanmean(lips, 0), np.nanmean(eyes, 0)

    def zoom_crops(img, centres, zoom):
        (mx, my), (ex, ey) = centres
        m = crop(img, mx, my, *mouth_wh, (round(zoom * mouth_wh[0]), round(zoom * mouth_wh[1])))
        e = crop(img, ex, ey, *eyes_wh, (round(zoom * eyes_wh[0]), round(zoom * eyes_wh[1])))
        return m, e

    # a plain re-encode of the window: what the codec alone does to frame-to-frame change (nothing:
    # the clips scored here are lossless, see LOSSLESS_CODEC; kept as the check that it is 1.00)
    reenc_path = tmp / f"{clip.stem}.reencode{LOSSLESS_EXT}"
    api.edit(clip, emotion="neutral", intensity=0.0, frames=f"{a}-{b}", out=reenc_path, force=True,
             codec=LOSSLESS_CODEC, progress="off", log=_quiet)
    steps_src = frame_steps(src, masks)
    steps_reenc = frame_steps(read_frames(reenc_path, np.arange(len(window_idx))), masks)

    pos = {int(i): j for j, i in enumerate(window_idx)}
    mean_src = float(np.nanmean(steps_src))
    sheet_cells, zoom_cells, per_emotion = [], [], {}
    for emotion in emotions:
        out = tmp / f"{clip.stem}.{emotion}{LOSSLESS_EXT}"
        t1 = time.perf_counter()
        result = api.edit(clip, emotion=emotion, appearance=appearance, frames=f"{a}-{b}", out=out, force=True,
                          codec=LOSSLESS_CODEC, progress="off", log=_quiet, renderer=renderer,
                          actor=actor_name(clip) if renderer == "neural" else "")  # fmt: skip
        edit_s = time.perf_counter() - t1
        edited = read_frames(out, np.arange(result.frames_written))
        if edited.shape != src.shape:
            raise SystemExit(f"{clip.name} {emotion}: edit has {edited.shape}, source window {src.shape}")
        steps = frame_steps(edited, masks)
        change = face_change(src, edited, masks)
        strongest = int(window_idx[int(np.argmax(change))])
        extra = steps - steps_src
        worst = int(np.nanargmax(extra))
        per_emotion[emotion] = {
            "edit_s": round(edit_s, 2),
            "render_fps": result.report.get("timing", {}).get("render_fps"),
            "face_change_mean": round(float(change.mean()), 2),
            "face_change_sample": {str(s): round(float(change[pos[s]]), 2) for s in samples},
            "strongest_frame": strongest,
            "flicker_source": round(mean_src, 3),
            "flicker_edit": round(float(np.nanmean(steps)), 3),
            "flicker_ratio": round(float(np.nanmean(steps)) / mean_src, 3),
            # the largest step the edit adds over the source's step at the same frame / the mean source step
            "pop": round(float(extra[worst]) / mean_src, 3),
            "pop_frame": int(window_idx[worst + 1]),
            "steps": [round(float(x), 2) for x in steps],
        }
        e = per_emotion[emotion]
        log(f"  {emotion}: {edit_s:.1f} s, face change {e['face_change_mean']:.1f}/255, strongest frame {strongest}, "
            f"flicker {e['flicker_ratio']:.2f}x (re-encode {np.nanmean(steps_reenc) / mean_src:.2f}x), "
            f"pop {e['pop']:+.2f} at frame {e['pop_frame']}")
        sheet_cells.append((emotion, [src[pos[s]] for s in samples], [edited[pos[s]] for s in samples]))
        zoom_cells.append((f"{emotion}\nframe {strongest}", strongest, src[pos[strongest]], edited[pos[strongest]]))
        del edited

    def build_sheet(px):
        rows = [(name, [face_crop(f, s, px) for f, s in zip(before, samples)]
                 + [face_crop(f, s, px) for f, s in zip(after, samples)]) for name, before, after in sheet_cells]
        header = [f"src {s}" for s in samples] + [f"edit {s}" for s in samples]
        return grid(rows, header, [px] * (2 * len(samples)), px, gap_after={len(samples) - 1})

    def build_zoom(zoom):
        rows = []
        for name, i, before, after in zoom_cells:
            centres = zoom_boxes(i)
            (ms, es_), (me, ee) = zoom_crops(before, centres, zoom), zoom_crops(after, centres, zoom)
            rows.append((name, [ms, me, es_, ee]))
        mw, mh = round(zoom * mouth_wh[0]), round(zoom * mouth_wh[1])
        ew, eh = round(zoom * eyes_wh[0]), round(zoom * eyes_wh[1])
        z = f"{zoom:g}x"
        return grid(rows, [f"mouth src {z}", f"mouth edit {z}", f"eyes src {z}", f"eyes edit {z}"],
                    [mw, mw, ew, ew], max(mh, eh), gap_after={1})

    crop_sizes = sorted({crop_px} | set(range(crop_px - 8, 79, -8)), reverse=True)
    if full_dir is not None:  # the sheets as asked, no size limit
        build_sheet(crop_px).save(full_dir / f"{clip.stem}.sheet.png")
        build_zoom(2.0).save(full_dir / f"{clip.stem}.zoom.png")
    stored = {
        "sheet": save_small(build_sheet, crop_sizes, out_dir / f"{clip.stem}.sheet.png", max_bytes),
        "zoom": save_small(build_zoom, [2.0, 1.75, 1.5, 1.25, 1.0], out_dir / f"{clip.stem}.zoom.png", max_bytes),
    }
    return {
        "clip": clip.name,
        "size": f"{info.width}x{info.height}",
        "frames": n,
        "window": [a, b],
        "window_opening_iod": [round(float(np.nanmin(opening[a:b + 1])), 3), round(float(np.nanmax(opening[a:b + 1])), 3)],
        "samples": samples,
        "sample_opening_iod": [round(float(opening[s]), 3) for s in samples],
        "iod_px": round(iod, 1),
        "zoom": stored["zoom"]["cell"] * stored["zoom"]["downscale"],
        "crop_px": round(stored["sheet"]["cell"] * stored["sheet"]["downscale"]),
        "flicker_source_steps": [round(float(x), 2) for x in steps_src],
        "flicker_reencode_steps": [round(float(x), 2) for x in steps_reenc],
        "flicker_reencode_ratio": round(float(np.nanmean(steps_reenc)) / float(np.nanmean(steps_src)), 3),
        "emotions": per_emotion,
        "png": stored,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def markdown(report: dict) -> str:
    lines = [
        "# Edit contact sheets",
        "",
        f"`--appearance {report['appearance']:g}`; per clip `CLIP.sheet.png` (rows: emotions; source crops | edited "
        "crops of the sample frames) and `CLIP.zoom.png` (mouth and eyes of each emotion's strongest frame at 2x the source "
        "pixels, less where the sheet would not fit the size limit: see `png` in the JSON).",
        "",
        f"Flicker = mean absolute frame-to-frame luma change inside the face, edit / source (> {FLICKER_LIMIT:g}: the "
        "edit adds flicker); `re-encode` is the same for a plain re-encode (the codec alone: 1.00, the edits and the "
        "re-encode are lossless FFV1); `pop` = the largest "
        "step the edit adds over the source's step at the same frame, / the mean source step (at `@frame`; 0 = none, "
        "1 = one extra average frame step); `change` = mean |edit - source| inside the face, 0..255.",
        "",
        "| clip | window | samples (mouth opening, IOD) | re-encode | " + " | ".join(report["emotion_list"]) + " |",
        "|---|---|---|---|" + "---|" * len(report["emotion_list"]),
    ]
    for r in report["results"]:
        if "skipped" in r:
            lines.append(f"| {r['clip']} | skipped: {r['skipped']} |")
            continue
        cells = []
        for e in report["emotion_list"]:
            x = r["emotions"][e]
            flag = " (!)" if x["flicker_ratio"] > FLICKER_LIMIT else ""
            cells.append(f"flicker {x['flicker_ratio']:.2f}x{flag}, pop {x['pop']:+.2f} @{x['pop_frame']}, "
                         f"change {x['face_change_mean']:.1f}")
        samples = ", ".join(f"{s} ({o:.2f})" for s, o in zip(r["samples"], r["sample_opening_iod"]))
        lines.append(f"| {r['clip']} | {r['window'][0]}-{r['window'][1]} | {samples} | "
                     f"{r['flicker_reencode_ratio']:.2f}x | " + " | ".join(cells) + " |")
    for s in report.get("skipped", []):
        lines.append(f"\nSkipped {s}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", nargs="*", help="clips (default: four shared talking/grinning clips)")
    parser.add_argument("--emotions", default=DEFAULT_EMOTIONS, help=f"comma-separated (default: {DEFAULT_EMOTIONS})")
    parser.add_argument("--appearance", type=float, default=DEFAULT_APPEARANCE,
                        help=f"appearance transfer 0..1 (default: the edit's, {DEFAULT_APPEARANCE:g})")
    parser.add_argument("--renderer", choices=("geometric", "neural"), default="geometric",
                        help="neural: each clip's renderer, trained before (as edit_quality.py's neural path does: "
                             "actor = the clip's name)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sheets")
    parser.add_argument("--frames-per-clip", type=int, default=4)
    parser.add_argument("--window", default="auto", help="A-B source frames to edit, or auto (default)")
    parser.add_argument("--window-len", type=int, default=40, help="frames in the auto window (default 40)")
    parser.add_argument("--crop", type=int, default=160, help="face crop size in px (default 160)")
    parser.add_argument("--max-kb", type=int, default=400, help="largest PNG to write, KB (default 400)")
    parser.add_argument("--full", type=Path, help="also write the sheets at full size (--crop px, 2x zoom, no "
                        "size limit) into this folder")
    args = parser.parse_args(argv)

    from facepipe.plan.emotions import EMOTIONS

    emotions = [e.strip() for e in args.emotions.split(",") if e.strip()]
    bad = [e for e in emotions if e not in EMOTIONS]
    if bad:
        parser.error(f"unknown emotion(s) {', '.join(bad)}: use {', '.join(EMOTIONS)}")
    clips, skipped = resolve_clips(args.clips, DEFAULT_CLIPS, parser.error)
    if not clips:
        print("no clips to edit", file=sys.stderr)
        return 1

    args.out.mkdir(parents=True, exist_ok=True)
    if args.full:
        args.full.mkdir(parents=True, exist_ok=True)
    report = {"appearance": args.appearance, "emotion_list": emotions, "results": [], "skipped": skipped}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="facepipe-sheets-") as tmp:
        for clip in clips:
            report["results"].append(sheet_clip(clip, emotions, args.appearance, args.frames_per_clip, args.window,
                                                args.window_len, args.crop, args.out, Path(tmp), args.max_kb * 1000,
                                                log=lambda s: print(s, flush=True), full_dir=args.full,
                                                renderer=args.renderer))
    report["wall_s"] = round(time.time() - started, 1)
    (args.out / "sheets.json").write_text(json.dumps(report, indent=1))
    (args.out / "sheets.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
