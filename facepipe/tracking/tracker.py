"""Follow every face through a shot: detect, track landmarks frame to frame, keep stable ids.

Per frame (:meth:`FaceTracker.step`):

1. Shot-cut check (:mod:`facepipe.tracking.shotcut`). A cut ends every active track; a face in
   the new shot may still get its old id back by appearance.
2. Each active track runs the landmark model on the region derived from its previous frame's
   landmarks (moved by its recent velocity). A presence score below ``min_presence``, a face
   too small or with its centre outside the frame, loses the track in this frame.
3. The detector runs every ``detect_every`` frames, on a cut, when a track was lost, and on
   every frame while no face is tracked. A detection that no tracked face explains starts a
   face: landmarks from the detection's region, refined once from their own region. Its id
   is, in order: the track lost in this very frame that it overlaps (re-acquisition); a
   dormant track it resembles (re-identification signature, :mod:`facepipe.tracking.signature`),
   with a looser bar when it is the only dormant track of the current shot and nothing else is
   on screen (a face leaving and re-entering); else a new id.
4. Two tracks on the same face merge into the older id.

The tracker's whole state is a JSON-able dict (:meth:`state_dict`), so the stage can carry it
across chunk boundaries and a resumed run continues exactly where the cached chunk ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facepipe.tracking.signature import signature, similarity
from facepipe.tracking.backends.base import FaceLandmarks, LandmarkBackend, Roi, landmark_box
from facepipe.tracking.geometry import box_iou, box_size
from facepipe.tracking.shotcut import DEFAULT_RATIO, DEFAULT_THRESHOLD, ShotCutDetector


@dataclass
class TrackerConfig:
    """Tracking parameters (all part of the stage's cache key)."""

    #: Run the detector at least every N frames while tracking (finds faces that enter).
    detect_every: int = 10
    #: Detector score threshold.
    min_detection_score: float = 0.5
    #: Landmark-model presence score below which a face counts as lost in a frame.
    min_presence: float = 0.5
    #: Most faces tracked at once (the largest are kept).
    max_faces: int = 4
    #: Also search crops of the frame for small faces on detection frames (slower).
    small_faces: bool = False
    #: Faces smaller than this (box side, pixels of the tracked frame) are ignored.
    min_face_px: float = 16.0
    #: Shot-cut detector (see shotcut.py).
    cut_threshold: float = DEFAULT_THRESHOLD
    cut_ratio: float = DEFAULT_RATIO
    #: Appearance similarity that gives a returning face an old id.
    reid_similarity: float = 0.55
    #: Looser bar when the returning face is the only candidate in the same shot.
    reid_similarity_alone: float = 0.3
    #: Only looks at least this similar to the reference update it.
    reference_likeness: float = 0.75
    #: Check the face's visual evidence every N frames (0 = never): the detector is run on the
    #: tracked face's own region; its score is the evidence. Clear faces in the shared clips
    #: score 0.91-0.95 (5th-95th percentile); half covered by a bar or hand-like blob 0.7-0.9.
    #: (MediaPipe's landmark presence score stays near 1 for covered faces, so it cannot tell.)
    evidence_every: int = 1


@dataclass
class Observation:
    """One face in one frame.

    points: (N,3) px; score: the landmark model's presence score (0..1; it stays near 1 even
    for a half-covered face); likeness: appearance similarity (-1..1) of the face to the
    track's reference look, which drops when something covers the face; box: (4,) px;
    detected: acquired by the detector in this frame (else tracked from the previous one);
    evidence: the detector's score on the face's own region (0..1; NaN when not measured in
    this frame); it drops when the face is covered, blurred or turned away.
    """

    track_id: int
    points: np.ndarray
    score: float
    box: np.ndarray
    detected: bool = False
    likeness: float = 1.0
    evidence: float = float("nan")


@dataclass
class FrameResult:
    index: int
    faces: list[Observation]
    cut: bool = False
    cut_distance: float = 0.0
    detector_ran: bool = False


@dataclass
class _Track:
    id: int
    points: np.ndarray | None = None
    roi: Roi | None = None
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    box: np.ndarray | None = None
    last_frame: int = -1
    shot: int = 0
    hits: int = 0
    appearance: np.ndarray | None = None
    active: bool = True

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "points": None if self.points is None else np.round(self.points, 3).tolist(),
            "roi": None if self.roi is None else self.roi.to_json(),
            "velocity": [float(v) for v in self.velocity],
            "box": None if self.box is None else [float(v) for v in self.box],
            "last_frame": self.last_frame,
            "shot": self.shot,
            "hits": self.hits,
            "appearance": None if self.appearance is None else np.round(self.appearance, 6).tolist(),
            "active": self.active,
        }

    @classmethod
    def from_json(cls, d: dict) -> "_Track":
        arr = lambda v: None if v is None else np.asarray(v, np.float32)  # noqa: E731
        return cls(
            id=int(d["id"]),
            points=arr(d["points"]),
            roi=None if d["roi"] is None else Roi.from_json(d["roi"]),
            velocity=np.asarray(d["velocity"], np.float64),
            box=arr(d["box"]),
            last_frame=int(d["last_frame"]),
            shot=int(d["shot"]),
            hits=int(d["hits"]),
            appearance=arr(d["appearance"]),
            active=bool(d["active"]),
        )


class FaceTracker:
    """Stateful multi-face tracker over consecutive frames of one clip.

    Args:
        backend: a :class:`LandmarkBackend` (detector + landmark model).
        config: :class:`TrackerConfig`.
        state: a previous :meth:`state_dict` to continue from.
    """

    def __init__(self, backend: LandmarkBackend, config: TrackerConfig | None = None, state: dict | None = None):
        self.backend = backend
        self.config = config or TrackerConfig()
        self.cuts = ShotCutDetector(self.config.cut_threshold, self.config.cut_ratio)
        self.tracks: list[_Track] = []
        self.next_id = 1
        self.shot = 0
        self.last_detect = -(10**9)
        self.last_index: int | None = None
        if state:
            self.load_state_dict(state)

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "tracks": [t.to_json() for t in self.tracks],
            "next_id": self.next_id,
            "shot": self.shot,
            "last_detect": self.last_detect,
            "last_index": self.last_index,
            "cuts": self.cuts.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.tracks = [_Track.from_json(t) for t in state.get("tracks", [])]
        self.next_id = int(state.get("next_id", 1))
        self.shot = int(state.get("shot", 0))
        self.last_detect = int(state.get("last_detect", -(10**9)))
        self.last_index = state.get("last_index")
        self.cuts.load_state_dict(state.get("cuts", {}))

    @property
    def active(self) -> list[_Track]:
        return [t for t in self.tracks if t.active]

    # -- one frame ----------------------------------------------------------------------------
    def step(self, image: np.ndarray, index: int) -> FrameResult:
        """Track the faces of frame ``index`` ((H,W,3) uint8 RGB)."""
        cfg = self.config
        h, w = image.shape[:2]
        if self.last_index is not None and index != self.last_index + 1:
            # A jump in the frame sequence: position continuity no longer holds.
            self._end_active()
        self.last_index = index
        cut, cut_distance = self.cuts.update(image)
        if cut:
            self.shot += 1
            self._end_active()

        observations: list[Observation] = []
        lost_now: list[_Track] = []
        for track in self.active:
            roi = track.roi.shifted(*track.velocity)
            res = self.backend.landmarks(image, roi)
            if self._plausible(res, w, h):
                observations.append(self._update(track, res, index, image, detected=False))
            else:
                lost_now.append(track)
                track.active = False

        detector_ran = False
        need = cut or lost_now or not observations or index - self.last_detect >= cfg.detect_every
        if need:
            detector_ran = True
            self.last_detect = index
            observations += self._acquire(image, index, observations, lost_now)

        observations = self._merge_duplicates(observations)
        if len(observations) > cfg.max_faces:
            observations.sort(key=lambda o: -float(box_size(o.box)))
            for o in observations[cfg.max_faces :]:
                self._track(o.track_id).active = False
            observations = observations[: cfg.max_faces]
        observations.sort(key=lambda o: o.track_id)
        if cfg.evidence_every and index % cfg.evidence_every == 0:
            for o in observations:
                o.evidence = self.backend.face_evidence(image, o.points)
        return FrameResult(index, observations, cut, cut_distance, detector_ran)

    # -- helpers ------------------------------------------------------------------------------
    def _end_active(self) -> None:
        for t in self.tracks:
            t.active = False
            t.velocity = np.zeros(2)

    def _track(self, track_id: int) -> _Track:
        return next(t for t in self.tracks if t.id == track_id)

    def _plausible(self, res: FaceLandmarks, w: int, h: int) -> bool:
        if res.score < self.config.min_presence or not np.isfinite(res.points).all():
            return False
        box = landmark_box(res.points)
        if box_size(box) < self.config.min_face_px:
            return False
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return 0 <= cx < w and 0 <= cy < h

    def _update(self, track: _Track, res: FaceLandmarks, index: int, image: np.ndarray, detected: bool) -> Observation:
        new_roi = self.backend.roi_from_landmarks(res.points)
        if track.roi is not None and track.last_frame == index - 1 and not detected:
            step = np.array([new_roi.cx - track.roi.cx, new_roi.cy - track.roi.cy])
            track.velocity = 0.5 * track.velocity + 0.5 * step
        else:
            track.velocity = np.zeros(2)
        track.points = res.points.astype(np.float32)
        track.roi = new_roi
        track.box = landmark_box(res.points)
        track.last_frame = index
        track.shot = self.shot
        track.active = True
        track.hits += 1
        sig = signature(image, res.points, self.backend.scheme)
        likeness = similarity(sig, track.appearance) if track.appearance is not None else 1.0
        if sig is not None:
            if track.appearance is None:
                track.appearance = sig
            elif likeness >= self.config.reference_likeness:
                # slow running mean of the confident looks (a covered face does not become the reference)
                m = 0.95 * track.appearance + 0.05 * sig
                track.appearance = (m / (np.linalg.norm(m) + 1e-12)).astype(np.float32)
        return Observation(track.id, track.points, float(res.score), track.box, detected, float(likeness))

    def _acquire(
        self, image: np.ndarray, index: int, observations: list[Observation], lost_now: list[_Track]
    ) -> list[Observation]:
        cfg = self.config
        h, w = image.shape[:2]
        new: list[Observation] = []
        for det in self.backend.detect(image, tiled=cfg.small_faces):
            if det.score < cfg.min_detection_score:
                continue
            taken = [o.box for o in observations + new]
            if taken and (box_iou(det.box, np.stack(taken)).max() > 0.2 or _inside_any(det.box, taken)):
                continue  # already tracked
            res = self.backend.landmarks(image, self.backend.roi_from_detection(det))
            if res.score < cfg.min_presence:
                continue
            again = self.backend.landmarks(image, self.backend.roi_from_landmarks(res.points))
            if again.score >= cfg.min_presence:
                res = again
            if not self._plausible(res, w, h):
                continue
            box = landmark_box(res.points)
            if taken and box_iou(box, np.stack(taken)).max() > 0.3:
                continue
            track = self._identify(image, res, box, lost_now, bool(observations or new))
            new.append(self._update(track, res, index, image, detected=True))
        return new

    def _identify(
        self, image: np.ndarray, res: FaceLandmarks, box: np.ndarray, lost_now: list[_Track], others_visible: bool
    ) -> _Track:
        cfg = self.config
        # 1. a track lost in this frame, at the same place
        for t in lost_now:
            if not t.active and t.box is not None and box_iou(box, t.box)[0, 0] > 0.2:
                return t
        # 2. a dormant track that looks the same
        dormant = [t for t in self.tracks if not t.active]
        if dormant:
            sig = signature(image, res.points, self.backend.scheme)
            sims = [similarity(sig, t.appearance) for t in dormant]
            best = int(np.argmax(sims))
            if sims[best] >= cfg.reid_similarity:
                return dormant[best]
            same_shot = [t for t in dormant if t.shot == self.shot]
            if len(same_shot) == 1 and not others_visible:
                t = same_shot[0]
                ratio = float(box_size(box) / max(box_size(t.box), 1e-6)) if t.box is not None else 1.0
                if similarity(sig, t.appearance) >= cfg.reid_similarity_alone and 0.5 <= ratio <= 2.0:
                    return t
        # 3. a new face
        t = _Track(id=self.next_id, shot=self.shot)
        self.next_id += 1
        self.tracks.append(t)
        return t

    def _merge_duplicates(self, observations: list[Observation]) -> list[Observation]:
        keep: list[Observation] = []
        for o in sorted(observations, key=lambda o: o.track_id):
            if keep and box_iou(o.box, np.stack([k.box for k in keep])).max() > 0.5:
                dup = self._track(o.track_id)
                dup.active = False
                if dup.hits <= 1:  # a duplicate born this frame: forget it entirely
                    self.tracks.remove(dup)
                continue
            keep.append(o)
        return keep


def _inside_any(box: np.ndarray, boxes: list[np.ndarray]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in boxes)
