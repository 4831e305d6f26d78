"""The donors of appearance transfer: the pool of candidate frames, and the donor crops.

Appearance transfer (:mod:`facepipe.render.transfer`) copies teeth, cheek bulge, folds and
wrinkles from other frames of the same actor. A :class:`DonorPool` lists the M candidate frames
(the shot's own, and those of other shots of the same actor: clip 1.. of ``--actor-library``)
with what the planner (:mod:`facepipe.render.transfer_plan`) chooses them by, on AU curves only:
fitted AUs, head rotation, usability and, from the tracked landmarks, per-vertex speed
(:func:`landmark_speed`: a frame caught mid-motion is blurred, so it makes a poor donor).

The renderer then takes each chosen frame as a :class:`DonorImage`: the frame, or a crop of it
around the face (:func:`cut_donor`, :func:`crop_box`), with its tracked landmarks.

Shapes: T frames of a clip, M pool rows, K AUs, N = 468 mesh vertices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from facepipe.face import topology as topo
from facepipe.face.extent import Box, bbox_scale, face_box, finite_points


def landmark_speed(landmarks) -> np.ndarray:
    """Per-vertex speed (T,N) float32 of a clip's landmarks (T,N,>=2) px, in inter-ocular distances
    per frame (central differences, one-sided at the ends): a proxy for a frame's motion blur.
    NaN where a frame or its neighbours have no landmarks (such a frame is no donor)."""
    p = np.asarray(landmarks, np.float64)[..., :2]
    T = len(p)
    if T < 2:
        return np.zeros(p.shape[:2], np.float32)
    v = np.empty_like(p)
    v[1:-1] = 0.5 * (p[2:] - p[:-2])
    v[0], v[-1] = p[1] - p[0], p[-1] - p[-2]
    iod = np.linalg.norm(p[:, topo.EYE_OUTER_L] - p[:, topo.EYE_OUTER_R], axis=-1) if p.shape[1] > topo.EYE_OUTER_L else None
    if iod is None or not np.isfinite(iod).any():
        iod = np.ones(T)
    iod = np.where(np.isfinite(iod) & (iod > 0), iod, np.nanmedian(iod) if np.isfinite(iod).any() else 1.0)
    return (np.linalg.norm(v, axis=-1) / iod[:, None]).astype(np.float32)


@dataclass
class DonorPool:
    """M candidate donor frames.

    au: (M,K) float32 fitted AUs (columns named like the shot's ``au_names``); rotation: (M,3)
    float32 head rotation, axis-angle radians; usable: (M,) bool (a face was tracked and fitted);
    clip: (M,) int64 0 = this shot, 1.. = library shots of the same actor; frame: (M,) int64 frame
    index within its clip; speed: optional (M,N) float32 per-vertex landmark speed in IOD/frame
    (:func:`landmark_speed`): a frame caught mid-motion is blurred, so each region's mean speed
    adds a cost and above ``max_speed`` (:class:`~facepipe.render.transfer_plan.TransferConfig`)
    rules the frame out for that region (NaN: not usable). None: every donor counts as still.
    """

    au: np.ndarray
    rotation: np.ndarray
    usable: np.ndarray
    clip: np.ndarray
    frame: np.ndarray
    speed: np.ndarray | None = None

    def __post_init__(self):
        self.au = np.asarray(self.au, np.float32)
        m = len(self.au)
        self.rotation = np.asarray(self.rotation, np.float32).reshape(m, 3)
        self.usable = np.asarray(self.usable, bool).reshape(m)
        self.clip = np.asarray(self.clip, np.int64).reshape(m)
        self.frame = np.asarray(self.frame, np.int64).reshape(m)
        if self.speed is not None:
            self.speed = np.asarray(self.speed, np.float32).reshape(m, -1)

    def __len__(self) -> int:
        return len(self.au)

    @classmethod
    def from_fit(cls, au, rotation, usable=None, clip: int = 0, frames=None, landmarks=None) -> DonorPool:
        """A pool of one clip's frames: au (T,K), rotation (T,3), usable (T,) (default: all, and
        only frames with landmarks when ``landmarks`` is given), frames (T,) frame indices (default
        0..T-1), landmarks (T,N,>=2) px the tracked landmarks (for the donors' speed)."""
        au = np.asarray(au, np.float32)
        t = len(au)
        usable = np.ones(t, bool) if usable is None else np.asarray(usable, bool).copy()
        frames = np.arange(t) if frames is None else np.asarray(frames)
        speed = None
        if landmarks is not None:
            lm = np.asarray(landmarks, np.float32)
            usable &= np.isfinite(lm[..., :2]).all((1, 2))
            speed = landmark_speed(lm)
        return cls(au, rotation, usable, np.full(t, clip, np.int64), frames, speed)

    @classmethod
    def concat(cls, pools: Sequence[DonorPool]) -> DonorPool:
        """Rows of several pools, in order (same AU columns; speeds kept only if all have them)."""
        fields = [np.concatenate([getattr(p, f) for p in pools]) for f in ("au", "rotation", "usable", "clip", "frame")]
        speed = None
        if all(p.speed is not None for p in pools):
            speed = np.concatenate([p.speed for p in pools])
        return cls(*fields, speed)


class DonorImage(NamedTuple):
    """One donor frame as the renderer hands it over.

    image: (3,h,w) float 0..1, the donor frame or a crop of it (see :func:`cut_donor`);
    vertices: (N,2) float px, the donor frame's *tracked* landmarks in the coordinates of the
    whole donor frame; offset: (x0, y0) of the crop's top-left pixel in the donor frame
    ((0, 0) for a whole frame).
    """

    image: torch.Tensor
    vertices: torch.Tensor
    offset: tuple[int, int] = (0, 0)


def crop_box(vertices, size: tuple[int, int], margin: float = 0.15) -> Box:
    """Integer box (x0, y0, x1, y1) (half-open) around vertices (N,2) px grown by ``margin`` x
    face size (:func:`~facepipe.face.extent.bbox_scale`: sqrt of the vertices' bounding-box area)
    plus 2 px, clipped to the frame ``size`` (H, W):
    where to cut a donor crop so that every region (and the bilinear taps at its edge) is inside."""
    v = finite_points(vertices)
    return face_box([v], margin * bbox_scale(v) + 2.0, size)


def cut_donor(frame: torch.Tensor, vertices, margin: float = 0.15) -> DonorImage:
    """A :class:`DonorImage` of frame (3,H,W) cropped with :func:`crop_box` (a copy, so the full
    frame can be freed)."""
    H, W = frame.shape[-2:]
    v = torch.as_tensor(vertices).float()[:, :2]
    x0, y0, x1, y1 = crop_box(v, (H, W), margin)
    return DonorImage(frame[:, y0:y1, x0:x1].clone(), v, (x0, y0))
