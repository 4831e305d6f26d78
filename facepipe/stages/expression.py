"""The expression stage: per-frame emotion probabilities of the tracked actor
(:func:`facepipe.analysis.expression.emotion_probabilities` on every chunk)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facepipe.analysis.align import EYE_DIST, EYE_Y
from facepipe.analysis.expression import EmotionCurves, emotion_probabilities
from facepipe.nn.expression import load_mini_xception
from facepipe.pipeline.stage import ChunkedStage


@dataclass
class ExpressionStage(ChunkedStage):
    """Emotion probabilities of the tracked face in every frame.

    Args:
        eye_dist: eye-centre distance as a fraction of the 64 px crop (see ``analysis.align``).
        eye_y: height of the eye line in the crop, fraction from the top.
    """

    name = "expression"
    version = "1"
    frames_from = "deblur"
    inputs = ("track",)
    artifact = EmotionCurves

    eye_dist: float = EYE_DIST
    eye_y: float = EYE_Y

    def _model(self, ctx):
        model = getattr(self, "_model_obj", None)
        if model is None:
            model = load_mini_xception(device=getattr(ctx, "device", "cpu") or "cpu")
            object.__setattr__(self, "_model_obj", model)
        return model

    def run_chunk(self, ctx, chunk, inputs, previous) -> EmotionCurves:
        tracks = inputs["track"]
        row = {int(f): i for i, f in enumerate(tracks.frame_index)}
        lms = np.stack([tracks.landmarks[row[int(i)]] for i in chunk.indices]) if len(chunk) else None
        probs, valid = emotion_probabilities(
            self._model(ctx), chunk.frames, lms, tracks.scheme or "mediapipe-478", self.eye_dist, self.eye_y
        )
        return EmotionCurves(
            frame_index=chunk.indices.astype(np.int64),
            probs=probs,
            valid=valid.astype(np.uint8),
            eye_dist=self.eye_dist,
            eye_y=self.eye_y,
        )

    def combine(self, parts: list[EmotionCurves]) -> EmotionCurves:
        return EmotionCurves(
            frame_index=np.concatenate([p.frame_index for p in parts]),
            probs=np.concatenate([p.probs for p in parts]),
            valid=np.concatenate([p.valid for p in parts]),
            eye_dist=self.eye_dist,
            eye_y=self.eye_y,
        )
