"""Write an analysis: per-frame records (JSON/CSV), a plot of the curves, a contact sheet.

The JSON schema (``--json OUT``), one record per frame::

    {"clip": "...", "fps": "30/1", "frame_count": T, "emotions": [...], "au_names": [...],
     "au_source": "fit3d" | null, "au_missing": null | "why",
     "frames": [{"index": 0, "time_s": 0.0, "face": true, "confidence": 0.97, "flags": [],
                 "residual_iod": 0.004, "au": {"AU12": 0.71, ...}, "emotion": {"happy": 0.93, ...},
                 "dominant": "happy", "pose": {"yaw": 3.1, "pitch": -2.0, "roll": 0.4}}]}

Unknown values are ``null`` (no face, AUs unavailable or not fitted in that frame). AU columns
are the rig's (``AU12R``, ``AU12L``, ...) plus, for every AU the rig splits into sides, the
mean of both sides under the plain name (``AU12``).
"""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from facepipe.analysis.align import align_faces
from facepipe.analysis.expression import CLASSES
from facepipe.io.atomic import StagedFile
from facepipe.io.reader import VideoReader
from facepipe.tracking.tracks import Flag

#: Line colours of the emotion classes (fixed, so plots of different clips compare).
EMOTION_COLOURS = {
    "angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#2ca02c",
    "sad": "#1f77b4", "surprise": "#ff7f0e", "neutral": "#7f7f7f",
}  # fmt: skip


def _num(x, digits: int = 4):
    x = float(x)
    return round(x, digits) if np.isfinite(x) else None


def au_table(au: np.ndarray, au_names: list[str]) -> tuple[np.ndarray, list[str]]:
    """The rig's AU columns plus bilateral means: ``AU12R``/``AU12L`` add ``AU12``. -> (T,K'), names."""
    au = np.asarray(au, np.float64)
    names = list(au_names)
    cols = [au[:, k] for k in range(au.shape[1])] if au.ndim == 2 else []
    for k, n in enumerate(au_names):
        if n.endswith("R") and f"{n[:-1]}L" in au_names and n[:-1] not in names:
            names.append(n[:-1])
            cols.append((au[:, k] + au[:, au_names.index(f"{n[:-1]}L")]) / 2)
    return (np.stack(cols, 1) if cols else np.zeros((len(au), 0))), names


def frame_records(result) -> list[dict]:
    """One dict per frame of an :class:`~facepipe.jobs.analyze.AnalysisResult` (schema above)."""
    tr, em, fit = result.tracks, result.emotions, result.fit
    fps = Fraction(result.info.fps)
    present = np.isfinite(tr.landmarks.reshape(len(tr), -1)).all(1) if len(tr) else np.zeros(0, bool)
    au, au_names = au_table(fit.au, list(fit.au_names)) if fit is not None else (None, [])
    fit_valid = np.asarray(fit.valid, bool) if fit is not None else None
    e_row = {int(f): i for i, f in enumerate(em.frame_index)}
    records = []
    for i, index in enumerate(np.asarray(tr.frame_index).tolist()):
        j = e_row.get(int(index))
        has_emotion = j is not None and bool(em.valid[j])
        flags = [f.name for f in Flag if int(tr.flags[i]) & int(f)]
        fitted = fit is not None and bool(fit_valid[i])
        records.append({
            "index": int(index),
            "time_s": round(float(Fraction(int(index)) / fps), 6) if fps else None,
            "face": bool(present[i]),
            "confidence": _num(tr.confidence[i]),
            "flags": flags,
            "residual_iod": _num(fit.residual[i], 5) if fitted else None,
            "au": {n: _num(au[i, k]) for k, n in enumerate(au_names)} if fitted else None,
            "emotion": {c: _num(em.probs[j, k]) for k, c in enumerate(CLASSES)} if has_emotion else None,
            "dominant": CLASSES[int(np.argmax(em.probs[j]))] if has_emotion else None,
            "pose": {k: _num(tr.pose[i, n], 2) for n, k in enumerate(("yaw", "pitch", "roll"))} if present[i] else None,
        })  # fmt: skip
    return records


def document(result) -> dict:
    """The whole JSON document of an analysis."""
    fit = result.fit
    return {
        "clip": str(result.clip),
        "fps": str(result.info.fps),
        "frame_count": int(result.info.frame_count),
        "width": int(result.info.width),
        "height": int(result.info.height),
        "emotions": list(CLASSES),
        "au_names": au_table(fit.au[:1], list(fit.au_names))[1] if fit is not None else [],
        "au_source": "fit3d" if fit is not None else None,
        "au_missing": result.au_note or None,
        "face_message": result.tracks.message or None,
        "crop": {"eye_dist": result.emotions.eye_dist, "eye_y": result.emotions.eye_y, "size": 64},
        "frames": frame_records(result),
    }


def write_json(doc: dict, path: Path) -> Path:
    with StagedFile(Path(path)) as tmp:
        tmp.write_text(json.dumps(doc, indent=None, separators=(",", ":")))
    return Path(path)


def write_csv(doc: dict, path: Path) -> Path:
    """One row per frame: frame, time_s, face, confidence, flags, residual_iod, yaw, pitch, roll,
    dominant, one column per emotion class (P_<class>), one per AU. Empty cells are unknown."""
    emotions, aus = doc["emotions"], doc["au_names"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        ["frame", "time_s", "face", "confidence", "flags", "residual_iod", "yaw", "pitch", "roll", "dominant"]
        + [f"P_{c}" for c in emotions]
        + aus
    )
    for r in doc["frames"]:
        pose, emo, au = r["pose"] or {}, r["emotion"] or {}, r["au"] or {}
        cell = lambda v: "" if v is None else v  # noqa: E731
        w.writerow(
            [
                r["index"],
                cell(r["time_s"]),
                int(r["face"]),
                cell(r["confidence"]),
                "|".join(r["flags"]),
                cell(r["residual_iod"]),
                cell(pose.get("yaw")),
                cell(pose.get("pitch")),
                cell(pose.get("roll")),
                cell(r["dominant"]),
            ]
            + [cell(emo.get(c)) for c in emotions]
            + [cell(au.get(a)) for a in aus]
        )
    with StagedFile(Path(path)) as tmp:
        tmp.write_text(buf.getvalue())
    return Path(path)


def _plot_aus(doc: dict, max_aus: int = 8) -> list[str]:
    """The AUs worth plotting: the bilateral means and unsided AUs with the largest peaks (AU12 always)."""
    names = doc["au_names"]
    if not names:
        return []
    shown = [n for n in names if not (n[-1] in "RL" and n[:-1] in names)]  # sides folded into their mean
    peak = {n: max((r["au"] or {}).get(n) or 0.0 for r in doc["frames"]) for n in shown}
    top = sorted(shown, key=lambda n: -peak[n])[:max_aus]
    if "AU12" in shown and "AU12" not in top:
        top[-1] = "AU12"
    return [n for n in top if peak[n] > 0.02] or top[:1]


def write_plot(doc: dict, path: Path, title: str | None = None) -> Path:
    """PNG: emotion probabilities, AU intensities and face confidence over frames, x shared."""
    import matplotlib  # lazy: the Agg backend is process-wide; chosen on the first plot, not on import

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    frames = doc["frames"]
    x = np.array([r["index"] for r in frames])
    fig, axes = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 3, 1.2]})
    ax = axes[0]
    for c in doc["emotions"]:
        y = np.array([np.nan if r["emotion"] is None else r["emotion"][c] for r in frames], float)
        ax.plot(x, y, color=EMOTION_COLOURS.get(c), lw=2.2 if c == "happy" else 1.4, label=c)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("P(emotion)")
    ax.legend(loc="upper left", ncol=7, fontsize=8, frameon=False, bbox_to_anchor=(0, 1.17))
    ax.grid(alpha=0.3)
    ax = axes[1]
    aus = _plot_aus(doc)
    if aus:
        cmap = plt.get_cmap("tab10")
        for k, n in enumerate(aus):
            y = np.array([np.nan if r["au"] is None else r["au"].get(n, np.nan) for r in frames], float)
            y = np.where(y is None, np.nan, y).astype(float)
            ax.plot(x, y, color=cmap(k % 10), lw=2.2 if n == "AU12" else 1.3, label=n)
        ax.legend(loc="upper left", ncol=min(8, len(aus)), fontsize=8, frameon=False)
        ax.set_ylim(-0.02, 1.05)
    else:
        ax.text(
            0.5,
            0.5,
            f"AU intensities unavailable:\n{doc.get('au_missing') or 'no fit'}",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=10,
            color="#a00",
            wrap=True,
        )
        ax.set_ylim(0, 1)
    ax.set_ylabel("AU intensity")
    ax.grid(alpha=0.3)
    ax = axes[2]
    conf = np.array([np.nan if r["confidence"] is None else r["confidence"] for r in frames], float)
    ax.plot(x, conf, color="k", lw=1.2, label="face confidence")
    noface = np.array([not r["face"] for r in frames])
    if noface.any():
        ax.fill_between(x, 0, 1, where=noface, color="#f88", alpha=0.5, step="mid", label="no face")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("conf.")
    ax.set_xlabel(f"frame ({doc['fps']} fps)")
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    fig.suptitle(title or Path(doc["clip"]).name, y=0.995)
    fig.tight_layout()
    with StagedFile(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return Path(path)


def sample_frames(doc: dict, n: int) -> list[int]:
    """Up to ``n`` frame indices spread evenly over the clip (positions in ``doc['frames']``)."""
    t = len(doc["frames"])
    if t == 0:
        return []
    return sorted(set(np.linspace(0, t - 1, min(n, t)).round().astype(int).tolist()))


def write_contact_sheet(result, doc: dict, path: Path, samples: int = 12, cols: int = 4, tile: int = 240) -> Path:
    """PNG: ``samples`` frames around the face, labelled with frame, dominant emotion and its
    probability, and the strongest AU; the classifier's own 64x64 input is inset at the corner."""
    pos = sample_frames(doc, samples)
    tr = result.tracks
    idx = [doc["frames"][p]["index"] for p in pos]
    frames = VideoReader(result.info).read(idx).numpy() if idx else np.zeros((0, 3, 1, 1), np.float32)
    crops, valid = align_faces(
        frames,
        tr.landmarks[pos],
        tr.scheme or "mediapipe-478",
        eye_dist=result.emotions.eye_dist,
        eye_y=result.emotions.eye_y,
    )
    aus = [a for a in _plot_aus(doc) if a]
    tiles = []
    for k, p in enumerate(pos):
        rec = doc["frames"][p]
        img = np.ascontiguousarray((np.clip(frames[k].transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8))
        h, w = img.shape[:2]
        box = tr.box[p]
        if np.isfinite(box).all():
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            side = 1.5 * max(box[2] - box[0], box[3] - box[1])
        else:
            cx, cy, side = w / 2, h / 2, max(w, h)
        s = tile / side
        m = np.float32([[s, 0, tile / 2 - s * cx], [0, s, tile / 2 - s * cy]])
        t = cv2.warpAffine(
            img,
            m,
            (tile, tile),
            flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        if valid[k]:
            inset = cv2.resize((crops[k, 0] * 255).round().astype(np.uint8), (72, 72), interpolation=cv2.INTER_NEAREST)
            t[tile - 74 : tile - 2, tile - 74 : tile - 2] = inset[..., None]
        label = f"#{rec['index']}"
        if rec["dominant"]:
            label += f" {rec['dominant']} {rec['emotion'][rec['dominant']]:.2f}"
        else:
            label += " no face"
        _text(t, label, (4, 18), (255, 255, 80) if rec["dominant"] == "happy" else (255, 255, 255))
        if rec["au"] and aus:
            best = max(aus, key=lambda a: rec["au"].get(a) or 0.0)
            line = f"{best} {rec['au'][best]:.2f}" + (
                f"  AU12 {rec['au']['AU12']:.2f}" if "AU12" in rec["au"] and best != "AU12" else ""
            )
            _text(t, line, (4, 38), (160, 255, 160))
        elif doc.get("au_missing"):
            _text(t, "AUs n/a", (4, 38), (255, 140, 140))
        tiles.append(t)
    cols = max(1, min(cols, len(tiles)))
    rows = -(-len(tiles) // cols) if tiles else 1
    sheet = np.zeros((rows * tile, cols * tile, 3), np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = t
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    with StagedFile(Path(path)) as tmp:
        tmp.write_bytes(png.tobytes())
    return Path(path)


def _text(img: np.ndarray, text: str, org: tuple[int, int], colour) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
