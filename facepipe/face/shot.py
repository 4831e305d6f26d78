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
    message: why no frame was fitted ("" when some were).
    """

    frame_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    message: str = ""

    @property
    def has_face(self) -> bool:
        """Whether any frame was fitted."""
        return bool(np.asarray(self.valid).any())


NO_USABLE_FACE = "no frame of this shot has a usable face track; nothing to fit"


def usable_frames(tracks, min_confidence: float) -> np.ndarray:
    """(T,) bool: the frames of ``tracks`` the fit may use."""
    return np.where(tracks.usable(), tracks.confidence, 0.0) >= min_confidence


def unfitted(tracks, model, message: str = NO_USABLE_FACE) -> FaceFit:
    """The :class:`FaceFit` of a shot with no usable face: every frame invalid, the template
    shape, AUs 0 and ``message``; downstream stages pass such a shot through unchanged."""
    t = len(tracks.frame_index)
    return FaceFit(
        identity=np.asarray(model.template, np.float32).copy(),
        rotation=np.zeros((t, 3), np.float32),
        translation=np.zeros((t, 3), np.float32),
        scale=np.ones(t, np.float32),
        au=np.zeros((t, len(model.au_names)), np.float32),
        residual=np.full(t, np.nan, np.float32),
        valid=np.zeros(t, np.uint8),
        au_names=list(model.au_names),
        image_size=[int(tracks.width), int(tracks.height)],
        frame_index=np.asarray(tracks.frame_index, np.int64),
        message=message,
    )


def check_tracks(tracks, min_confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """(landmarks (T,N,3), confidence (T,) 0 on unusable frames) of tracks the fit can use, or a
    one-line FacepipeError saying why not."""
    lm = np.asarray(tracks.landmarks, np.float32)
    if lm.ndim != 3 or lm.shape[1] < 468:
        raise FacepipeError(
            f"fit3d needs the 468-point face mesh, but the tracks have {lm.shape[1] if lm.ndim == 3 else 0} "
            "landmarks per frame; track with --backend mediapipe"
        )
    if not usable_frames(tracks, min_confidence).any():
        raise FacepipeError(f"fit3d: {NO_USABLE_FACE}")
    return lm, np.where(tracks.usable(), tracks.confidence, 0.0).astype(np.float32)


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
