"""How strong real expressions are, next to what the edit plans at intensity 1 and what it reads back.

    python benchmarks/expression_amplitudes.py --json benchmarks/results/expression_amplitudes.json \
        [--edit-clips A.mp4 B.mp4] [--emotions happy,sad,surprised] [--max-frames 40] [--intensities 1] \
        [--workdir DIR]

Four measurements, all with the project's own tracker and fit (``facepipe analyze``'s stages):

1. **Real peaks.** On the shared clips that show real smiles, frowns, brow raises and surprise
   (:data:`REAL`: clip, the expression's frames read off the AU curves, neutral frames of the
   same clip), each AU of the emotion's prototype is read at its 90th percentile over the
   expression's frames. The real peak of an AU is the largest of those over its clips (the
   clip is named). Two amplitudes in inter-ocular distances (IOD) go with it: ``fit`` = the
   intensity x the rig's mean displacement per unit intensity over the AU's peak vertices (where
   its displacement is above half its maximum), and ``landmarks`` = the tracked landmarks
   themselves (similarity-aligned onto the model template), mean of the expression frames minus
   the neutral frames, projected on the AU's own direction and averaged over the same vertices:
   what FaceMesh sees move, whatever the fit makes of it.
2. **Plan.** The emotion's target at intensity 1 on a neutral face (:mod:`facepipe.plan.emotions`),
   and the displacement it puts on the edited mesh (target x the AU's edit gain,
   :data:`facepipe.render.geometry.EDIT_GAIN`, x the rig's displacement per unit), in IOD.
3. **Read-back.** Each ``--edit-clips`` clip (default :data:`EDIT_CLIPS`: talking clips of four
   actors) is trimmed to its first ``--max-frames`` frames, edited towards the emotion at each
   ``--intensities`` (the full path: warp + appearance at the default strength, losslessly), and
   the edited clip is tracked and refitted with the source fit's identity, as the evaluation
   harness does. Per AU: the read-back intensity (median over frames, then over clips), the
   harness's AU fidelity (measured change / planned change, least squares over frames), the
   edited landmarks' displacement along the planned one (IOD), and the warp's fold-free
   limiter (``min_edit_scale``: 1 = the edit was drawn in full).
4. **Eye opening** (:func:`lid_gap`): how far the lids part, tracked, in IOD: the real brow raises
   and surprises (expression - neutral frames) beside the surprised edits (edited - source). The fit
   reads no AU5 at all, so this is where the lids are compared.

Speech AUs (:data:`facepipe.face.facs.SPEECH_AUS`) keep the source's values in every edit and
are listed as locked. ``read-back / real`` is the bar of issue 18 (>= 0.8 for every unlocked AU
of happy, sad and surprised). ``suggested gain`` is the edit gain that would bring the
median fidelity of the AU to 1 (current gain / fidelity): how :data:`EDIT_GAIN` was calibrated.

Writes JSON and a markdown table beside it (:func:`common.write_report`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LOSSLESS_CODEC, LOSSLESS_EXT, SHARED, machine, write_report  # noqa: E402

#: Real expressions in the shared clips: (clip, what it shows, expression frames [a, b],
#: neutral frames [c, d], FACS numbers read there). Frames read off the fit's AU curves (the
#: spans where the AU stays above 0.5) and the clips' contact sheets.
REAL = (
    ("lp_d0_grin", "grin", (22, 64), (0, 12), (6, 12)),
    ("lp_d19_grin_glasses", "grin", (81, 99), (30, 42), (6, 12)),
    ("lp_s29_portrait_laugh", "laugh", (141, 158), (60, 80), (6, 12)),
    ("lp_d8_frown_smile", "frown", (106, 126), (0, 27), (4,)),
    ("lp_d8_frown_smile", "lip corners down", (252, 260), (0, 27), (15,)),
    ("lp_d18_yawn", "frown, corners down", (123, 152), (0, 10), (15,)),
    ("lp_d7_blink_brow", "frown", (100, 122), (10, 20), (4,)),
    ("lp_d7_blink_brow", "brow raise", (128, 151), (10, 20), (1, 2, 5)),
    ("lp_d9_cheeks_yaw", "brow raise", (449, 487), (0, 60), (1, 2, 5)),
    ("lp_d10_surprise_talk", "surprise", (52, 78), (150, 250), (1, 2, 5, 15)),
)
#: Clips the edits are read back on: talking heads of four actors (two of them held out of the rig).
EDIT_CLIPS = ("hdtf_aoc_talk.mp4", "vr_face4_talk.mp4", "lp_d3_talk_glasses.mp4", "hdtf_edmarkey_talk.mp4")
EMOTIONS = "happy,sad,surprised"
PEAK_QUANTILE = 90


def quiet(*_a, **_k) -> None:
    pass


# ----------------------------------------------------------------------------- rig geometry


def peak_vertices(model, col: int) -> np.ndarray:
    """Vertices where rig AU ``col`` moves more than half its largest displacement."""
    d = np.linalg.norm(model.au_deltas[col], axis=-1)
    return np.flatnonzero(d > 0.5 * d.max())


def unit_iod(model, col: int) -> float:
    """Mean displacement (IOD) of AU ``col``'s peak vertices at intensity 1."""
    d = np.linalg.norm(model.au_deltas[col], axis=-1)
    return float(d[peak_vertices(model, col)].mean())


def along(motion: np.ndarray, direction: np.ndarray) -> float:
    """Mean over vertices of motion (V,D) projected on the unit vectors of direction (V,D)."""
    n = np.linalg.norm(direction, axis=-1, keepdims=True)
    return float(np.nanmean((motion * direction / np.maximum(n, 1e-12)).sum(-1)))


def lid_gap(shapes: np.ndarray) -> np.ndarray:
    """(...,) height of the eye opening (IOD): shapes (...,V,3) aligned onto the template, the middle
    three vertices of each upper lid minus those of the lower lid, both eyes averaged. The rig's
    AU5 moves only the upper lid; a real surprise drops the lower one too, so the gap is how both
    are compared."""
    from facepipe.face import topology as tp

    mid = slice(2, 5)
    gaps = [shapes[..., list(up)[mid], 1].mean(-1) - shapes[..., list(lo)[mid], 1].mean(-1)
            for up, lo in ((tp.UPPER_LID_R, tp.LOWER_LID_R), (tp.UPPER_LID_L, tp.LOWER_LID_L))]  # fmt: skip
    return 0.5 * (gaps[0] + gaps[1])


def columns(model, number: int) -> list[int]:
    from facepipe.face.facs import columns_of

    return sorted(columns_of([number], model.au_names))


# ----------------------------------------------------------------------------- real peaks


def real_peaks(model, workdir) -> list[dict]:
    """One row per (clip, expression, AU): p90 intensity over the expression frames and its
    amplitudes in IOD (fit-based and landmark-based)."""
    from facepipe.face.build_rig import aligned_shapes
    from facepipe.jobs.analyze import run_analysis

    rows = []
    for clip, what, (a, b), (c, d), numbers in REAL:
        path = SHARED / f"{clip}.mp4"
        if not path.exists():
            print(f"skipping {clip}: not found under {SHARED}", file=sys.stderr)
            continue
        res = run_analysis(path, au=True, workdir=workdir, progress="off", log=quiet)
        fit = res.fit
        ex = np.arange(a, b + 1)
        ne = np.arange(c, d + 1)
        shapes = aligned_shapes(model, res.tracks.landmarks)
        motion = np.nanmean(shapes[ex], 0) - np.nanmean(shapes[ne], 0)  # (V,3) model units (IOD)
        opening = round(float(np.nanmean(lid_gap(shapes[ex])) - np.nanmean(lid_gap(shapes[ne]))), 4)
        for num in numbers:
            for col in columns(model, num):
                name = model.au_names[col]
                au = np.asarray(fit.au)[:, col]
                peak = float(np.percentile(au[ex], PEAK_QUANTILE))
                verts = peak_vertices(model, col)
                rows.append({
                    "clip": clip, "shows": what, "frames": [a, b], "neutral": [c, d], "au": name, "facs": num,
                    "peak": round(peak, 3), "neutral_level": round(float(np.median(au[ne])), 3),
                    "fit_iod": round(peak * unit_iod(model, col), 4),
                    "landmarks_iod": round(along(motion[verts], model.au_deltas[col][verts]), 4),
                    "eye_opening_iod": opening,
                })  # fmt: skip
    return rows


# ----------------------------------------------------------------------------- edits


def read_back(model, clip: Path, emotion: str, intensity: float, folder: Path, workdir) -> dict:
    """Edit ``clip`` (already trimmed) towards ``emotion`` and read the AUs back from a refit."""
    from facepipe import api
    from facepipe.evaluation.harness import load_plan
    from facepipe.evaluation.measures import au_fidelity
    from facepipe.face.build_rig import aligned_shapes
    from facepipe.face.shot import fit_tracks
    from facepipe.jobs.analyze import run_analysis

    src = run_analysis(clip, au=True, workdir=workdir, progress="off", log=quiet)
    out = folder / f"{clip.stem}.{emotion}.i{intensity:g}{LOSSLESS_EXT}"
    t0 = time.perf_counter()
    result = api.edit(clip, emotion=emotion, intensity=intensity, out=out, force=True, codec=LOSSLESS_CODEC,
                      workdir=workdir, progress="off", log=quiet)  # fmt: skip
    edit_s = time.perf_counter() - t0
    edited = run_analysis(out, au=False, workdir=workdir, progress="off", log=quiet)
    refit = fit_tracks(edited.tracks, identity=src.fit.identity)
    names = list(src.fit.au_names)
    plan_names, target = load_plan(result.report_path, len(src.tracks))
    target = target[:, [plan_names.index(n) for n in names]]
    valid = np.asarray(src.fit.valid, bool) & np.asarray(refit.valid, bool)
    fid = au_fidelity(src.fit.au, refit.au, target, names, valid)
    # what the tracker sees move, as for the real expressions: aligned onto the template (IOD units)
    moved = aligned_shapes(model, edited.tracks.landmarks) - aligned_shapes(model, src.tracks.landmarks)  # (T,V,3)
    render = result.report.get("render") or {}
    aus = {}
    for col, name in enumerate(names):
        p = target[valid, col] - src.fit.au[valid, col]
        if not len(p) or np.abs(p).max() < 0.05:
            continue
        verts = peak_vertices(model, col)
        seen = np.array([along(moved[t, verts], model.au_deltas[col][verts]) for t in np.flatnonzero(valid)])
        aus[name] = {
            "source": round(float(np.median(src.fit.au[valid, col])), 3),
            "target": round(float(np.median(target[valid, col])), 3),
            "read_back": round(float(np.median(refit.au[valid, col])), 3),
            "fidelity": (fid["per_au"].get(name) or {}).get("ratio"),
            "landmarks_iod": round(float(np.nanmedian(seen)), 4),
        }
    return {"clip": clip.name, "emotion": emotion, "intensity": intensity, "edit_s": round(edit_s, 1),
            "overall_fidelity": fid["overall"], "min_edit_scale": render.get("min_edit_scale"),
            "frames_scaled_down": render.get("frames_scaled_down"), "frames_repaired": render.get("frames_repaired"),
            "frames": int(valid.sum()), "au": aus,
            "eye_opening_iod": round(float(np.nanmedian(lid_gap(moved[valid]))), 4)}  # fmt: skip


# ----------------------------------------------------------------------------- the table


def summarise(model, real: list[dict], edits: list[dict], emotions: list[str]) -> list[dict]:
    """One row per emotion and rig AU of its prototype (intensity 1 edits)."""
    from facepipe.face.facs import SPEECH_AUS
    from facepipe.plan import emotions as em
    from facepipe.render.geometry import edit_gains

    gains = edit_gains(model.au_names)
    rows = []
    for emotion in emotions:
        proto = em.expand_to_rig(em.prototype(emotion), model.au_names)
        for col in sorted(proto):
            name = model.au_names[col]
            num = int("".join(ch for ch in name if ch.isdigit()))
            reals = [r for r in real if r["au"] == name]
            best = max(reals, key=lambda r: r["peak"], default=None)
            mine = [e["au"][name] for e in edits if e["emotion"] == emotion and e["intensity"] == 1.0 and name in e["au"]]
            med = lambda key: float(np.median([m[key] for m in mine if m[key] is not None])) if mine else None  # noqa: E731
            row = {
                "emotion": emotion, "au": name, "locked": num in SPEECH_AUS,
                "real_peak": best["peak"] if best else None, "real_clip": best["clip"] if best else None,
                "real_fit_iod": best["fit_iod"] if best else None,
                "real_landmarks_iod": max((r["landmarks_iod"] for r in reals), default=None),
                "real_all": {f"{r['clip']} {r['frames'][0]}-{r['frames'][1]}": r["peak"] for r in reals},
                "planned": round(float(proto[col]), 3), "gain": round(float(gains[col]), 3),
                "planned_iod": round(float(proto[col] * gains[col] * unit_iod(model, col)), 4),
                "read_back": med("read_back"), "fidelity": med("fidelity"), "edit_landmarks_iod": med("landmarks_iod"),
                "clips": len(mine),
            }  # fmt: skip
            rb, rp = row["read_back"], row["real_peak"]
            row["read_back_over_real"] = round(rb / rp, 3) if rb is not None and rp else None
            el, rl = row["edit_landmarks_iod"], row["real_landmarks_iod"]
            row["landmarks_over_real"] = round(el / rl, 3) if el is not None and rl and rl > 0 else None
            f = row["fidelity"]
            # only where the fit reads the AU at all (AU5 and AU4 under AU1 it does not: see AUS.md)
            row["suggested_gain"] = round(row["gain"] / f, 3) if f and f > 0.3 else None
            rows.append(row)
    return rows


def markdown(report: dict) -> str:
    f = lambda v, s=".2f": "n/a" if v is None else format(v, s)  # noqa: E731
    m = report["machine"]
    lines = [
        f"# Expression amplitudes: real peaks, the plan at intensity 1 and the edit's read-back ({m['cores']} CPUs)", "",
        f"Real peaks: {PEAK_QUANTILE}th percentile of the fit's AU over the expression's frames (the strongest clip); "
        f"edits: first {report['max_frames']} frames of {', '.join(report['edit_clips'])}, full path, refitted with "
        "the source's identity; medians over clips. IOD columns: fit = intensity x the rig's displacement per unit "
        "(planned: x the edit gain), landmarks = the tracked landmarks' displacement along the AU's own direction.", "",
        "| emotion | AU | real peak (clip) | planned @1 | gain | read-back | read-back / real | fidelity "
        "| real IOD fit / landmarks | planned IOD | edit landmarks IOD | edit / real landmarks | suggested gain |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in report["table"]:
        if r["locked"]:
            lines.append(f"| {r['emotion']} | {r['au']} | locked (speech) | {f(r['planned'])} | | | | | | | | | |")
            continue
        lines.append(
            f"| {r['emotion']} | {r['au']} | {f(r['real_peak'])} ({r['real_clip']}) | {f(r['planned'])} | {f(r['gain'])} "
            f"| {f(r['read_back'])} | {f(r['read_back_over_real'])} | {f(r['fidelity'])} "
            f"| {f(r['real_fit_iod'], '.3f')} / {f(r['real_landmarks_iod'], '.3f')} | {f(r['planned_iod'], '.3f')} "
            f"| {f(r['edit_landmarks_iod'], '.3f')} | {f(r['landmarks_over_real'])} | {f(r['suggested_gain'])} |"
        )
    lines += eye_opening_rows(report, f)
    lines += ["", "## Real expressions", "", "| clip | shows | frames | AU | p90 | neutral | fit IOD | landmarks IOD |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in report["real"]:
        lines.append(f"| {r['clip']} | {r['shows']} | {r['frames'][0]}-{r['frames'][1]} | {r['au']} | {f(r['peak'])} "
                     f"| {f(r['neutral_level'])} | {f(r['fit_iod'], '.3f')} | {f(r['landmarks_iod'], '.3f')} |")  # fmt: skip
    return "\n".join(lines + edit_rows(report["edits"], f))


def eye_opening_rows(report: dict, f) -> list[str]:
    """How far the eye opens (:func:`lid_gap`, tracked, IOD): the real brow raises and surprises
    (expression - neutral frames) next to the surprised edits at intensity 1 (edited - source)."""
    real = [r for r in report["real"] if r["au"] == "AU5"]  # one row per real brow raise / surprise
    edits = [e for e in report["edits"] if e["emotion"] == "surprised" and e["intensity"] == 1.0]
    if not real and not edits:
        return []
    out = ["", "## Eye opening (upper minus lower lid, tracked, IOD)", "", "| what | clip | frames | opening |",
           "|---|---|---|---|"]  # fmt: skip
    out += [f"| real {r['shows']} | {r['clip']} | {r['frames'][0]}-{r['frames'][1]} | {f(r['eye_opening_iod'], '.4f')} |"
            for r in real]  # fmt: skip
    out += [f"| surprised edit @1 | {e['clip']} | first {report['max_frames']} | {f(e['eye_opening_iod'], '.4f')} |"
            for e in edits]  # fmt: skip
    r_med = float(np.median([r["eye_opening_iod"] for r in real])) if real else 0.0
    if edits and r_med > 0:
        e_med = float(np.median([e["eye_opening_iod"] for e in edits]))
        out += ["", f"Median: real {r_med:.4f}, edit {e_med:.4f} IOD (edit / real {e_med / r_med:.2f})."]
    return out


def edit_rows(edits: list[dict], f) -> list[str]:
    """The per-edit section of the markdown (``f`` formats a number or None)."""
    out = ["", "## Edits", "", "| clip | emotion | intensity | AU fidelity | min edit scale | frames scaled down "
           "| repaired | per AU: target -> read-back (fidelity; edit landmarks IOD) |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for e in edits:
        per = "; ".join(f"{k} {f(v['target'])}->{f(v['read_back'])} ({f(v['fidelity'])}; {f(v['landmarks_iod'], '.3f')})"
                        for k, v in e["au"].items())  # fmt: skip
        out.append(f"| {e['clip']} | {e['emotion']} | {e['intensity']:g} | {f(e['overall_fidelity'])} "
                   f"| {f(e['min_edit_scale'])} | {e['frames_scaled_down']} | {e['frames_repaired']} | {per} |")  # fmt: skip
    return out + [""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Real expression amplitudes next to the edit's plan and read-back.")
    ap.add_argument("--edit-clips", nargs="*", type=Path, default=None, help="default: EDIT_CLIPS from the shared clips")
    ap.add_argument("--emotions", default=EMOTIONS)
    ap.add_argument("--intensities", default="1", help="comma-separated edit intensities (the table uses 1)")
    ap.add_argument("--max-frames", type=int, default=40)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep-clips", type=Path, default=None, help="folder for the trimmed sources and edits")
    args = ap.parse_args(argv)

    import tempfile

    from facepipe.face.model import load_model
    from facepipe.render.geometry import EDIT_GAIN
    from facepipe.plan import emotions as em
    from quality import trimmed_source

    started = time.time()
    model = load_model()
    emotions = [e.strip() for e in args.emotions.split(",") if e.strip()]
    intensities = [float(x) for x in args.intensities.split(",")]
    clips = args.edit_clips or [SHARED / c for c in EDIT_CLIPS if (SHARED / c).exists()]
    report = {"machine": machine(), "max_frames": args.max_frames, "edit_clips": [c.name for c in clips],
              "prototypes": {e: em.PROTOTYPE_CODES[e] for e in emotions}, "edit_gain": dict(EDIT_GAIN),
              "max_intensity": em.MAX_INTENSITY}  # fmt: skip
    report["real"] = real_peaks(model, args.workdir)
    edits = []
    with tempfile.TemporaryDirectory(prefix="facepipe-amp-") as tmp:
        folder = args.keep_clips or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for clip in clips:
            src = trimmed_source(clip, folder, args.max_frames, args.workdir)
            for emotion in emotions:
                for x in intensities:
                    e = read_back(model, src, emotion, x, folder, args.workdir)
                    edits.append(e)
                    print(f"{clip.name} {emotion} {x:g}: fidelity {e['overall_fidelity']} scale {e['min_edit_scale']} "
                          + " ".join(f"{k} {v['target']}->{v['read_back']}" for k, v in e["au"].items()), flush=True)  # fmt: skip
    report["edits"] = edits
    report["table"] = summarise(model, report["real"], edits, emotions)
    write_report(report, args.json, markdown, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
