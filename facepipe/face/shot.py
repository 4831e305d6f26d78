"""The face model fitted to a tracked shot: the :class:`FaceFit` artifact and :func:`fit_tracks`.

Adapts the tracker's ``FaceTracks`` (``landmarks`` (T,N,3) px, ``confidence`` (T,), ``flags``)
to :func:`facepipe.face.fit.fit_shot`: frames the tracker marks unusable (no face, low
confidence, profile, occluded) get zero weight and interpolated parameters, and temporal
smoothing is not carried across the tracker's shot cuts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facepipe.errors import FacepipeError
from facepipe.face.fit import FitConfig, ShotFit, fit_shot
from facepipe.face.model import load_model
from facepipe.pipeline.artifacts import Artifact


@dataclass
class FaceFit(ShotFit, Artifact):
    """The face model fitted to a shot (see :class:`~facepipe.face.fit.ShotFit` for the fields).

    frame_index: (T,) int64 source frame indices, as in the tracks.
    """

    frame_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def check_tracks(tracks, min_confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """(landmarks (T,N,3), confidence (T,) 0 on unusable frames) of tracks the fit can use, or a
    one-line FacepipeError saying why not."""
    lm = np.asarray(tracks.landmarks, np.float32)
    if lm.ndim != 3 or lm.shape[1] < 468:
        raise FacepipeError(
            f"fit3d needs the 468-point face mesh, but the tracks have {lm.shape[1] if lm.ndim == 3 else 0} "
            "landmarks per frame; track with --backend mediapipe"
        )
    confidence = np.where(tracks.usable(), tracks.confidence, 0.0).astype(np.float32)
    if not (confidence >= min_confidence).any():
        raise FacepipeError("fit3d: no frame of this shot has a usable face track; nothing to fit")
    return lm, confidence


def fit_tracks(tracks, config: FitConfig = FitConfig(), rig: str = "", device="cpu", progress=None,
               identity: np.ndarray | None = None) -> FaceFit:  # fmt: skip
    """Fit the face model to ``FaceTracks``: unusable frames get no weight, cuts break smoothing.

    identity: (V,3) hold the actor's neutral shape fixed (see :func:`facepipe.face.fit.fit_shot`).
    """
    lm, confidence = check_tracks(tracks, config.min_confidence)
    cuts = np.searchsorted(np.asarray(tracks.frame_index), np.asarray(tracks.shot_cuts))
    fit = fit_shot(lm, confidence, (tracks.width, tracks.height), load_model(rig or None), config,
                   device=device, progress=progress, cuts=cuts, identity=identity)  # fmt: skip
    return FaceFit(**vars(fit), frame_index=np.asarray(tracks.frame_index, np.int64))
