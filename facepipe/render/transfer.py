"""Appearance transfer from the actor's own frames: teeth, cheek bulge, folds and wrinkles that a
geometric warp cannot create, copied per facial region from donor frames of the same actor.

A warp (:mod:`facepipe.render.warp`) moves the actor's pixels to the edited mesh but never makes
new appearance: a smile warped onto a neutral face has no exposed teeth, no raised cheeks, no
nasolabial folds or crow's feet. Like Face2Face's mouth retrieval, this module looks for frames of
the shot (or of other shots of the same actor) that *show* the planned expression in one facial
region, warps their pixels into the current frame's edited geometry and hands the renderer a
colour-matched layer plus alpha to blend over the warped frame.

Two steps:

1. :func:`plan_transfer` (once per shot, on AU curves only, no pixels): per region and frame, the
   donor (a row of a :class:`DonorPool`) whose fitted AUs of that region are nearest the planned
   target, subject to

   - *better than the current frame*: the warp already shows the source frame's appearance, so a
     donor must be nearer the target than the source frame is (by ``min_gain`` and by the factor
     ``max_ratio``); never the current frame itself (``frame_rows``);
   - *pose*: the head rotation of donor and current frame within ``max_pose_deg`` (a penalty
     grows towards that limit);
   - *speech safety* (``speech_locked`` regions: the mouth): every speech AU of the donor
     (:data:`facepipe.plan.emotions.SPEECH_AUS` that the rig has: 17 18 22-27) within
     ``speech_tol`` of the *current source frame's* value, so the opening and lip shape always come
     from the current frame; regions without speech (cheeks, eyes, brows) skip this;
   - *the actor's own business*: AUs the planner never changes but which shape a region (cheek
     puff AU34 for mouth and cheeks, jaw sideways AU30 for the mouth: the region's ``locked``)
     must match the current source frame's within ``lock_tol``;
   - *no copied blinks*: the eye region refuses donors whose lids close (AU45 above 0.3, the
     region's ``donor_max``);
   - *sharp donors*: with the pool's landmark speeds, a donor whose region moves fast (motion
     blur) costs more, and above ``max_speed`` is not allowed;
   - *temporal coherence*: a Viterbi pass per region over the donors plus a "none" state (the
     current frame, cost = its own distance to the target), a constant ``switch_cost`` for every
     change, and a hard minimum span of ``min_hold`` frames (states carry a hold counter; the
     min-over-previous of each step uses the best and second-best score, so a step is O(M));
     consecutive donors cross-fade over ``crossfade`` frames (each frame blends at most two
     donors, ``mix`` is donor_b's share), and where the region turns on or off its alpha eases in
     or out over ``crossfade`` frames inside the donor's span.

   Where two donors cannot cross-fade (neither may be shown on the other's side of the change: a
   "hard cut"), alpha dips to ~0 across the change instead, so teeth never pop.

   The blend strength is ``alpha = ease(t) * weight(t) * strength``: 0 wherever the plan does
   nothing, linear in the global appearance ``strength`` (the emotion / speech trade-off knob).
   Frames where the plan acts on a region but no donor qualifies fall back (alpha 0) and
   :meth:`TransferPlan.report` counts them, with the reasons.

2. :func:`render_transfer` (per frame, pixels): for every region with alpha > 0, the region's
   triangles of the current *edited* mesh are rasterised inside their bounding box, the donor's
   tracked landmarks are interpolated with those barycentrics and the donor crop is sampled there
   (``grid_sample``): the donor's appearance in the current edited geometry. Its low frequencies
   are replaced by the current (warped) frame's: ``donor * blur(current) / blur(donor)`` (normalised
   convolution inside the region's skin, a Gaussian of ``gain_sigma`` x region size, the gain
   clamped to ``[1/max_gain, max_gain]``), so only mid/high-frequency appearance (teeth, folds,
   wrinkles) is transferred and the shading stays the current frame's. Neighbouring regions
   overlap by a ring of triangles; inside the union of the active regions, their layers and alphas
   are averaged with each region's own feathered coverage as weight (so one region's layer
   cross-dissolves into the next across the overlap, with no seam or dip), and the union's
   coverage feathered inside its outline (:func:`feather_inside`: 0 on the outline, 1 at
   ``feather`` x face size inside) makes the outer edge soft: ``alpha = U * sum(m_r a_r) / sum(m_r)``,
   ``layer = sum(m_r a_r L_r) / sum(m_r a_r)``. Alpha is forced to 0 inside the eye openings of the
   edited mesh (lids, iris and gaze always stay the current frame's). Motion blur is *not* applied unless a ``velocity`` is given (then
   :func:`facepipe.composite.reblur.reblur` smears the layer like the plate); by default the
   renderer does it on the composited face.

Regions (:func:`facemesh_regions`, on the 468-vertex FaceMesh topology; distances on the model
template, unit = inter-ocular distance (IOD), "geodesic" = shortest edge path over the mesh, which
goes around the eye and mouth holes; a triangle belongs to a region when all three of its
vertices do):

No region has a triangle touching a lid contour (the lids' margins), so the eye openings, lid
margins, iris / gaze and blinks are never transferred.

- ``mouth`` (speech locked): vertices within 0.14 geodesic of the outer lip contour or inside it
  (the lips plus the first ring of skin around them), plus the mouth interior: a fan of the inner-lip loop around an
  added centroid vertex (index 468 of the extended vertex array), so teeth come along. The fan is
  left out of the colour statistics (bright teeth must not darken the lips).
- ``cheeks`` (cheeks and nasolabial area): vertices between 0.25 IOD below the lip corners and
  0.07 below the lowest lower-lid vertex, at least 0.16 IOD from the midline (the nose dorsum
  stays, the wings and the folds from them to the lip corners come), never strictly inside the
  outer lip contour (the lips carry speech): the cheeks reach the contour, overlapping the mouth's
  skin ring.
- ``eyes`` (skin around the eyes only): vertices up to 0.30 IOD geodesic from the lid contours,
  below the eye corners or lateral of the outer corner (up to 0.12 above it): lower-lid bulge and
  crow's feet, never the upper lid.
- ``brows`` (brows and forehead): vertices at least 0.10 IOD above the eye corners (above the
  upper-lid crease) and 0.08 geodesic from the lids.

Everything is torch (device-agnostic; the planner's small tensors run on CPU).

Shapes: T frames of the current shot, M pool rows, K AUs, N = 468 mesh vertices, R regions.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from facepipe.composite._filters import gaussian_blur
from facepipe.composite.matte import polygon_mask
from facepipe.face import topology as topo
from facepipe.plan import emotions as em
from facepipe.render.barycentric import Box, interpolate, rasterize_barycentric
from facepipe.render.warp import EYE_L, EYE_R, MOUTH, _inside, face_box

# ----------------------------------------------------------------------------- regions


@dataclass(frozen=True, eq=False)
class TransferRegion:
    """A facial region transferred from one donor at a time.

    name: e.g. ``"mouth"``; triangles: (F_r,3) int64 vertex indices into the *extended* vertex
    array (the N mesh vertices followed by the extra vertices below, see :meth:`extend`);
    aus / weights: the AU names that decide the donor and their weights in the cost (AUs the rig
    lacks are ignored); speech_locked: the donor's speech AUs must match the current source frame's
    (within ``speech_tol``, see :class:`TransferConfig`); locked: AUs the plan never changes that
    shape the region (cheek puff, jaw sideways): the donor's must match the current source frame's
    within ``lock_tol``; n_vertices: N, the mesh the indices refer to;
    extra_vertices: per extra vertex the base vertices it is the mean of (the mouth centroid);
    interior: (F_r,) bool triangles left out of the colour statistics (the mouth interior), or
    None; donor_max: (AU name, value) pairs a donor may not exceed (the eyes: no closing lids);
    occluders: (F_o,3) the other triangles of the mesh (base vertex indices): when the renderer
    gives per-vertex depth they join the z-buffer, so a part of the region hidden behind the
    face (the far cheek behind the nose on a turned head) is not transferred; None: no occlusion.
    """

    name: str
    triangles: np.ndarray
    aus: tuple[str, ...]
    weights: tuple[float, ...]
    speech_locked: bool = False
    locked: tuple[str, ...] = ()
    n_vertices: int = topo.N_VERTICES
    extra_vertices: tuple[tuple[int, ...], ...] = ()
    interior: np.ndarray | None = None
    donor_max: tuple[tuple[str, float], ...] = ()
    occluders: np.ndarray | None = None

    def __post_init__(self):
        if len(self.aus) != len(self.weights):
            raise ValueError(f"region {self.name}: {len(self.aus)} AUs but {len(self.weights)} weights")
        tris = np.asarray(self.triangles, np.int64).reshape(-1, 3)
        if tris.size and (tris.min() < 0 or tris.max() >= self.n_vertices + len(self.extra_vertices)):
            raise ValueError(f"region {self.name}: triangle index out of range")
        object.__setattr__(self, "triangles", tris)
        if self.occluders is not None:
            occ = np.asarray(self.occluders, np.int64).reshape(-1, 3)
            if occ.size and (occ.min() < 0 or occ.max() >= self.n_vertices):
                raise ValueError(f"region {self.name}: occluder index out of range")
            object.__setattr__(self, "occluders", occ)

    @property
    def vertex_ids(self) -> np.ndarray:
        """(U,) the sorted extended-vertex indices the region's triangles use."""
        return np.unique(self.triangles)

    def extend(self, vertices: torch.Tensor) -> torch.Tensor:
        """Vertices (N,C) -> (N + E, C): the extra vertices (means of base vertices) appended."""
        v = torch.as_tensor(vertices)
        if len(v) != self.n_vertices:
            raise ValueError(f"region {self.name}: {len(v)} vertices, expected {self.n_vertices}")
        if not self.extra_vertices:
            return v
        extra = torch.stack([v[list(ids)].mean(0) for ids in self.extra_vertices])
        return torch.cat([v, extra.to(v.dtype)])


def _lip_loops():
    outer = (topo.MOUTH_CORNER_R, *topo.LIP_OUTER_UPPER, topo.MOUTH_CORNER_L, *reversed(topo.LIP_OUTER_LOWER))
    return outer, MOUTH.loop


def _tris_of(tris: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return tris[keep[tris].all(1)]


@lru_cache(maxsize=4)
def _facemesh_regions_cached(template_bytes: bytes, tris_bytes: bytes, shape) -> tuple[TransferRegion, ...]:
    # The AUs of a region: those that shape its appearance, planned or not. AUs the planner never
    # changes (cheek puff 34, jaw sideways 30) have target == source, so they only keep donors
    # that differ from the current frame there (a puffed cheek) from being chosen.
    v = np.frombuffer(template_bytes, np.float32).reshape(shape)
    tris = np.frombuffer(tris_bytes, np.int64).reshape(-1, 3)
    n = len(v)
    x, y = v[:, 0], v[:, 1]
    ax = np.abs(x)
    outer, inner = _lip_loops()
    lids = [*EYE_R.loop, *EYE_L.loop]
    d_lid = topo.geodesic_distances(v, tris, lids)
    d_lip = topo.geodesic_distances(v, tris, list(outer))
    in_lips = _inside(torch.tensor(v[:, :2]), torch.tensor(v[list(outer), :2])).numpy()
    in_lips |= np.isin(np.arange(n), outer)
    y_corner_eye = float(v[[topo.EYE_OUTER_R, topo.EYE_OUTER_L], 1].mean())
    y_lower_lid = float(v[[*topo.LOWER_LID_R, *topo.LOWER_LID_L], 1].min())
    y_mouth = float(v[[topo.MOUTH_CORNER_R, topo.MOUTH_CORNER_L], 1].mean())
    x_outer = float(np.abs(v[[topo.EYE_OUTER_R, topo.EYE_OUTER_L], 0]).mean())
    margin = d_lid > 0.01  # triangles touching the lid contours (the lids' margins) never come
    lips = in_lips & (d_lip > 0)  # strictly inside the outer lip contour

    # mouth: lips + the first ring of skin, and a fan of the inner-lip loop around its centroid
    mouth_v = (in_lips | (d_lip <= 0.14)) & margin
    mouth_t = _tris_of(tris, mouth_v)
    c = n  # the added centroid vertex
    loop = list(inner)
    fan = np.array([(loop[i], loop[(i + 1) % len(loop)], c) for i in range(len(loop))], np.int64)
    mouth_tris = np.concatenate([mouth_t, fan])
    interior = np.r_[np.zeros(len(mouth_t), bool), np.ones(len(fan), bool)]

    # cheeks reach the outer lip contour (overlapping the mouth's skin ring), never inside it
    cheek_v = (y >= y_mouth - 0.25) & (y <= y_lower_lid - 0.07) & (ax >= 0.16) & ~lips & margin
    eye_v = margin & (d_lid <= 0.30) & ((y <= y_corner_eye) | (ax >= x_outer)) & (y <= y_corner_eye + 0.12)
    brow_v = margin & (d_lid >= 0.08) & (y >= y_corner_eye + 0.10)

    regions = (
        TransferRegion(
            "mouth", mouth_tris,
            ("AU10", "AU12R", "AU12L", "AU14R", "AU14L", "AU15", "AU20", "AU9", "AU6",
             "AU17", "AU18", "AU22", "AU23", "AU24", "AU25", "AU26", "AU27", "AU28",
             "AU34", "AU30R", "AU30L"),
            (1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 1.0, 0.3, 0.3,
             0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
             1.0, 0.5, 0.5),
            speech_locked=True, locked=("AU34", "AU30R", "AU30L"), n_vertices=n, extra_vertices=(tuple(loop),),
            interior=interior,
        ),
        TransferRegion(
            "cheeks", _tris_of(tris, cheek_v),
            ("AU6", "AU12R", "AU12L", "AU14R", "AU14L", "AU10", "AU9", "AU11", "AU13", "AU15", "AU20",
             "AU25", "AU26", "AU34", "AU30R", "AU30L"),
            (1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.2, 0.2, 1.0, 0.3, 0.3),
            locked=("AU34",), n_vertices=n,
        ),
        TransferRegion(
            "eyes", _tris_of(tris, eye_v),
            ("AU6", "AU7", "AU12R", "AU12L", "AU9"),
            (1.0, 1.0, 0.3, 0.3, 0.3),
            n_vertices=n, donor_max=(("AU43", 0.3), ("AU45", 0.3), ("AU45R", 0.3), ("AU45L", 0.3)),
        ),
        TransferRegion(
            "brows", _tris_of(tris, brow_v),
            ("AU1", "AU2", "AU4", "AU9"),
            (1.0, 1.0, 1.0, 0.3),
            n_vertices=n,
        ),
    )
    out = []
    for r in regions:
        own = {tuple(sorted(t)) for t in r.triangles.tolist()}
        occ = np.array([t for t in tris.tolist() if tuple(sorted(t)) not in own], np.int64).reshape(-1, 3)
        out.append(dataclasses.replace(r, occluders=occ))
    return tuple(out)


def facemesh_regions(model) -> tuple[TransferRegion, ...]:
    """The four default regions (mouth, cheeks, eyes, brows) of the 468-vertex FaceMesh topology,
    chosen from the geometry of ``model``'s template (a :class:`~facepipe.face.model.FaceModel`;
    see the module docstring for the rules). Cached per model."""
    v = np.ascontiguousarray(model.template, np.float32)
    if len(v) != topo.N_VERTICES:
        raise ValueError(f"facemesh_regions needs the {topo.N_VERTICES}-vertex FaceMesh topology, got {len(v)}")
    t = np.ascontiguousarray(model.triangles, np.int64)
    return _facemesh_regions_cached(v.tobytes(), t.tobytes(), v.shape)


# ----------------------------------------------------------------------------- donors and config


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
    adds a cost and above ``TransferConfig.max_speed`` rules the frame out for that region
    (NaN: not usable). None: every donor counts as still.
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


@dataclass(frozen=True)
class TransferConfig:
    """Donor choice and rendering settings (defaults in brackets).

    strength [1.0]: global appearance strength 0..1, multiplies every alpha.
    switch_cost [0.2]: Viterbi cost of any change of donor (or on/off), in units of the per-frame
        cost (a weighted mean squared AU error: 0.2 = 20 frames of 0.1 AU RMS better).
    min_hold [8]: frames a chosen donor (or the fallback) is held at least (a span cut by the
        shot's end may be shorter).
    crossfade [6]: frames over which consecutive donors cross-fade and alpha eases in/out.
    max_pose_deg [20]: donors whose head rotation differs more from the current frame's are not
        allowed; pose_weight [0.05]: cost added at that limit (quadratic in the angle).
    speech_tol [0.1]: speech-locked regions: every speech AU of the donor within this of the
        current source's; speech_aus: the FACS numbers that carry speech (the planner's).
    lock_tol [0.2]: a region's ``locked`` AUs (cheek puff, jaw sideways: the planner never changes
        them) of the donor within this of the current source's.
    min_gain [0.005], max_ratio [0.7]: a donor must be nearer the planned target than the current
        source frame by ``min_gain`` and by the factor ``max_ratio`` (else that frame falls back).
    speed_weight [0.01], speed_ref [0.01], max_speed [0.05]: with the pool's landmark speeds, a
        donor's region moving at ``speed_ref`` IOD/frame costs ``speed_weight`` (quadratic), above
        ``max_speed`` it is not allowed (motion blur).
    candidates [16]: with pools over 256 rows, the DP runs on the union of every frame's best
        ``candidates`` donors per region.
    feather [0.06]: alpha rises from 0 on the outline of the transferred area to 1 at this fraction
        of the face size (:func:`face_scale`: sqrt of the edited mesh's bounding-box area) inside it.
    gain_sigma [0.2]: the colour gain's Gaussian, as a fraction of the region's size;
    max_gain [2.0]: the gain is clamped to [1/max_gain, max_gain].
    """

    strength: float = 1.0
    switch_cost: float = 0.2
    min_hold: int = 8
    crossfade: int = 6
    max_pose_deg: float = 20.0
    pose_weight: float = 0.05
    speech_tol: float = 0.1
    lock_tol: float = 0.2
    speech_aus: frozenset[int] = em.SPEECH_AUS
    min_gain: float = 0.005
    max_ratio: float = 0.7
    speed_weight: float = 0.01
    speed_ref: float = 0.01
    max_speed: float = 0.05
    candidates: int = 16
    feather: float = 0.06
    gain_sigma: float = 0.2
    max_gain: float = 2.0

    def __post_init__(self):
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength {self.strength} is outside 0..1")
        if self.min_hold < 1 or self.crossfade < 0:
            raise ValueError("min_hold must be >= 1 and crossfade >= 0")


# ----------------------------------------------------------------------------- the plan


@dataclass
class TransferPlan:
    """Per-region donor sequence of a shot.

    regions: R region names; donor_a, donor_b: (R,T) int64 pool rows (-1: none; donor_b is only set
    inside a cross-fade); mix: (R,T) float32 0..1 share of donor_b; alpha: (R,T) float32 blend
    strength (0 wherever donor_a is -1); fallback: (R,T) bool frames where the plan changes the
    region but no donor qualified; pool_clip, pool_frame: (M,) the pool's (clip, frame) per row;
    reasons: per region, why frames fell back, {reason: frames}; hard_cuts: per region, donor
    changes that could not cross-fade (the neighbouring donor was not allowed there).
    """

    regions: list
    donor_a: np.ndarray
    donor_b: np.ndarray
    mix: np.ndarray
    alpha: np.ndarray
    fallback: np.ndarray
    pool_clip: np.ndarray
    pool_frame: np.ndarray
    reasons: list = field(default_factory=list)
    hard_cuts: list = field(default_factory=list)

    @property
    def frame_count(self) -> int:
        return self.alpha.shape[1]

    def rows_used(self) -> np.ndarray:
        """(U,) int64 sorted unique pool rows any frame needs (the renderer decodes only these)."""
        on = self.alpha > 0
        rows = np.concatenate([self.donor_a[on], self.donor_b[on & (self.mix > 0)]])
        return np.unique(rows[rows >= 0]).astype(np.int64)

    def rows_at(self, t: int) -> np.ndarray:
        """(U,) int64 pool rows frame ``t`` needs."""
        on = self.alpha[:, t] > 0
        rows = np.concatenate([self.donor_a[on, t], self.donor_b[on & (self.mix[:, t] > 0), t]])
        return np.unique(rows[rows >= 0]).astype(np.int64)

    def report(self) -> dict:
        """Per region: frames_transferred (alpha > 0), frames_fallback (the plan changes the region
        but nothing qualified), donors (list of (clip, frame), in order of first use), switches
        (donor changes), hard_cuts and reason (a sentence)."""
        out = {}
        for r, name in enumerate(self.regions):
            on = self.alpha[r] > 0
            seq = np.where(on, self.donor_a[r], -1)
            donors = []
            for d in seq[on]:
                key = (int(self.pool_clip[d]), int(self.pool_frame[d]))
                if key not in donors:
                    donors.append(key)
            used = self.donor_a[r][self.donor_a[r] >= 0]
            switches = int((used[1:] != used[:-1]).sum()) if len(used) > 1 else 0
            reasons = self.reasons[r] if r < len(self.reasons) else {}
            n_fb = int(self.fallback[r].sum())
            if n_fb:
                why = "; ".join(f"{k}: {v} frames" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
                reason = f"fell back on {n_fb} frames ({why})"
            elif on.any():
                reason = "transferred wherever the plan changes the region"
            else:
                reason = "the plan does not change this region"
            out[name] = {
                "frames_transferred": int(on.sum()),
                "frames_fallback": n_fb,
                "donors": donors,
                "switches": switches,
                "hard_cuts": int(self.hard_cuts[r]) if r < len(self.hard_cuts) else 0,
                "reason": reason,
            }
        return out


def _quaternions(rotvec: torch.Tensor) -> torch.Tensor:
    """(...,3) axis-angle -> (...,4) unit quaternions (w, x, y, z)."""
    theta = rotvec.norm(dim=-1, keepdim=True)
    axis = rotvec / theta.clamp_min(1e-12)
    return torch.cat([torch.cos(0.5 * theta), axis * torch.sin(0.5 * theta)], -1)


def _columns(names: Sequence[str], au_names: Sequence[str]) -> list[int]:
    idx = {n: k for k, n in enumerate(au_names)}
    return [idx[n] for n in names if n in idx]


class _RegionCost:
    """Per-frame unary costs of one region: donors (T', M) and the current frame (T',)."""

    def __init__(self, region, pool, source, target, rotation, frame_rows, au_names, cfg, dev):
        names = [n for n in region.aus if n in au_names]
        w = [wt for n, wt in zip(region.aus, region.weights) if n in au_names]
        self.cols = _columns(names, au_names)
        wsum = max(sum(w), 1e-12)
        self.w = torch.tensor(w, device=dev, dtype=torch.float32) / wsum
        self.pool_au = torch.as_tensor(pool.au, device=dev)[:, self.cols]  # (M,k)
        self.source, self.target = source[:, self.cols], target[:, self.cols]
        self.q_pool = _quaternions(torch.as_tensor(pool.rotation, device=dev))
        self.q_cur = _quaternions(rotation)
        ok = torch.as_tensor(pool.usable, device=dev).clone()
        for name, top in region.donor_max:
            if name in au_names:
                ok &= torch.as_tensor(pool.au[:, au_names.index(name)], device=dev) <= top
        self.donor_ok = ok
        lock = {}
        if region.speech_locked:
            lock.update({c: cfg.speech_tol for c in em.columns_of(cfg.speech_aus, au_names)})
        for name in region.locked:
            if name in au_names:
                lock.setdefault(au_names.index(name), cfg.lock_tol)
        self.speech = sorted(lock)
        self.tol = torch.tensor([lock[c] for c in self.speech], device=dev, dtype=torch.float32)
        self.pool_speech = torch.as_tensor(pool.au, device=dev)[:, self.speech]
        self.source_speech = source[:, self.speech]
        self.frame_rows = frame_rows
        self.cfg = cfg
        self.speed_cost = torch.zeros(len(pool), device=dev)
        if pool.speed is not None:
            base = [i for i in region.vertex_ids.tolist() if i < pool.speed.shape[1]]
            sp = torch.as_tensor(pool.speed[:, base], device=dev).mean(1)
            self.donor_ok &= torch.isfinite(sp) & (sp <= cfg.max_speed)
            self.speed_cost = cfg.speed_weight * (sp.nan_to_num(0.0) / max(cfg.speed_ref, 1e-9)) ** 2

    def current(self) -> torch.Tensor:
        """(T,) the current source frame's cost (its distance to the target)."""
        return ((self.source - self.target) ** 2 * self.w).sum(-1)

    def __call__(self, t0: int, t1: int, rows: torch.Tensor | None = None):
        """Costs (t1-t0, M') of the donors (all, or ``rows``) at frames t0..t1-1, inf where not
        allowed, and the reason masks (t1-t0, M') bool: better, pose_ok, speech_ok."""
        cfg = self.cfg
        sel = slice(None) if rows is None else rows
        a = self.pool_au[sel]  # (M',k)
        g = self.target[t0:t1]  # (n,k)
        # sum_k w_k (a_k - g_k)^2 = w.a^2 - 2 (w g).a + w.g^2, as a matmul (n,M')
        au_cost = ((a * a) @ self.w)[None] - 2.0 * (g * self.w) @ a.T + ((g * g) @ self.w)[:, None]
        au_cost = au_cost.clamp_min(0.0)
        c0 = self.current()[t0:t1, None]
        better = (au_cost + cfg.min_gain <= c0) & (au_cost <= cfg.max_ratio * c0)
        dot = (self.q_cur[t0:t1] @ self.q_pool[sel].T).abs().clamp(max=1.0)
        angle = torch.rad2deg(2.0 * torch.acos(dot))
        pose_ok = angle <= cfg.max_pose_deg
        if self.speech:
            diff = (self.pool_speech[sel][None] - self.source_speech[t0:t1, None]).abs()
            speech_ok = (diff <= self.tol + 1e-6).all(-1)
        else:
            speech_ok = torch.ones_like(better)
        ok = better & pose_ok & speech_ok & self.donor_ok[sel][None]
        rows_idx = torch.arange(len(self.pool_au), device=a.device)[sel]
        fr = self.frame_rows[t0:t1, None]
        ok &= rows_idx[None] != fr  # never the current frame itself
        cost = au_cost + cfg.pose_weight * (angle / max(cfg.max_pose_deg, 1e-6)) ** 2 + self.speed_cost[sel][None]
        cost = torch.where(ok, cost, torch.full_like(cost, math.inf))
        return cost, better & self.donor_ok[sel][None] & (rows_idx[None] != fr), pose_ok, speech_ok


def viterbi_hold(unary: torch.Tensor, switch_cost: float, min_hold: int = 1) -> torch.Tensor:
    """The state sequence (T,) int64 minimising sum_t unary[t, s_t] + switch_cost * #changes,
    where every run of a state lasts at least ``min_hold`` frames (except one cut by the end).

    unary: (T,S) float, inf = state not allowed at that frame (some state must be finite on every
    frame). States carry a hold counter 1..min_hold; entering a state takes the best of all
    *other* states' held scores (best or second best: O(S) per frame), so the cost is O(T*S*H) time
    and the back-pointers O(T*S) bits.
    """
    T, S = unary.shape
    H = max(1, int(min_hold))
    dev = unary.device
    inf = torch.tensor(math.inf, device=dev)
    if T == 0:
        return torch.zeros(0, dtype=torch.long, device=dev)
    V = torch.full((S, H), math.inf, device=dev)
    V[:, 0] = unary[0]
    came_stay = torch.zeros(T, S, dtype=torch.bool, device=dev)  # held level: from H-1 (stay) vs H-2
    switched = torch.zeros(T, S, dtype=torch.bool, device=dev)  # H == 1: entered by a switch
    best = torch.zeros(T, 2, dtype=torch.long, device=dev)
    ar = torch.arange(S, device=dev)
    for t in range(1, T):
        held = V[:, H - 1]
        if S > 1:
            two = torch.topk(held, 2, largest=False)
            b1, b2 = two.indices[0], two.indices[1]
            enter = torch.where(ar == b1, held[b2], held[b1]) + switch_cost
        else:
            b1 = b2 = torch.tensor(0, device=dev)
            enter = torch.full((S,), math.inf, device=dev)
        best[t, 0], best[t, 1] = b1, b2
        u = unary[t]
        new = torch.empty_like(V)
        if H == 1:
            sw = enter < held
            switched[t] = sw
            new[:, 0] = torch.where(sw, enter, held) + u
        else:
            new[:, 0] = enter + u
            if H > 2:
                new[:, 1 : H - 1] = V[:, 0 : H - 2] + u[:, None]
            stay = held <= V[:, H - 2]
            came_stay[t] = stay
            new[:, H - 1] = torch.where(stay, held, V[:, H - 2]) + u
        V = torch.where(torch.isnan(new), inf, new)
    flat = V.reshape(-1)
    k = int(torch.argmin(flat))
    s, level = k // H, k % H
    out = torch.empty(T, dtype=torch.long)
    best_c, stay_c, sw_c = best.cpu(), came_stay.cpu(), switched.cpu()
    for t in range(T - 1, -1, -1):
        out[t] = s
        if t == 0:
            break
        if H == 1:
            if bool(sw_c[t, s]):
                b1, b2 = int(best_c[t, 0]), int(best_c[t, 1])
                s = b2 if b1 == s else b1
        elif level == H - 1:
            level = H - 1 if bool(stay_c[t, s]) else H - 2
        elif level > 0:
            level -= 1
        else:
            b1, b2 = int(best_c[t, 0]), int(best_c[t, 1])
            s, level = (b2 if b1 == s else b1), H - 1
    return out.to(dev)


def _spans(seq: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs (start, end exclusive, value) of a 1D sequence."""
    out, start = [], 0
    for t in range(1, len(seq) + 1):
        if t == len(seq) or seq[t] != seq[start]:
            out.append((start, t, int(seq[start])))
            start = t
    return out


def _crossfade(seq: np.ndarray, allowed, fade: int):
    """Donor pairs and mixes for a state sequence (T,) (-1 = none).

    allowed(t, d) -> bool: may donor d be shown at frame t. Each change between two donors A -> B
    at frame s cross-fades over up to ``fade`` frames around s: frames before s also need B
    allowed, frames after s A allowed (each side at most half its span). Returns donor_a,
    donor_b (T,) int64, mix (T,) float32 and the frames s of the hard cuts (changes where
    neither donor may be shown on the other's side: alpha dips to ~0 there instead, see
    :func:`_ease`).
    """
    T = len(seq)
    a = seq.astype(np.int64).copy()
    b = np.full(T, -1, np.int64)
    mix = np.zeros(T, np.float32)
    spans = _spans(seq)
    hard = []
    for (s0, s1, A), (_, e1, B) in itertools.pairwise(spans):
        if A < 0 or B < 0 or fade <= 0:
            continue
        s = s1
        cap_before, cap_after = (s1 - s0) // 2, (e1 - s) // 2
        nb = 0
        while nb < min(cap_before, fade) and allowed(s - 1 - nb, B):
            nb += 1
        na = 0
        while na < min(cap_after, fade) and allowed(s + na, A):
            na += 1
        before = min(nb, (fade + 1) // 2)
        after = min(na, fade - before)
        before = min(nb, fade - after)
        n = before + after
        if n == 0:
            hard.append(s)
            continue
        for i, t in enumerate(range(s - before, s + after)):
            a[t], b[t] = A, B
            x = (i + 1) / (n + 1)
            mix[t] = x * x * (3.0 - 2.0 * x)  # smoothstep
    return a, b, mix, hard


def _ease(on: np.ndarray, cuts: Sequence[int], fade: int) -> np.ndarray:
    """(T,) float32 0..1: 0 where ``on`` (T,) bool is False, easing (smoothstep) to 1 over
    ``fade`` frames away from every off frame and every hard cut (a cut at s sits between frames
    s-1 and s, which get half a frame's distance: alpha dips to ~0 across it, so one donor never
    replaces another at full strength)."""
    T = len(on)
    if fade <= 0:
        return on.astype(np.float32)
    ev = np.sort(np.r_[np.nonzero(~on)[0].astype(np.float64), np.asarray(cuts, np.float64) - 0.5])
    if len(ev) == 0:
        return np.ones(T, np.float32)
    n = np.arange(T, dtype=np.float64)
    i = np.searchsorted(ev, n)
    before = np.where(i > 0, n - ev[np.maximum(i - 1, 0)], np.inf)
    after = np.where(i < len(ev), ev[np.minimum(i, len(ev) - 1)] - n, np.inf)
    x = np.clip(np.minimum(np.abs(before), np.abs(after)) / (fade + 1.0), 0.0, 1.0)
    return np.where(on, x * x * (3.0 - 2.0 * x), 0.0).astype(np.float32)


def plan_transfer(
    pool: DonorPool,
    source_au,
    target_au,
    rotation,
    weight,
    au_names: Sequence[str],
    frame_rows=None,
    config: TransferConfig | None = None,
    regions: Sequence[TransferRegion] | None = None,
) -> TransferPlan:
    """Choose each region's donors over a shot.

    pool: the candidates; source_au, target_au: (T,K) the shot's fitted and planned AUs (columns
    ``au_names``, as the pool's); rotation: (T,3) the shot's head rotation (axis-angle); weight:
    (T,) plan weight 0..1; frame_rows: (T,) int pool row of each current frame (-1 none; default:
    row t when the pool's clip-0 rows are exactly this shot's frames 0..T-1, else none);
    regions: default :func:`facepipe_regions` of the shipped rig. Numpy or torch inputs.
    Returns a :class:`TransferPlan` (numpy arrays).
    """
    cfg = config or TransferConfig()
    if regions is None:
        from facepipe.face.model import load_model

        regions = facemesh_regions(load_model())
    au_names = list(au_names)
    dev = torch.device("cpu")

    def f32(x):
        return torch.as_tensor(np.asarray(x.cpu() if torch.is_tensor(x) else x), dtype=torch.float32, device=dev)

    src, tgt, rot = f32(source_au), f32(target_au), f32(rotation).reshape(-1, 3)
    w = f32(weight).reshape(-1).clamp(0.0, 1.0)
    T, M = src.shape[0], len(pool)
    if pool.au.shape[1] != src.shape[1]:
        raise ValueError(f"the pool has {pool.au.shape[1]} AU columns, the shot {src.shape[1]}")
    if frame_rows is None:
        own = np.nonzero(pool.clip == 0)[0]
        fr = np.full(T, -1, np.int64)
        if len(own) == T and (pool.frame[own] == np.arange(T)).all():
            fr = own
    else:
        fr = np.asarray(frame_rows.cpu() if torch.is_tensor(frame_rows) else frame_rows, np.int64).reshape(T)
    fr_t = torch.as_tensor(fr, device=dev)

    R = len(regions)
    donor_a = np.full((R, T), -1, np.int64)
    donor_b = np.full((R, T), -1, np.int64)
    mix = np.zeros((R, T), np.float32)
    alpha = np.zeros((R, T), np.float32)
    fallback = np.zeros((R, T), bool)
    reasons, hard_cuts = [], []
    chunk = max(1, (1 << 22) // max(1, M * 8))
    for r, region in enumerate(regions):
        rc = _RegionCost(region, pool, src, tgt, rot, fr_t, au_names, cfg, dev)
        c0 = rc.current()
        acts = (w > 0) & (c0 >= cfg.min_gain)
        # candidate donors: every frame's best few (all of them for small pools)
        if M > 256:
            keep = torch.zeros(M, dtype=torch.bool)
            for t0 in range(0, T, chunk):
                cost = rc(t0, min(T, t0 + chunk))[0]
                k = min(cfg.candidates, M)
                val, idx = torch.topk(cost, k, dim=1, largest=False)
                keep[idx[torch.isfinite(val)]] = True
            rows = keep.nonzero().squeeze(1)
        else:
            rows = torch.arange(M)
        parts, code = [], torch.zeros(T, dtype=torch.long)  # first filter that left no donor
        for t0 in range(0, T, chunk):
            t1 = min(T, t0 + chunk)
            cost, better, pose_ok, speech_ok = rc(t0, t1, rows)
            parts.append(cost)
            c = torch.full((t1 - t0,), 3, dtype=torch.long)  # 3: donors existed (held off)
            c[~(better & pose_ok & speech_ok).any(1)] = 2
            c[~(better & pose_ok).any(1)] = 1
            c[~better.any(1)] = 0
            code[t0:t1] = c
        cost = torch.cat(parts) if parts else torch.zeros(T, 0)
        # where the plan does not act on the region, nothing is transferred
        cost = torch.where(acts[:, None], cost, torch.full_like(cost, math.inf))
        unary = torch.cat([cost, c0[:, None]], 1)  # last state: none (the current frame)
        S = unary.shape[1]
        seq = viterbi_hold(unary, cfg.switch_cost, cfg.min_hold).numpy()
        row_of = np.r_[rows.numpy(), -1]
        seq_rows = row_of[seq]
        finite = torch.isfinite(unary).numpy()
        inv = {int(rw): j for j, rw in enumerate(rows.numpy())}

        def allowed(t, d, finite=finite, inv=inv):
            return 0 <= t < T and bool(finite[t, inv[d]])

        a_r, b_r, m_r, hard = _crossfade(seq_rows, allowed, cfg.crossfade)
        ease = torch.as_tensor(_ease(seq != S - 1, hard, cfg.crossfade))
        al = (ease * w * cfg.strength).numpy().astype(np.float32)
        al[seq == S - 1] = 0.0
        off = al <= 0
        a_r[off], b_r[off], m_r[off] = -1, -1, 0.0
        donor_a[r], donor_b[r], mix[r], alpha[r] = a_r, b_r, m_r, al
        fallback[r] = acts.numpy() & (seq == S - 1)
        names = (
            "no donor nearer the target than the current frame",
            "pose too different",
            "speech (or an unplanned AU: puff, jaw) does not match",
            "held off (no donor worth a switch: min_hold, switch_cost, motion)",
        )
        fb_codes = code.numpy()[fallback[r]]
        why = {names[k]: int((fb_codes == k).sum()) for k in range(4) if (fb_codes == k).any()}
        reasons.append(why)
        hard_cuts.append(len(hard))
    return TransferPlan(
        regions=[rg.name for rg in regions],
        donor_a=donor_a,
        donor_b=donor_b,
        mix=mix,
        alpha=alpha,
        fallback=fallback,
        pool_clip=pool.clip.copy(),
        pool_frame=pool.frame.copy(),
        reasons=reasons,
        hard_cuts=hard_cuts,
    )


# ----------------------------------------------------------------------------- rendering


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
    face size (sqrt of the vertices' bounding-box area), clipped to the frame ``size`` (H, W):
    where to cut a donor crop so that every region (and the bilinear taps at its edge) is inside."""
    v = torch.as_tensor(vertices).float()[..., :2].reshape(-1, 2)
    v = v[torch.isfinite(v).all(1)]
    ext = (v.amax(0) - v.amin(0)).clamp_min(1.0)
    return face_box([v], margin * float(ext.prod().sqrt()) + 2.0, size)


def cut_donor(frame: torch.Tensor, vertices, margin: float = 0.15) -> DonorImage:
    """A :class:`DonorImage` of frame (3,H,W) cropped with :func:`crop_box` (a copy, so the full
    frame can be freed)."""
    H, W = frame.shape[-2:]
    v = torch.as_tensor(vertices).float()[:, :2]
    x0, y0, x1, y1 = crop_box(v, (H, W), margin)
    return DonorImage(frame[:, y0:y1, x0:x1].clone(), v, (x0, y0))


def _sample_donors(sources, region: TransferRegion, tris: torch.Tensor, raster) -> torch.Tensor:
    """sum_i share_i * donor_i's pixels (3,h,w) at the donor positions of the raster's covered
    pixels, 0 where it covers nothing (one barycentric interpolation for all donors; only the
    covered pixels are sampled, as nothing outside the coverage is shown)."""
    dev = raster.bary.device
    pos = []
    for don, _ in sources:
        v = region.extend(torch.as_tensor(don.vertices, device=dev).float()[:, :2])
        pos.append(v - torch.tensor([float(don.offset[0]), float(don.offset[1])], device=dev))
    h, w = raster.tri.shape
    idx = (raster.tri.reshape(-1) >= 0).nonzero().squeeze(1)  # (P,) the covered pixels
    pos = interpolate(torch.cat(pos, 1), tris, raster).view(-1, h * w)
    pos = pos.index_select(1, idx)  # (2*n,P) donor-crop pixels
    acc = None
    for i, (don, share) in enumerate(sources):
        img = torch.as_tensor(don.image)
        if img.dtype != torch.float32 or img.device != dev:
            img = img.to(dev, torch.float32)
        hd, wd = img.shape[-2:]
        px, py = pos[2 * i], pos[2 * i + 1]
        grid = torch.stack([px * (2.0 / max(1, wd - 1)) - 1.0, py * (2.0 / max(1, hd - 1)) - 1.0], -1)
        s = F.grid_sample(img[None], grid[None, None], mode="bicubic", padding_mode="border", align_corners=True)[0, :, 0]
        acc = s * share if acc is None else acc + s * share
    return acc.new_zeros(3, h * w).index_copy_(1, idx, acc).view(3, h, w)


def low_frequency_gain(current: torch.Tensor, donor: torch.Tensor, weight: torch.Tensor, sigma: float,
                       max_gain: float = 2.0, work_sigma: float = 4.0) -> torch.Tensor:
    """Per-pixel colour gain (C,h,w) that gives ``donor * gain`` the current frame's low
    frequencies: blur(current) / blur(donor), both blurs normalised convolutions over ``weight``
    (1,h,w) (the pixels whose colours count), Gaussian ``sigma`` px, computed at a resolution where
    sigma is ``work_sigma`` px and upsampled bilinearly; clamped to [1/max_gain, max_gain], 1 far
    from any weighted pixel."""
    C, h, w = current.shape
    scale = min(1.0, work_sigma / max(sigma, 1e-6))
    hs, ws = max(1, round(h * scale)), max(1, round(w * scale))
    stack = torch.cat([current * weight, donor * weight, weight])[None]
    if scale < 1.0:
        stack = F.interpolate(stack, size=(hs, ws), mode="area")
    b = gaussian_blur(stack, sigma * scale, border="zeros")[0]
    den = b[2 * C :].clamp_min(1e-6)
    eps = 1e-3
    gain = ((b[:C] / den + eps) / (b[C : 2 * C] / den + eps)).clamp(1.0 / max_gain, max_gain)
    gain = torch.where(b[2 * C :] > 1e-4, gain, torch.ones_like(gain))
    if scale < 1.0:
        gain = F.interpolate(gain[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return gain


def _render_region(frame, dst_e, depth_e, region, sources, cfg, feather_px):
    """One region: (box, layer (3,h,w), cover (1,h,w) bool, matte (1,h,w) feathered coverage)
    or None."""
    H, W = frame.shape[-2:]
    dev = dst_e.device
    pts = dst_e[torch.as_tensor(region.vertex_ids, device=dev)]
    if not bool(torch.isfinite(pts).all()):
        return None
    box = face_box([pts], 2.0, (H, W))
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    if h < 2 or w < 2:
        return None
    off = torch.tensor([float(x0), float(y0)], device=dev)
    tris = torch.as_tensor(region.triangles, device=dev)
    if depth_e is not None and region.occluders is not None and len(region.occluders):
        # z-buffer the region against the rest of the mesh: hidden pixels are not the region's
        occ = torch.as_tensor(region.occluders, device=dev)
        raster = rasterize_barycentric(dst_e - off, torch.cat([tris, occ]), (h, w), depth_e)
        hidden = raster.tri >= len(tris)
        raster = raster._replace(tri=torch.where(hidden, torch.full_like(raster.tri, -1), raster.tri))
    else:
        raster = rasterize_barycentric(dst_e - off, tris, (h, w), depth_e)
    cover = raster.mask
    if not bool(cover.any()):
        return None
    acc = _sample_donors(sources, region, tris, raster)
    cur = frame[:, y0:y1, x0:x1].to(dev, torch.float32)
    skin = cover.clone()
    if region.interior is not None and bool(np.any(region.interior)):
        inner = torch.as_tensor(np.nonzero(region.interior)[0], device=dev)
        skin &= ~torch.isin(raster.tri, inner)
    size_r = math.sqrt(h * w)
    gain = low_frequency_gain(cur, acc, skin[None].float(), cfg.gain_sigma * size_r, cfg.max_gain)
    layer = (acc * gain).clamp(0.0, 1.0)
    matte = feather_inside(cover[None], feather_px)
    return box, layer, cover[None], matte


def feather_inside(cover: torch.Tensor, feather_px: float, work_px: float = 6.0) -> torch.Tensor:
    """A coverage mask (1,h,w) feathered inside its outline: 0 on and outside it, rising
    (smoothstep) to 1 at ``feather_px`` inside. The same construction as
    :func:`facepipe.composite.matte.face_matte` (a Gaussian of the coverage, sigma = feather / 2,
    remapped from its value on a straight outline, 0.5, to its value ``feather_px`` inside), but
    from a coverage already rasterised, at a resolution where the feather is ``work_px`` pixels."""
    c = cover.float()
    h, w = c.shape[-2:]
    sigma = 0.5 * max(feather_px, 1e-3)
    scale = min(1.0, work_px / max(feather_px, 1e-3))
    low = c[None]
    if scale < 1.0:
        low = F.interpolate(low, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")
    b = gaussian_blur(low, sigma * scale, border="zeros")
    hi = 0.5 * (1.0 + math.erf(2.0 / math.sqrt(2.0)))  # Phi(feather / sigma)
    x = ((b - 0.5) / (hi - 0.5)).clamp(0.0, 1.0)
    soft = x * x * (3.0 - 2.0 * x)
    if scale < 1.0:
        soft = F.interpolate(soft, size=(h, w), mode="bilinear", align_corners=False)
    return (soft[0] * c).clamp(0.0, 1.0)


def face_scale(vertices) -> float:
    """sqrt of the bounding-box area (px) of a face's vertices (N,2): the unit of ``feather``."""
    v = torch.as_tensor(vertices).float()[..., :2].reshape(-1, 2)
    v = v[torch.isfinite(v).all(1)]
    if len(v) == 0:
        return 1.0
    return float((v.amax(0) - v.amin(0)).clamp_min(1.0).prod().sqrt())


def render_transfer_box(
    frame: torch.Tensor,
    dst,
    donors: Mapping[int, DonorImage],
    plan: TransferPlan,
    t: int,
    regions: Sequence[TransferRegion] | None = None,
    *,
    depth=None,
    config: TransferConfig | None = None,
    velocity=None,
    shutter: float = 180.0,
):
    """Like :func:`render_transfer`, but only the box the transfer touches:
    (box (x0, y0, x1, y1) half-open, layer (3,h,w), alpha (1,h,w)), or None when nothing is
    transferred at frame ``t``."""
    cfg = config or TransferConfig()
    if regions is None:
        from facepipe.face.model import load_model

        regions = facemesh_regions(load_model())
    by_name = {rg.name: rg for rg in regions}
    dev = frame.device
    dst = torch.as_tensor(dst, device=dev).float()[:, :2]
    z = None if depth is None else torch.as_tensor(depth, device=dev).float().reshape(-1, 1)
    feather_px = max(1.0, cfg.feather * face_scale(dst))
    parts = []
    for r, name in enumerate(plan.regions):
        a = float(plan.alpha[r, t])
        if a <= 0 or name not in by_name:
            continue
        region = by_name[name]
        sources = []
        m = float(plan.mix[r, t])
        for row, share in ((int(plan.donor_a[r, t]), 1.0 - m), (int(plan.donor_b[r, t]), m)):
            if row >= 0 and share > 0:
                if row not in donors:
                    raise KeyError(f"frame {t}: region {name} needs pool row {row}, which was not given")
                sources.append((donors[row], share))
        if not sources:
            continue
        dst_e = region.extend(dst)
        depth_e = None if z is None else region.extend(z)[:, 0]
        out = _render_region(frame, dst_e, depth_e, region, sources, cfg, feather_px)
        if out is not None:
            parts.append((a, *out))
    if not parts:
        return None
    x0 = min(p[1][0] for p in parts)
    y0 = min(p[1][1] for p in parts)
    x1 = max(p[1][2] for p in parts)
    y1 = max(p[1][3] for p in parts)
    h, w = y1 - y0, x1 - x0
    # Regions overlap by a ring of triangles: inside the union of the active regions their
    # layers and alphas are averaged with their own feathered mattes as weights (so a layer
    # cross-dissolves into its neighbour's across the overlap), and the union's feathered
    # coverage makes the outer edge soft.
    num = torch.zeros(3, h, w, device=dev)
    den_a = torch.zeros(1, h, w, device=dev)
    den = torch.zeros(1, h, w, device=dev)
    covered = torch.zeros(1, h, w, dtype=torch.bool, device=dev)
    for a, (bx0, by0, bx1, by1), layer, cover, matte in parts:
        sl = (slice(None), slice(by0 - y0, by1 - y0), slice(bx0 - x0, bx1 - x0))
        wgt = torch.maximum(matte, 1e-3 * cover.float())
        num[sl] += layer * (wgt * a)
        den_a[sl] += wgt * a
        den[sl] += wgt
        covered[sl] |= cover
    union = feather_inside(covered, feather_px)
    alpha = union * den_a / den.clamp_min(1e-12)
    # the eye openings (iris, gaze, lids' margins) always stay the current frame's
    if len(dst) == topo.N_VERTICES:
        off = torch.tensor([float(x0), float(y0)], device=dev)
        for eye in (EYE_R, EYE_L):
            alpha = alpha * (1.0 - polygon_mask(dst[list(eye.loop)] - off, (h, w)))
    cur = frame[:, y0:y1, x0:x1].to(dev, torch.float32)
    layer = num / den_a.clamp_min(1e-12)  # 0 where no region reaches (den_a = 0), and so is alpha
    if velocity is not None:
        from facepipe.composite.reblur import reblur_layer

        # the blur reads the frame around the regions, not those zeros
        layer = torch.where(den_a > 0, layer, cur)
        (x0, y0, x1, y1), layer, alpha = reblur_layer(frame, (x0, y0, x1, y1), layer, alpha, velocity, shutter)
        cur = frame[:, y0:y1, x0:x1].to(dev, torch.float32)
    alpha = torch.where(alpha > 1e-6, alpha, torch.zeros_like(alpha)).clamp(0.0, 1.0)
    layer = torch.where(alpha > 0, layer, cur)
    return (x0, y0, x1, y1), layer, alpha


def render_transfer(
    frame: torch.Tensor,
    dst,
    donors: Mapping[int, DonorImage],
    plan: TransferPlan,
    t: int,
    regions: Sequence[TransferRegion] | None = None,
    *,
    depth=None,
    config: TransferConfig | None = None,
    velocity=None,
    shutter: float = 180.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The appearance-transfer layer of frame ``t``.

    frame: (3,H,W) float 0..1, the current frame *after the warp* (its low frequencies set the
    layer's shading); dst: (N,2) px the current frame's edited mesh (the geometry the warp
    rendered); donors: pool row -> :class:`DonorImage` for (at least) ``plan.rows_at(t)``; plan:
    from :func:`plan_transfer`; regions: the plan's regions (default :func:`facemesh_regions` of
    the shipped rig); depth: (N,) per-vertex depth of the edited mesh (smaller = nearer) for the
    z-buffer of a turned head, or None; config: ``feather``, ``gain_sigma``, ``max_gain`` are used
    (``strength`` is already in the plan's alpha); velocity: (2,) px/frame face motion of the
    current frame: if given, the layer is motion-blurred like the plate (``shutter`` degrees,
    :func:`facepipe.composite.reblur.reblur`); by default it is not (the renderer re-blurs).

    Returns layer (3,H,W) float32 (equal to ``frame`` wherever alpha is 0) and alpha (1,H,W)
    float32 in [0,1]: composite as ``frame * (1 - alpha) + layer * alpha`` (or a Laplacian blend).
    """
    H, W = frame.shape[-2:]
    layer = frame.to(torch.float32).clone()
    alpha = torch.zeros(1, H, W, device=frame.device)
    out = render_transfer_box(frame, dst, donors, plan, t, regions, depth=depth, config=config,
                              velocity=velocity, shutter=shutter)
    if out is not None:
        (x0, y0, x1, y1), lb, ab = out
        layer[:, y0:y1, x0:x1] = lb
        alpha[:, y0:y1, x0:x1] = ab
    return layer, alpha
