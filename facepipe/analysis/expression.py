"""Per-frame emotion probabilities of the tracked actor (what the ``expression`` stage computes).

Each frame's face is aligned from the tracked landmarks (:mod:`facepipe.analysis.align`) and
classified by fer's mini-Xception (:mod:`facepipe.nn.expression`). The classifier is small and
trained on low-resolution web photos: it calls many talking faces angry or sad and it rewards
blur, so its output is reported as a full distribution, never as one trusted label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from facepipe.analysis.align import EYE_DIST, EYE_Y, align_faces
from facepipe.nn.expression import classify_faces
from facepipe.pipeline.artifacts import Artifact

#: Classifier classes, in output column order (``facepipe.nn.expression.EMOTIONS``).
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: The edit request's emotion names (``facepipe.api.EMOTIONS``) -> classifier class (None: no class).
REQUEST_TO_CLASS = {
    "neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "surprised": "surprise",
    "fearful": "fear", "disgusted": "disgust", "contempt": None,
    "surprise": "surprise", "fear": "fear", "disgust": "disgust",
}  # fmt: skip


def classifier_class(emotion: str) -> str | None:
    """The classifier class for an edit's emotion name (``surprised`` -> ``surprise``); None for
    ``contempt``, which the classifier does not know. ValueError for unknown names."""
    try:
        return REQUEST_TO_CLASS[emotion.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown emotion {emotion!r}: use one of {', '.join(REQUEST_TO_CLASS)}") from None


@dataclass
class EmotionCurves(Artifact):
    """frame_index: (T,) int64 source frames; probs: (T,7) float32 class probabilities in
    ``emotions`` order, NaN rows where no face; valid: (T,) uint8 1 where a face was classified."""

    frame_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    probs: np.ndarray = field(default_factory=lambda: np.zeros((0, len(CLASSES)), np.float32))
    valid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    emotions: list = field(default_factory=lambda: list(CLASSES))
    eye_dist: float = EYE_DIST
    eye_y: float = EYE_Y

    def dominant(self) -> list[str | None]:
        """(T,) the most probable class per frame (None where no face)."""
        return [CLASSES[int(np.argmax(p))] if v else None for p, v in zip(self.probs, self.valid)]


def emotion_probabilities(
    model,
    frames,
    landmarks: np.ndarray,
    scheme: str = "mediapipe-478",
    eye_dist: float = EYE_DIST,
    eye_y: float = EYE_Y,
) -> tuple[np.ndarray, np.ndarray]:
    """frames (T,3,H,W) float32 0..1 and their landmarks (T,N,3) px -> probs (T,7) float32 (NaN
    where no face) and valid (T,) bool."""
    crops, valid = align_faces(frames, landmarks, scheme, eye_dist=eye_dist, eye_y=eye_y)
    probs = np.full((len(crops), len(CLASSES)), np.nan, np.float32)
    if valid.any():
        probs[valid] = classify_faces(model, torch.from_numpy(crops[valid])).cpu().numpy()
    return probs, valid
