"""The motion stage: the face's box and motion per frame from the detector alone, before tracking.

The deblur node needs a per-frame blur estimate and the face's place, but ``track`` reads the
deblur node's frames, so the tracks' velocity would make a cycle. This stage runs the tracking
backend's face detector (no landmarks: about 5 ms a frame on a CPU core) on the decoded frames
and keeps the largest face of each frame; its centre's motion in px/frame is the blur estimate
(a face moving v px per frame smears over about v * shutter/360 px). A jump of the box centre by
more than half the box's side between two frames is another face (or a false detection), not
motion: the velocity is not differenced across it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facepipe.io.reader import to_uint8_images
from facepipe.pipeline.artifacts import Artifact
from facepipe.pipeline.stage import ChunkedStage
from facepipe.tracking.backends import get_backend
from facepipe.tracking.tracks import face_velocity


@dataclass
class FaceMotion(Artifact):
    """indices: (T,) int64 source frames; box: (T,4) float32 x0,y0,x1,y1 full-resolution px of
    the largest detected face (NaN where none); velocity: (T,2) float32 px/frame of its centre
    (0 where unknown)."""

    indices: np.ndarray
    box: np.ndarray
    velocity: np.ndarray

    @property
    def speed(self) -> np.ndarray:
        """(T,) float32 px/frame: the per-frame blur estimate."""
        return np.linalg.norm(self.velocity, axis=1).astype(np.float32)


def largest_box(detections) -> np.ndarray:
    """(4,) float32 box of the largest of ``detections`` (NaN when there are none)."""
    boxes = [d.box for d in detections]
    if not boxes:
        return np.full(4, np.nan, np.float32)
    return np.asarray(max(boxes, key=lambda b: float((b[2] - b[0]) * (b[3] - b[1]))), np.float32)


def box_velocity(box: np.ndarray) -> np.ndarray:
    """box (T,4) (NaN rows where no face) -> (T,2) float32 px/frame of the box centre: central
    differences inside runs of present frames, split where the centre jumps by more than half
    the box's side (another face); 0 where unknown."""
    corners = np.asarray(box, np.float32).reshape(-1, 2, 2)  # the corners' mean is the centre
    centre = corners.mean(axis=1)
    side = np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
    jump = np.linalg.norm(np.diff(centre, axis=0), axis=1) > 0.5 * np.fmin(side[1:], side[:-1])
    return face_velocity(corners, cuts=np.flatnonzero(jump) + 1)


@dataclass
class MotionStage(ChunkedStage):
    """Face boxes by detection and their motion; ``backend``: the tracking backend whose
    detector runs."""

    name = "motion"
    version = "1"
    frames_from = "decode"
    artifact = FaceMotion

    backend: str = "mediapipe"

    def detector(self, ctx):
        backend = getattr(self, "_backend_obj", None)
        if backend is None:  # one per stage object: the detector's models load once per run
            backend = get_backend(self.backend, device=str(ctx.device))
            object.__setattr__(self, "_backend_obj", backend)
        return backend

    def run_chunk(self, ctx, chunk, inputs, previous) -> FaceMotion:
        detector = self.detector(ctx)
        box = np.stack([largest_box(detector.detect(image)) for image in to_uint8_images(chunk.frames)])
        # velocity needs the neighbours across chunk boundaries: combine computes it
        return FaceMotion(chunk.indices.astype(np.int64), box.astype(np.float32), np.zeros((len(box), 2), np.float32))

    def combine(self, parts: list[FaceMotion]) -> FaceMotion:
        box = np.concatenate([p.box for p in parts])
        return FaceMotion(np.concatenate([p.indices for p in parts]), box, box_velocity(box))
