"""The track stage: decoded chunks in, a :class:`~facepipe.tracking.tracks.FaceTracks` artifact out.

Each chunk is tracked with :class:`~facepipe.tracking.tracker.FaceTracker`, starting from the
tracker state saved in the previous chunk's partial artifact, so a resumed run continues
exactly as an uninterrupted one would. Frames may be tracked downscaled (``scale``); landmarks
and boxes are mapped back to full-resolution pixels. ``combine`` picks the target actor
(``face``), fills the per-frame arrays, smooths them and sets confidence, flags and velocity.
A clip with no face gives an artifact whose frames are all flagged NO_FACE, and a message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facepipe.errors import RequestError
from facepipe.io.reader import to_uint8_images
from facepipe.pipeline.stage import ChunkedStage
from facepipe.tracking.backends import get_backend
from facepipe.tracking.tracker import FaceTracker, TrackerConfig
from facepipe.tracking.tracks import FaceTracks, finalize

SMOOTHING = ("offline", "causal", "none")


@dataclass
class TrackStage(ChunkedStage):
    """Face tracking of the whole shot.

    Args:
        backend: landmark backend (``mediapipe``, ``mediapipe-468``, ``fan``, ``fan3d``).
        face: the actor to follow: ``largest``, ``center`` or a track id (see ``facepipe faces``).
        scale: track on frames downscaled by this factor (0 < scale <= 1).
        detect_every: run the face detector at least every N frames.
        max_faces: most faces tracked at once.
        small_faces: also look for small faces in crops of the frame on detection frames.
        min_presence: landmark presence score below which a face counts as lost.
        evidence_every: check each face's visual evidence (detector score on its region) every
            N frames (0 = never); it drives the confidence and the LOW_CONFIDENCE/OCCLUDED flags.
        smoothing: ``offline`` (zero-phase), ``causal`` (One Euro) or ``none``.
        smooth_strength: 0 = off, 1 = default, larger = smoother.
        max_yaw: |yaw| in degrees beyond which a frame is flagged PROFILE.
        low_confidence: confidence below which a frame is flagged LOW_CONFIDENCE.
        min_track_frames: faces seen in fewer frames are dropped as flickers.
    """

    name = "track"
    version = "1"
    frames_from = "deblur"
    artifact = FaceTracks

    backend: str = "mediapipe"
    face: str = "largest"
    scale: float = 1.0
    detect_every: int = 10
    max_faces: int = 4
    small_faces: bool = False
    min_presence: float = 0.5
    evidence_every: int = 1
    smoothing: str = "offline"
    smooth_strength: float = 1.0
    max_yaw: float = 55.0
    low_confidence: float = 0.5
    min_track_frames: int = 3

    def __post_init__(self):
        self.face = str(self.face).strip().lower()
        if self.face == "centre":
            self.face = "center"
        if self.face not in ("largest", "center") and not self.face.isdigit():
            raise RequestError(f"--face {self.face!r}: use largest, center or a face id from 'facepipe faces CLIP'")
        if not 0 < float(self.scale) <= 1:
            raise RequestError(f"tracking scale {self.scale}: use a factor in (0, 1]")
        if self.smoothing not in SMOOTHING:
            raise RequestError(f"smoothing {self.smoothing!r}: use one of {', '.join(SMOOTHING)}")
        if self.smooth_strength < 0:
            raise RequestError("smoothing strength must be >= 0")
        if self.detect_every < 1 or self.max_faces < 1:
            raise RequestError("detect_every and max_faces must be at least 1")

    @property
    def frame_scale(self) -> float:  # the graph decodes this stage's chunks at this scale
        return float(self.scale)

    def tracker_config(self):
        return TrackerConfig(
            detect_every=self.detect_every,
            max_faces=self.max_faces,
            small_faces=self.small_faces,
            min_presence=self.min_presence,
            evidence_every=self.evidence_every,
        )

    def _get_backend(self, ctx):
        backend = getattr(self, "_backend_obj", None)
        if backend is None:
            device = ctx.device if ctx is not None else "cpu"
            backend = get_backend(self.backend, device=str(device))
            object.__setattr__(self, "_backend_obj", backend)
        return backend

    def finish(self, ctx, tracks) -> None:
        if tracks.message:
            ctx.log(f"track: {tracks.message}")

    def run_chunk(self, ctx, chunk, inputs, previous) -> FaceTracks:
        backend = self._get_backend(ctx)
        state = previous.tracker_state if previous is not None else None
        tracker = FaceTracker(backend, self.tracker_config(), state=state or None)
        media = ctx.media
        frames = chunk.frames
        h_s, w_s = int(frames.shape[-2]), int(frames.shape[-1])
        sx, sy = media.width / w_s, media.height / h_s
        images = to_uint8_images(frames)
        rows = {k: [] for k in ("frame", "id", "box", "presence", "evidence", "landmarks")}
        cuts = []
        for index, image in zip(chunk.indices.tolist(), images):
            res = tracker.step(image, int(index))
            if res.cut:
                cuts.append(int(index))
            for o in res.faces:
                rows["frame"].append(int(index))
                rows["id"].append(o.track_id)
                rows["box"].append(_to_full_box(o.box, sx, sy))
                rows["presence"].append(o.score)
                rows["evidence"].append(o.evidence)
                rows["landmarks"].append(to_full_resolution(o.points, sx, sy))
        n = backend.scheme.n_points
        return FaceTracks(
            frame_index=chunk.indices.astype(np.int64),
            shot_cuts=np.asarray(cuts, np.int64),
            face_frame=np.asarray(rows["frame"], np.int64),
            face_id=np.asarray(rows["id"], np.int32),
            face_box=np.asarray(rows["box"], np.float32).reshape(-1, 4),
            face_presence=np.asarray(rows["presence"], np.float32),
            face_confidence=np.asarray(rows["presence"], np.float32),
            face_evidence=np.asarray(rows["evidence"], np.float32),
            face_landmarks=np.asarray(rows["landmarks"], np.float32).reshape(-1, n, 3),
            backend=backend.name,
            scheme=backend.scheme.name,
            width=int(media.width),
            height=int(media.height),
            scale=float(self.scale),
            fps=str(media.fps),
            tracker_state=tracker.state_dict(),
        )

    def combine(self, parts: list[FaceTracks]) -> FaceTracks:
        first = parts[0]
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        merged = FaceTracks(
            frame_index=cat("frame_index"),
            shot_cuts=cat("shot_cuts"),
            face_frame=cat("face_frame"),
            face_id=cat("face_id"),
            face_box=cat("face_box"),
            face_presence=cat("face_presence"),
            face_confidence=cat("face_confidence"),
            face_evidence=cat("face_evidence"),
            face_landmarks=np.concatenate([p.face_landmarks for p in parts if len(p.face_landmarks)])
            if any(len(p.face_landmarks) for p in parts)
            else first.face_landmarks,
            backend=first.backend,
            scheme=first.scheme,
            width=first.width,
            height=first.height,
            scale=first.scale,
            fps=first.fps,
        )
        return finalize(
            merged,
            target=self.face,
            smoothing=self.smoothing,
            strength=self.smooth_strength,
            max_yaw=self.max_yaw,
            low_confidence=self.low_confidence,
            min_track_frames=self.min_track_frames,
        )


def to_full_resolution(points: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Landmarks (N,3) from a frame scaled by 1/sx, 1/sy back to full-resolution pixels
    (pixel-centre convention; z scaled like x)."""
    p = np.asarray(points, np.float64).copy()
    if sx == 1.0 and sy == 1.0:
        return p.astype(np.float32)
    p[:, 0] = (p[:, 0] + 0.5) * sx - 0.5
    p[:, 1] = (p[:, 1] + 0.5) * sy - 0.5
    p[:, 2] *= sx
    return p.astype(np.float32)


def _to_full_box(box: np.ndarray, sx: float, sy: float) -> np.ndarray:
    b = np.asarray(box, np.float64)
    return np.array(
        [(b[0] + 0.5) * sx - 0.5, (b[1] + 0.5) * sy - 0.5, (b[2] + 0.5) * sx - 0.5, (b[3] + 0.5) * sy - 0.5], np.float32
    )
