"""``facepipe analyze``: what the actor's face does in a clip, frame by frame.

    from facepipe.jobs.analyze import analyze
    result = analyze("clip.mp4", out_dir="clip.analysis")     # CSV, JSON, curves PNG, contact sheet
    result.emotions.probs          # (T,7) classifier probabilities
    result.fit.au                  # (T,K) AU intensities (None when the fit is unavailable)

It pulls ``track``, ``fit3d`` and ``expression`` through the stage graph, so the artifacts are
cached in the work directory and shared with ``facepipe edit`` (a second analyze, or an edit
after an analyze, reuses them).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from facepipe.analysis import report
from facepipe.analysis.expression import CLASSES
from facepipe.analysis.result import AnalysisResult
from facepipe.errors import FacepipeError
from facepipe.io.media import probe
from facepipe.jobs.context import open_context
from facepipe.pipeline.graph import Graph
from facepipe.stages.deblur import DeblurStage
from facepipe.stages.graph import analysis_stages


def run_analysis(
    clip,
    au: bool = True,
    face: str = "largest",
    workdir=None,
    device: str = "auto",
    progress: str = "auto",
    chunk_mb: int = 32,
    log=print,
    deblur: DeblurStage | None = None,
) -> AnalysisResult:
    """Track, fit and classify ``clip`` (cached); write nothing. AUs come from the ``fit3d``
    stage; when it is unavailable or fails (``au=False`` skips it), ``fit`` is None and
    ``au_note`` says why. ``deblur``: the deblur node the tracking reads (default: none, the
    decoded frames); it keys the tracking, so an edit with the same method reuses it."""
    t0 = time.perf_counter()
    info = probe(clip)
    ctx = open_context(info, Path(workdir) if workdir else None, device, progress, chunk_mb, log)
    graph = Graph(analysis_stages(face, deblur), ctx)
    tracks = graph.get("track")
    if not tracks.has_face:
        log(f"analyze: {tracks.message or 'no face found'}")
    emotions = graph.get("expression")
    fit, note = None, ""
    if not au:
        note = "AU fit skipped (--no-au)"
    elif not tracks.has_face:
        note = "no face in the clip: nothing to fit"
    else:
        try:
            fit = graph.get("fit3d")
        except FacepipeError as exc:
            note = f"the 3D face fit failed: {exc}"
        if fit is not None and not fit.has_face:
            fit, note = None, fit.message
    if note and au:
        log(f"analyze: AU intensities are missing: {note}")
    return AnalysisResult(
        clip=Path(clip),
        info=info,
        tracks=tracks,
        emotions=emotions,
        fit=fit,
        au_note=note,
        seconds=time.perf_counter() - t0,
        stats=ctx.stats,
    )


def default_out_dir(clip: Path) -> Path:
    """``./CLIPNAME.analysis`` in the working directory (never beside the input, which may be read-only)."""
    return Path.cwd() / f"{Path(clip).stem}.analysis"


def analyze(
    clip: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    json_path: str | os.PathLike | None = None,
    au: bool = True,
    plot: bool = True,
    sheet: bool = True,
    samples: int = 12,
    face: str = "largest",
    workdir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: str = "auto",
    chunk_mb: int = 32,
    log=print,
    deblur: DeblurStage | None = None,
) -> AnalysisResult:
    """Analyse ``clip`` and write ``out_dir/CLIP.analysis.{json,csv}``, ``CLIP.curves.png`` and
    ``CLIP.sheet.png`` (``json_path`` moves the JSON). Returns the :class:`AnalysisResult` with
    ``outputs`` naming the files."""
    clip = Path(clip)
    out = Path(out_dir) if out_dir else default_out_dir(clip)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FacepipeError(f"cannot create the output folder {out}: {exc.strerror or exc}") from exc
    result = run_analysis(clip, au, face, workdir, device, progress, chunk_mb, log, deblur)
    doc = report.document(result)
    stem = clip.stem
    result.outputs["json"] = report.write_json(doc, Path(json_path) if json_path else out / f"{stem}.analysis.json")
    result.outputs["csv"] = report.write_csv(doc, out / f"{stem}.analysis.csv")
    if plot:
        result.outputs["plot"] = report.write_plot(doc, out / f"{stem}.curves.png")
    if sheet:
        result.outputs["sheet"] = report.write_contact_sheet(result, doc, out / f"{stem}.sheet.png", samples=samples)
    result.seconds = float(result.seconds)
    return result


def summary(result: AnalysisResult) -> dict:
    """Short numbers for a terminal: frames with a face, dominant-emotion shares, peak AUs."""
    em = result.emotions
    valid = np.asarray(em.valid, bool)
    top = np.argmax(np.nan_to_num(em.probs[valid]), axis=1) if valid.any() else np.zeros(0, int)
    shares = {c: round(float((top == k).mean()), 3) for k, c in enumerate(CLASSES) if valid.any() and (top == k).any()}
    out = {
        "frames": int(len(em.frame_index)),
        "face_frames": int(valid.sum()),
        "dominant_share": dict(sorted(shares.items(), key=lambda kv: -kv[1])),
    }
    if result.fit is not None:
        au, names = report.au_table(result.fit.au, list(result.fit.au_names))
        ok = np.asarray(result.fit.valid, bool)
        if ok.any():
            peaks = {
                n: round(float(au[ok, k].max()), 3)
                for k, n in enumerate(names)
                if not (n[-1] in "RL" and n[:-1] in names)
            }
            out["au_peaks"] = dict(sorted(peaks.items(), key=lambda kv: -kv[1])[:6])
    else:
        out["au_missing"] = result.au_note
    return out
