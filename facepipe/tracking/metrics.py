"""Landmark accuracy against annotations: iBUG ``.pts`` files and the normalised mean error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facepipe.errors import FacepipeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def read_pts(path: str | Path) -> np.ndarray:
    """Points of an iBUG 300-W ``.pts`` file as (N,2) float32 in 0-based pixel-centre coordinates.

    The files hold 1-based pixel coordinates (300-W convention), so 1 is subtracted.
    """
    text = Path(path).read_text().replace("\r", "")
    try:
        body = text[text.index("{") + 1 : text.index("}")]
        pts = np.array([[float(v) for v in line.split()] for line in body.strip().splitlines() if line.strip()])
    except (ValueError, IndexError) as exc:
        raise FacepipeError(f"{path}: not an iBUG .pts file (expected 'x y' lines between braces)") from exc
    n = None
    for line in text.splitlines():
        if line.lower().startswith("n_points"):
            n = int(line.split(":")[1])
    if pts.ndim != 2 or pts.shape[1] != 2 or (n is not None and len(pts) != n):
        raise FacepipeError(f"{path}: expected {n} 'x y' points, found {pts.shape}")
    return (pts - 1.0).astype(np.float32)


def nme(pred68: np.ndarray, gt68: np.ndarray) -> float:
    """Mean point-to-point error / inter-ocular distance (outer eye corners, iBUG 37 and 46)."""
    pred = np.asarray(pred68, np.float64)[:, :2]
    gt = np.asarray(gt68, np.float64)[:, :2]
    iod = np.linalg.norm(gt[36] - gt[45])
    return float(np.mean(np.linalg.norm(pred - gt, axis=1)) / iod)


def per_point_errors(pred68: np.ndarray, gt68: np.ndarray) -> np.ndarray:
    """(68,) point errors / inter-ocular distance."""
    pred = np.asarray(pred68, np.float64)[:, :2]
    gt = np.asarray(gt68, np.float64)[:, :2]
    return np.linalg.norm(pred - gt, axis=1) / np.linalg.norm(gt[36] - gt[45])


def annotated_images(directory: str | Path) -> list[tuple[Path, Path]]:
    """(image, .pts) pairs in ``directory``, sorted by name."""
    d = Path(directory)
    if not d.is_dir():
        raise FacepipeError(f"{d}: not a folder")
    pairs = []
    for pts in sorted(d.glob("*.pts")):
        for suf in IMAGE_SUFFIXES:
            for cand in (pts.with_suffix(suf), pts.with_suffix(suf.upper())):
                if cand.is_file():
                    pairs.append((cand, pts))
                    break
            else:
                continue
            break
    return pairs


def load_rgb(path: str | Path) -> np.ndarray:
    """(H,W,3) uint8 RGB of an image file (EXIF orientation is not applied, as with the .pts)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FacepipeError(f"{path}: cannot read this image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
