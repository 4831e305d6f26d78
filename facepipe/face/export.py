"""Exports of a shot fit: AU intensity curves (CSV, JSON) and one frame's mesh (Wavefront OBJ)."""

from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from facepipe.face.model import FaceModel


def _frames(fit) -> np.ndarray:
    idx = getattr(fit, "frame_index", None)
    return np.asarray(idx) if idx is not None and len(idx) == len(fit.au) else np.arange(len(fit.au))


def write_au_csv(fit, path: str | Path, fps: Fraction | None = None) -> Path:
    """One row per frame: frame, [time_s], valid, residual_iod, then one column per AU."""
    path = Path(path)
    frames = _frames(fit)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame"] + (["time_s"] if fps else []) + ["valid", "residual_iod"] + list(fit.au_names))
        for i, frame in enumerate(frames):
            row = [int(frame)] + ([f"{float((frame - frames[0]) / Fraction(fps)):.6f}"] if fps else [])
            row += [int(fit.valid[i]), f"{fit.residual[i]:.5f}"] + [f"{v:.4f}" for v in fit.au[i]]
            w.writerow(row)
    return path


def write_au_json(fit, path: str | Path, fps: Fraction | None = None) -> Path:
    """{"frames": [...], "fps": "num/den"|null, "valid": [...], "residual_iod": [...],
    "au": {name: [...]}}; NaN residuals become null."""
    path = Path(path)
    doc = {
        "frames": _frames(fit).tolist(),
        "fps": str(Fraction(fps)) if fps else None,
        "valid": np.asarray(fit.valid).astype(int).tolist(),
        "residual_iod": [None if not np.isfinite(r) else round(float(r), 5) for r in fit.residual],
        "au": {n: np.round(fit.au[:, k].astype(np.float64), 4).tolist() for k, n in enumerate(fit.au_names)},
    }
    path.write_text(json.dumps(doc))
    return path


def write_obj(path: str | Path, vertices: np.ndarray, triangles: np.ndarray) -> Path:
    """Wavefront OBJ of vertices (V,3) and triangles (F,3) (0-based; written 1-based)."""
    path = Path(path)
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices, np.float64)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(triangles)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_frame_obj(fit, model: FaceModel, frame: int, path: str | Path, space: str = "model") -> Path:
    """OBJ of the fitted mesh of position ``frame`` in the shot.

    space: ``model`` (canonical frame, IOD units: expression without head pose) or ``image``
    (pixels, y flipped to point up and z to point towards the viewer so the mesh is not mirrored).
    """
    if space == "model":
        verts = fit.vertices(model, [frame])[0]
    elif space == "image":
        verts = fit.image_vertices(model, [frame])[0] * np.array([1.0, -1.0, -1.0])
    else:
        raise ValueError(f"space {space!r}: use model or image")
    return write_obj(path, verts, model.triangles)
