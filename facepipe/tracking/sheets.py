"""Contact sheets: a few frames of a clip with the tracked landmarks drawn, tiled into one PNG.

Editors use them to pick the actor (``facepipe faces``); developers look at them to check that
the tracks sit on the faces.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from facepipe.errors import FacepipeError
from facepipe.io.reader import VideoReader, to_uint8_images
from facepipe.tracking.schemes import (
    MESH_JAW_POLYLINE,
    MESH_LEFT_EYE,
    MESH_LIPS_INNER,
    MESH_LIPS_OUTER,
    MESH_NOSE_RIDGE,
    MESH_RIGHT_EYE,
)
from facepipe.tracking.tracks import Flag

#: Colours (RGB) by role.
TARGET_COLOUR = (40, 230, 40)
OTHER_COLOUR = (240, 200, 30)
LOST_COLOUR = (230, 40, 40)


def _mesh_outline_pairs(n_points: int) -> list[tuple[int, int]]:
    """Line segments that outline the face features (oval, brows, eyes, lips, nose ridge)."""
    if n_points >= 468:
        chains = [MESH_JAW_POLYLINE, MESH_NOSE_RIDGE, (70, 63, 105, 66, 107), (336, 296, 334, 293, 300)]
        loops = [MESH_RIGHT_EYE, MESH_LEFT_EYE, MESH_LIPS_OUTER, MESH_LIPS_INNER]
    elif n_points == 68:
        chains = [
            tuple(range(0, 17)),
            tuple(range(17, 22)),
            tuple(range(22, 27)),
            tuple(range(27, 31)),
            tuple(range(31, 36)),
        ]
        loops = [tuple(range(36, 42)), tuple(range(42, 48)), tuple(range(48, 60)), tuple(range(60, 68))]
    else:
        return []
    pairs = [(c[i], c[i + 1]) for c in chains for i in range(len(c) - 1)]
    pairs += [(c[i], c[(i + 1) % len(c)]) for c in loops for i in range(len(c))]
    return pairs


def draw_landmarks(
    image: np.ndarray, points: np.ndarray, colour=TARGET_COLOUR, label: str | None = None, box=None, dots: bool = True
) -> np.ndarray:
    """A copy of ``image`` (H,W,3) uint8 RGB with landmarks (N,>=2) drawn (dots + feature outlines)."""
    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 500))
    p = np.asarray(points)[:, :2]
    if np.isfinite(p).all():
        for a, b in _mesh_outline_pairs(len(p)):
            cv2.line(out, _pt(p[a]), _pt(p[b]), colour, thick, cv2.LINE_AA)
        if dots:
            r = max(1, thick)
            step = 1 if len(p) <= 68 else 2
            for q in p[::step]:
                cv2.circle(out, _pt(q), r, colour, -1, cv2.LINE_AA)
    if box is not None and np.isfinite(box).all():
        cv2.rectangle(out, _pt(box[:2]), _pt(box[2:]), colour, thick, cv2.LINE_AA)
    if label:
        anchor = (int(box[0]), max(12, int(box[1]) - 6)) if box is not None and np.isfinite(box).all() else (8, 24)
        scale = max(0.5, max(h, w) / 900)
        cv2.putText(out, label, anchor, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(out, label, anchor, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)
    return out


def _pt(p) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def tile(
    images: list[np.ndarray], cols: int = 4, tile_width: int = 320, captions: list[str] | None = None
) -> np.ndarray:
    """Images resized to ``tile_width`` and laid out in a grid (H,W,3) uint8 RGB."""
    if not images:
        raise ValueError("no images to tile")
    tiles = []
    for i, im in enumerate(images):
        s = tile_width / im.shape[1]
        t = cv2.resize(im, (tile_width, max(1, round(im.shape[0] * s))), interpolation=cv2.INTER_AREA)
        if captions:
            cv2.rectangle(t, (0, 0), (tile_width, 18), (0, 0, 0), -1)
            cv2.putText(t, captions[i], (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(t)
    th = max(t.shape[0] for t in tiles)
    cols = max(1, min(cols, len(tiles)))
    rows = (len(tiles) + cols - 1) // cols
    sheet = np.full((rows * th, cols * tile_width, 3), 24, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet[r * th : r * th + t.shape[0], c * tile_width : (c + 1) * tile_width] = t
    return sheet


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB image as PNG atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.facepipe-tmp.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        tmp.unlink(missing_ok=True)
        raise FacepipeError(f"{path}: cannot write the image here")
    os.replace(tmp, path)
    return path


def sample_frames(present: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` evenly spread positions where ``present`` (T,) is True."""
    idx = np.flatnonzero(present)
    if len(idx) == 0:
        return idx
    if len(idx) <= n:
        return idx
    return idx[np.round(np.linspace(0, len(idx) - 1, n)).astype(int)]


def tracks_sheet(
    info, tracks, face_id: int | None = None, n: int = 8, cols: int = 4, tile_width: int = 320
) -> np.ndarray:
    """Contact sheet of ``n`` frames of a clip with face ``face_id`` (default: the target) drawn.

    Other faces in the same frames are drawn too, in another colour, with their ids.
    """
    fid = tracks.target_id if face_id is None else int(face_id)
    t = len(tracks.frame_index)
    if fid >= 0:
        present = np.zeros(t, bool)
        pos = {int(f): i for i, f in enumerate(tracks.frame_index)}
        for f in tracks.face_frame[tracks.face_id == fid]:
            present[pos[int(f)]] = True
    else:
        present = np.ones(t, bool)
    picks = sample_frames(present, n)
    if len(picks) == 0:
        picks = sample_frames(np.ones(t, bool), n)
    frame_ids = tracks.frame_index[picks]
    frames = VideoReader(info).read(frame_ids)
    images, captions = [], []
    for k, img in zip(frame_ids.tolist(), to_uint8_images(frames)):
        rows = np.flatnonzero(tracks.face_frame == k)
        for r in rows:
            other = int(tracks.face_id[r]) != fid
            img = draw_landmarks(
                img,
                tracks.face_landmarks[r],
                OTHER_COLOUR if other else TARGET_COLOUR,
                label=f"id {int(tracks.face_id[r])}",
                box=tracks.face_box[r],
                dots=not other,
            )
        i = int(np.searchsorted(tracks.frame_index, k))
        flags = ""
        if i < len(tracks.flags) and len(tracks.flags) == t:
            f = int(tracks.flags[i])
            flags = " ".join(fl.name.lower() for fl in Flag if f & int(fl) and fl != Flag.EDGE)
        captions.append(f"frame {k}" + (f"  {flags}" if flags else ""))
        images.append(img)
    return tile(images, cols, tile_width, captions)
