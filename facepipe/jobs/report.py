"""The edit report: what an edit did, as JSON beside the output and one line on the terminal.

The JSON also carries the plan's per-frame AU targets (``au_names``, ``target``, ``frames``), so
``facepipe eval --plan OUT.report.json`` can score AU fidelity straight from it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from facepipe import __version__
from facepipe.io.atomic import StagedFile


def report_path(out: Path, frames: str | None = None) -> Path:
    """``clip.happy.mp4`` -> ``clip.happy.report.json``; ``sh010.%04d.exr`` -> ``sh010.report.json``,
    and for one chunk of a sequence (``frames`` 1001-1050) ``sh010.1001-1050.report.json``, so the
    chunks of a farm job do not write over each other's report."""
    out = Path(out)
    stem = re.sub(r"[._]?%0?\d*d$|[._]?#+$", "", out.stem)
    sequence = stem != out.stem
    tag = f".{frames.replace(',', '_')}" if sequence and frames else ""
    return out.with_name(f"{stem or out.stem}{tag}.report.json")


def edit_report(shot, out, request, pulled, settings, timing: dict) -> dict:
    """The report document of one edit (see the module doc): ``shot`` the
    :class:`~facepipe.jobs.edit.Shot`, ``pulled`` what :func:`~facepipe.jobs.edit.pull_edit` gave."""
    frames = np.asarray(shot.indices, np.int64)
    doc = {
        "tool": "facepipe",
        "version": __version__,
        "source": str(shot.src),
        "output": str(out),
        "request": request.to_dict(),
        "frames": [int(i) for i in frames],
        "frame_count": int(len(frames)),
        "fps": str(shot.info.fps),
        "appearance_strength": settings.appearance_strength,
        "shutter": settings.shutter,
        "smooth": settings.smooth,
        "timing": {k: round(float(v), 3) for k, v in timing.items()},
        "warnings": [],
    }
    render_s = timing.get("render_s", 0.0)
    doc["timing"]["render_fps"] = round(len(frames) / render_s, 2) if render_s > 0 else None
    if pulled.fit is None:
        doc["mode"] = "passthrough"
        return doc
    if not pulled.fit.has_face:
        doc["mode"] = "no-face"
        doc["warnings"].append(pulled.tracks.message or "no face found: the frames passed through unchanged")
        return doc
    plan, fit, renderer = pulled.plan, pulled.fit, pulled.opened["render"]
    rows = np.searchsorted(np.asarray(fit.frame_index), frames).clip(0, len(fit.frame_index) - 1)
    doc["mode"] = "edit"
    doc["segments"] = plan.segments
    doc["speech_aus_locked"] = list(plan.speech_aus)
    doc["au_names"] = list(plan.au_names)
    doc["target"] = np.round(np.asarray(plan.target)[rows], 4).tolist()
    doc["weight"] = np.round(np.asarray(plan.weight)[rows], 4).tolist()
    doc["render"] = renderer.stats.to_dict(frames)
    doc["appearance"] = renderer.appearance_report
    doc["smoothing"] = smoothing_report(pulled.opened.get("smooth"))
    stats = doc["render"]
    if not stats["edited"]:
        doc["warnings"].append("no frame of this range has a usable face: the frames passed through unchanged")
    if stats["frames_scaled_down"]:
        doc["warnings"].append(
            f"{stats['frames_scaled_down']} frames: the edit was scaled down to {stats['min_edit_scale']:.2f} at worst "
            "to avoid folding the face"
        )
    for name, region in renderer.appearance_report.get("regions", {}).items():
        if region.get("frames_fallback"):
            doc["warnings"].append(
                f"{name}: geometric warp only on {region['frames_fallback']} frames ({region.get('reason', 'no close donor')})"
            )
    return doc


def deblur_report(graph, settings, frames) -> dict:
    """The deblur node's part of an edit report: its method, whether its restored faces were
    delivered, and (method not ``none``) how many of source ``frames`` (T,) it restores for the
    tracking; delivered, also on how many the delivered restoration has any weight and their
    mean weight."""
    deblur = settings.deblur
    doc = {"method": deblur.method, "delivered": settings.deliver_deblurred}
    if deblur.method == "none" or "motion" not in graph.stages:  # a pass-through that delivers nothing has no motion node
        return doc
    motion = graph.get("motion")
    rows = np.searchsorted(motion.indices, np.asarray(frames))
    doc["frames_restored"] = int(deblur.blend(motion)[rows].sum())
    if settings.deliver_deblurred:
        weight = settings.delivered_deblur.blend(motion)[rows]
        doc["frames_delivered"] = int((weight > 0).sum())
        doc["mean_delivered_weight"] = round(float(weight[weight > 0].mean()), 4) if (weight > 0).any() else 0.0
    return doc


def smoothing_report(smoother) -> dict:
    """What the smooth stage did: frames smoothed and the mean weight the previous frames got on
    the face (0 = the current frame alone)."""
    stats = getattr(smoother, "stats", None)
    if not stats:
        return {"frames": 0}
    frames = stats["frames"]
    return {"frames": frames, "mean_weight": round(stats["weight_sum"] / frames, 4) if frames else 0.0}


def write_report(doc: dict, path: Path) -> Path:
    with StagedFile(Path(path)) as tmp:
        tmp.write_text(json.dumps(doc, indent=None, separators=(",", ":"), default=str))
    return Path(path)


def summary_line(doc: dict) -> str:
    """One line for the terminal: what was edited, which regions got transferred appearance."""
    t = doc.get("timing", {})
    speed = f"{t['render_fps']:.1f} fps" if t.get("render_fps") else ""
    if doc.get("mode") != "edit":
        return f"wrote {doc['output']}: {doc['frame_count']} frames passed through ({doc.get('mode')}) {speed}".rstrip()
    r = doc["render"]
    regions = doc.get("appearance", {}).get("regions", {})
    used = [f"{k} {v['frames_transferred']}" for k, v in regions.items() if v.get("frames_transferred")]
    fell = [k for k, v in regions.items() if v.get("frames_fallback")]
    parts = [f"wrote {doc['output']}: {r['edited']}/{doc['frame_count']} frames edited"]
    if doc.get("appearance_strength", 0) <= 0:
        parts.append("warp only")
    else:
        parts.append("appearance: " + (", ".join(used) if used else "none") + (f"; warp only: {', '.join(fell)}" if fell else ""))
    if r.get("frames_refined"):
        parts.append(f"neural renderer: {r['frames_refined']} frames")
    parts.append(speed)
    return "; ".join(p for p in parts if p)
