"""The ``FaceTracks`` artifact: where the actor's face is in every frame, and how far to trust it.

Coordinates are full-resolution pixels of the upright frame (origin at the centre of the
top-left pixel), whatever resolution tracking ran at. ``T`` is the number of frames of the shot,
``N`` the number of landmarks of ``scheme``, ``R`` the number of (frame, face) detections of
every face (the target included).

Per-frame flags (bitmask, :class:`Flag`) tell later stages which frames to leave untouched and
where to fade the edit in and out: see :meth:`FaceTracks.usable` and :meth:`FaceTracks.edit_weight`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from facepipe.errors import RequestError
from facepipe.pipeline.artifacts import Artifact
from facepipe.tracking.filters import smooth_causal, smooth_offline, valid_runs
from facepipe.tracking.geometry import box_size, head_pose


class Flag(enum.IntFlag):
    """Per-frame flags of the target face."""

    #: The target face is not found in this frame.
    NO_FACE = 1
    #: Landmarks unreliable: the face is only weakly visible where it is tracked (partly
    #: covered, blurred, turned away), confidence < ``low_confidence``.
    LOW_CONFIDENCE = 2
    #: Head turned beyond the landmark model's range (|yaw| > max_yaw).
    PROFILE = 4
    #: Likely covered: the visual evidence is very low while the landmarks still track, or the
    #: face was lost mid-shot away from the frame's edges.
    OCCLUDED = 8
    #: The face reaches past the frame border.
    EDGE = 16
    #: First frame of a new shot (a cut inside the clip).
    SHOT_CUT = 32


#: Flags that make a frame unusable for an edit (it passes through untouched).
UNUSABLE = Flag.NO_FACE | Flag.LOW_CONFIDENCE | Flag.PROFILE | Flag.OCCLUDED


def _empty(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)


@dataclass
class FaceTracks(Artifact):
    """Face tracks of a shot (or, inside the stage, of one chunk).

    Target face, per frame (T = frames):
        frame_index: (T,) int64 source frame indices.
        box: (T,4) float32 x0,y0,x1,y1 of the landmarks, NaN where no face.
        landmarks: (T,N,3) float32 landmarks after temporal smoothing (``smoothing``), NaN where none.
        landmarks_raw: (T,N,3) float32 as tracked, before smoothing.
        confidence: (T,) float32 0..1 (0 where none): presence score x visual evidence.
        evidence: (T,) float32 the face detector's score on the face's own region (NaN where
            not measured): clear faces ~0.9-0.95, lower when covered, blurred or turned away.
        pose: (T,3) float32 yaw, pitch, roll in degrees (see ``geometry.head_pose``).
        flags: (T,) int32 :class:`Flag` bitmask.
        track_id: (T,) int32 the target's track id where present, else -1.
        velocity: (T,2) float32 face motion in pixels/frame (centre of the smoothed landmarks,
            central difference; 0 where unknown) -- for deblur/reblur.
        shot_cuts: (C,) int64 frame indices that start a new shot (a cut just before them).

    Every face (R rows, sorted by frame then id):
        face_frame (R,) int64, face_id (R,) int32, face_box (R,4) float32,
        face_confidence (R,) float32, face_evidence (R,) float32, face_landmarks (R,N,3)
        float32 (raw), face_presence (R,) float32 (the landmark model's own presence score).
    """

    frame_index: np.ndarray = field(default_factory=lambda: _empty(0, dtype=np.int64))
    box: np.ndarray = field(default_factory=lambda: _empty(0, 4))
    landmarks: np.ndarray = field(default_factory=lambda: _empty(0, 0, 3))
    landmarks_raw: np.ndarray = field(default_factory=lambda: _empty(0, 0, 3))
    confidence: np.ndarray = field(default_factory=lambda: _empty(0))
    evidence: np.ndarray = field(default_factory=lambda: _empty(0))
    pose: np.ndarray = field(default_factory=lambda: _empty(0, 3))
    flags: np.ndarray = field(default_factory=lambda: _empty(0, dtype=np.int32))
    track_id: np.ndarray = field(default_factory=lambda: _empty(0, dtype=np.int32))
    velocity: np.ndarray = field(default_factory=lambda: _empty(0, 2))
    shot_cuts: np.ndarray = field(default_factory=lambda: _empty(0, dtype=np.int64))
    face_frame: np.ndarray = field(default_factory=lambda: _empty(0, dtype=np.int64))
    face_id: np.ndarray = field(default_factory=lambda: _empty(0, dtype=np.int32))
    face_box: np.ndarray = field(default_factory=lambda: _empty(0, 4))
    face_confidence: np.ndarray = field(default_factory=lambda: _empty(0))
    face_evidence: np.ndarray = field(default_factory=lambda: _empty(0))
    face_landmarks: np.ndarray = field(default_factory=lambda: _empty(0, 0, 3))
    face_presence: np.ndarray = field(default_factory=lambda: _empty(0))
    #: The chosen actor's track id (-1: no face in the shot).
    target_id: int = -1
    #: How the target was chosen: "largest", "center" or an id.
    target: str = "largest"
    backend: str = ""
    scheme: str = ""
    #: Full-resolution frame size the coordinates refer to.
    width: int = 0
    height: int = 0
    #: Scale the frames were tracked at (landmarks are mapped back to full resolution).
    scale: float = 1.0
    fps: str = ""
    smoothing: str = "offline"
    smooth_strength: float = 1.0
    #: Non-empty when something the user should know happened (e.g. no face in the clip).
    message: str = ""
    #: Tracker state at the end of this part (chunks only; empty in the whole-shot artifact).
    tracker_state: dict = field(default_factory=dict)

    # -- queries ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame_index)

    @property
    def has_face(self) -> bool:
        return self.target_id >= 0

    def usable(self) -> np.ndarray:
        """(T,) bool: frames an edit may change (target present, confident, not in profile)."""
        return (self.flags & int(UNUSABLE)) == 0

    def edit_weight(self, fade: int = 6) -> np.ndarray:
        """(T,) float32 0..1: 1 on usable frames, easing to 0 over ``fade`` frames towards
        unusable frames and shot cuts (smoothstep), so an edit fades in and out around them."""
        ok = self.usable().astype(np.float64)
        t = len(ok)
        if t == 0:
            return np.zeros(0, np.float32)
        dist = np.full(t, np.inf)
        bad = np.flatnonzero(ok == 0)
        if len(bad):
            idx = np.arange(t)
            pos = np.searchsorted(bad, idx)
            left = np.where(pos > 0, idx - bad[np.clip(pos - 1, 0, len(bad) - 1)], np.inf)
            right = np.where(pos < len(bad), bad[np.clip(pos, 0, len(bad) - 1)] - idx, np.inf)
            dist = np.minimum(left, right)
        x = np.clip(dist / max(fade, 1), 0, 1)
        w = np.where(ok > 0, x * x * (3 - 2 * x), 0.0)
        return w.astype(np.float32)

    def face_ids(self) -> list[int]:
        return sorted(int(i) for i in np.unique(self.face_id))

    def faces_summary(self) -> list[dict]:
        """One dict per face id: frames seen, first/last frame, mean box size, mean confidence."""
        out = []
        for fid in self.face_ids():
            rows = self.face_id == fid
            frames = self.face_frame[rows]
            boxes = self.face_box[rows]
            out.append({
                "id": fid,
                "frames": int(rows.sum()),
                "first": int(frames.min()),
                "last": int(frames.max()),
                "mean_box": [float(np.mean(boxes[:, 2] - boxes[:, 0])), float(np.mean(boxes[:, 3] - boxes[:, 1]))],
                "mean_size": float(np.mean(box_size(boxes))),
                "mean_confidence": float(np.mean(self.face_confidence[rows])),
                "target": fid == self.target_id,
            })  # fmt: skip
        return out

    def describe_flags(self) -> dict[str, int]:
        """How many frames carry each flag."""
        return {f.name: int(((self.flags & int(f)) != 0).sum()) for f in Flag}


# --- assembling the whole-shot artifact -----------------------------------------------------------

#: Visual evidence (detector score on the face's region) at and above which a face counts as
#: clearly visible, and at and below which as covered. On all 4,596 frames of the 18 shared
#: clips the 5th percentile per clip is 0.89-0.94 (no frame flagged); on every 15th frame with
#: the face's lower half covered by a grey bar it is 0.74-0.86 (5th-95th percentile), eyes
#: covered by a dark band 0.69-0.89, a hand-like blob over the mouth 0.82-0.90, a skin-coloured
#: disc over one cheek 0.85-0.93 (mostly not flagged: a small cover).
EVIDENCE_CLEAR = 0.92
EVIDENCE_BAD = 0.82


def _running_median(x: np.ndarray, k: int = 5) -> np.ndarray:
    """NaN-aware centred running median (window k)."""
    x = np.asarray(x, np.float64)
    out = np.full_like(x, np.nan)
    h = k // 2
    for i in range(len(x)):
        w = x[max(0, i - h) : i + h + 1]
        w = w[np.isfinite(w)]
        if len(w):
            out[i] = np.median(w)
    return out


def row_confidence(face_frame, face_id, presence, evidence) -> tuple[np.ndarray, np.ndarray]:
    """(R,) confidence of every face row, presence x evidence factor, and the evidence
    median-filtered over 3 frames per track (a one-frame dip is not a cover)."""
    conf = np.zeros(len(face_frame), np.float32)
    ev_med = np.full(len(face_frame), np.nan, np.float32)
    for fid in np.unique(face_id):
        rows = np.flatnonzero(face_id == fid)
        rows = rows[np.argsort(face_frame[rows], kind="stable")]
        ev = _running_median(np.asarray(evidence, np.float64)[rows], 3)
        factor = np.clip((ev - EVIDENCE_BAD) / (EVIDENCE_CLEAR - EVIDENCE_BAD), 0.0, 1.0)
        factor = np.where(np.isfinite(factor), factor, 1.0)
        conf[rows] = (np.asarray(presence)[rows] * factor).astype(np.float32)
        ev_med[rows] = ev
    return conf, ev_med


def select_target(tracks: FaceTracks, target: str) -> int:
    """The track id of the actor to edit: ``largest``, ``center`` or an id ("3"); -1 if no face.

    largest: the face with the largest sum of box sizes over the frames it is seen in (big and
    on screen for long); center: among faces seen in at least a quarter of the frames of the
    most-seen face, the one whose box centre is on average nearest the frame centre.
    """
    ids = tracks.face_ids()
    if not ids:
        return -1
    if target not in ("largest", "center"):
        fid = int(target)
        if fid not in ids:
            raise RequestError(
                f"--face {fid}: no face with that id in this clip (faces: {', '.join(map(str, ids))}); "
                "run 'facepipe faces CLIP' to see them"
            )
        return fid
    sizes = box_size(tracks.face_box)
    if target == "largest":
        return max(ids, key=lambda i: (float(sizes[tracks.face_id == i].sum()), -i))
    counts = {i: int((tracks.face_id == i).sum()) for i in ids}
    most = max(counts.values())
    cands = [i for i in ids if counts[i] >= 0.25 * most]
    centre = np.array([(tracks.width - 1) / 2, (tracks.height - 1) / 2])
    diag = float(np.hypot(tracks.width, tracks.height)) or 1.0

    def off_centre(i):
        b = tracks.face_box[tracks.face_id == i]
        c = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)
        return float(np.mean(np.linalg.norm(c - centre, axis=1)) / diag)

    return min(cands, key=lambda i: (off_centre(i), i))


def finalize(
    parts: FaceTracks,
    target: str = "largest",
    smoothing: str = "offline",
    strength: float = 1.0,
    max_yaw: float = 55.0,
    low_confidence: float = 0.5,
    min_track_frames: int = 3,
) -> FaceTracks:
    """The whole-shot artifact from the concatenated per-chunk rows in ``parts``.

    ``parts`` carries frame_index, shot_cuts, the face_* rows and the meta fields; this drops
    faces seen in fewer than ``min_track_frames`` frames (flickers: a fist, a poster, a face
    half out of frame for an instant), picks the target, fills the per-frame arrays, smooths,
    and sets confidence, flags and velocity.
    """
    tr = parts
    _drop_short_tracks(tr, min_track_frames)
    tr.face_confidence, ev_smooth = row_confidence(tr.face_frame, tr.face_id, tr.face_presence, tr.face_evidence)
    tr.target = str(target)
    tr.target_id = select_target(tr, str(target))
    tr.smoothing, tr.smooth_strength = smoothing, float(strength)
    tr.tracker_state = {}

    pos = {int(f): i for i, f in enumerate(tr.frame_index)}
    rows = _target_rows(tr, ev_smooth, pos)
    raw = rows["landmarks_raw"]
    cut_pos = [pos[int(c)] for c in tr.shot_cuts if int(c) in pos]
    fps = float(Fraction(tr.fps)) if tr.fps else 30.0
    lms = _smooth(raw, fps, smoothing, strength, cut_pos)
    flags, pose = _frame_flags(tr, rows, lms, cut_pos, max_yaw, low_confidence)

    tr.box, tr.landmarks, tr.landmarks_raw = rows["box"], lms, raw
    tr.confidence, tr.evidence, tr.pose = rows["confidence"], rows["evidence"], pose
    tr.flags, tr.track_id = flags, rows["track_id"]
    tr.velocity = face_velocity(lms, cut_pos)
    if tr.target_id < 0:
        tr.message = "no face found in this clip: every frame is flagged NO_FACE and passes through unchanged"
    return tr


def _drop_short_tracks(tr: FaceTracks, min_track_frames: int) -> None:
    """Drop the face_* rows of faces seen in fewer than ``min_track_frames`` frames; sort the
    rest by frame, then id (in place)."""
    ids, counts = np.unique(tr.face_id, return_counts=True)
    keep = np.isin(tr.face_id, ids[counts >= min_track_frames])
    order = np.flatnonzero(keep)[np.lexsort((tr.face_id[keep], tr.face_frame[keep]))]
    for name in ("face_frame", "face_id", "face_box", "face_evidence", "face_landmarks", "face_presence"):
        arr = getattr(tr, name)
        if len(arr) == len(keep):
            setattr(tr, name, arr[order])


def _target_rows(tr: FaceTracks, ev_smooth: np.ndarray, pos: dict[int, int]) -> dict[str, np.ndarray]:
    """The target face's rows spread over the T frames (NaN / 0 / -1 where it is absent): box,
    landmarks_raw, confidence, evidence, evidence_median (its running median) and track_id."""
    t = len(tr.frame_index)
    n = tr.face_landmarks.shape[1] if tr.face_landmarks.ndim == 3 else 0
    out = {
        "box": np.full((t, 4), np.nan, np.float32),
        "landmarks_raw": np.full((t, n, 3), np.nan, np.float32),
        "confidence": np.zeros(t, np.float32),
        "evidence": np.full(t, np.nan, np.float32),
        "evidence_median": np.full(t, np.nan, np.float32),
        "track_id": np.full(t, -1, np.int32),
    }
    if tr.target_id >= 0:
        for r in np.flatnonzero(tr.face_id == tr.target_id):
            i = pos[int(tr.face_frame[r])]
            out["box"][i], out["landmarks_raw"][i] = tr.face_box[r], tr.face_landmarks[r]
            out["confidence"][i], out["evidence"][i] = tr.face_confidence[r], tr.face_evidence[r]
            out["track_id"][i] = tr.target_id
            out["evidence_median"][i] = ev_smooth[r]
    return out


def _smooth(raw: np.ndarray, fps: float, smoothing: str, strength: float, cuts: list[int]) -> np.ndarray:
    """Landmarks (T,N,3) smoothed over time: ``offline`` (both directions), ``causal`` or not at all."""
    if smoothing == "offline":
        return smooth_offline(raw, fps, strength, cuts=cuts)
    if smoothing == "causal":
        return smooth_causal(raw, fps, strength, cuts=cuts)
    return raw.copy()


def _frame_flags(
    tr: FaceTracks, rows: dict, lms: np.ndarray, cuts: list[int], max_yaw: float, low_confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """(flags (T,) int32 :class:`Flag` bits, head pose (T,3) float32 NaN where no face) of the
    target's per-frame ``rows`` (see :func:`_target_rows`) and smoothed landmarks ``lms``."""
    raw, box, conf = rows["landmarks_raw"], rows["box"], rows["confidence"]
    t, n = raw.shape[:2]
    present = np.isfinite(raw.reshape(t, -1)).all(axis=1) if n else np.zeros(t, bool)
    flags = np.zeros(t, np.int32)
    flags[~present] |= int(Flag.NO_FACE)
    flags[present & (conf < low_confidence)] |= int(Flag.LOW_CONFIDENCE)
    flags[present & (rows["evidence_median"] <= EVIDENCE_BAD)] |= int(Flag.OCCLUDED)
    pose = np.full((t, 3), np.nan, np.float32)
    if present.any():
        pose[present] = head_pose(lms[present], tr.scheme or "mediapipe-478")
        yaw = np.abs(pose[:, 0])
        flags[present & (yaw > max_yaw)] |= int(Flag.PROFILE)
        w, h = tr.width, tr.height
        edge = present & ((box[:, 0] < 0) | (box[:, 1] < 0) | (box[:, 2] > w - 1) | (box[:, 3] > h - 1))
        flags[edge] |= int(Flag.EDGE)
        flags |= _occluded_gaps(present, box, cuts, w, h)
    for c in cuts:
        flags[c] |= int(Flag.SHOT_CUT)
    return flags, pose


def _occluded_gaps(present: np.ndarray, box: np.ndarray, cuts: list[int], w: int, h: int) -> np.ndarray:
    """OCCLUDED for frames missing between two present stretches of one shot, when the face was
    away from the frame's edges on both sides (it did not leave the frame: it was covered, turned
    away or blurred)."""
    flags = np.zeros(len(present), np.int32)
    shot_starts = sorted(set([0] + list(cuts) + [len(present)]))
    for a, b in zip(shot_starts[:-1], shot_starts[1:]):
        runs = [(s + a, e + a) for s, e in valid_runs(present[a:b])]
        for (_, e0), (s1, _) in zip(runs[:-1], runs[1:]):
            before, after = box[e0 - 1], box[s1]
            if _away_from_edge(before, w, h) and _away_from_edge(after, w, h):
                flags[e0:s1] |= int(Flag.OCCLUDED)
    return flags


def _away_from_edge(b: np.ndarray, w: int, h: int) -> bool:
    m = 0.1 * max(b[2] - b[0], b[3] - b[1])
    return bool(b[0] > m and b[1] > m and b[2] < w - 1 - m and b[3] < h - 1 - m)


def face_velocity(landmarks: np.ndarray, cuts=()) -> np.ndarray:
    """(T,2) pixels/frame of the landmarks' centre: central differences inside each run of
    present frames (one-sided at the run's ends), 0 where unknown."""
    t = len(landmarks)
    v = np.zeros((t, 2), np.float32)
    if t == 0 or landmarks.shape[1] == 0:
        return v
    ok = np.isfinite(landmarks.reshape(t, -1)).all(axis=1)
    c = np.zeros((t, 2))
    c[ok] = landmarks[ok, :, :2].mean(axis=1)
    for s, e in valid_runs(ok, cuts):
        if e - s >= 2:
            v[s:e] = np.gradient(c[s:e], axis=0)
    return v
