"""The fit3d stage: face tracks in, a :class:`FaceFit` (identity, pose, AU curves) out.

Adapts the tracker's ``FaceTracks`` (``landmarks`` (T,N,3) px, ``confidence`` (T,), ``flags``)
to :func:`facepipe.face.fit.fit_shot`: frames the tracker marks unusable (no face, low
confidence, profile, occluded) get zero weight and interpolated parameters, and temporal
smoothing is not carried across the tracker's shot cuts.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facepipe.errors import FacepipeError
from facepipe.face.fit import FitConfig, ShotFit
from facepipe.pipeline.artifacts import Artifact
from facepipe.pipeline.stage import Stage


@dataclass
class FaceFit(ShotFit, Artifact):
    """The face model fitted to a shot (see :class:`~facepipe.face.fit.ShotFit` for the fields).

    frame_index: (T,) int64 source frame indices, as in the tracks.
    """

    frame_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class Fit3DStage(Stage):
    """Fit the parametric face model to the whole shot.

    Args:
        iterations: optimiser steps (fixed, for determinism).
        pose_smooth, au_smooth: temporal smoothing of head pose and AU curves.
        au_l1: sparsity of the AUs (higher: fewer AUs at once).
        min_confidence: tracker confidence below which a frame is not fitted but interpolated.
        rig: path of a face rig .npz (default: the rig shipped with facepipe).
    """

    name = "fit3d"
    version = "2"  # 2: FitConfig z_weight 1.0, au_l1 30 (not stage params: bump to drop old caches)
    inputs = ("track",)
    artifact = FaceFit

    iterations: int = FitConfig.iterations
    pose_smooth: float = FitConfig.pose_smooth
    au_smooth: float = FitConfig.au_smooth
    au_l1: float = FitConfig.au_l1
    min_confidence: float = FitConfig.min_confidence
    rig: str = ""

    def params(self) -> dict:
        from facepipe.face.model import RIG_PATH

        # The rig's content, not its path, decides the fit.
        rig = Path(self.rig or RIG_PATH)
        return {**dataclasses.asdict(self), "rig": hashlib.sha256(rig.read_bytes()).hexdigest()[:16]}

    def config(self) -> FitConfig:
        return dataclasses.replace(
            FitConfig(), iterations=self.iterations, pose_smooth=self.pose_smooth, au_smooth=self.au_smooth,
            au_l1=self.au_l1, min_confidence=self.min_confidence,
        )  # fmt: skip

    def run(self, ctx, inputs: dict[str, Artifact]) -> FaceFit:
        check_tracks(inputs["track"], self.min_confidence)
        bar = ctx.progress(self.iterations, "fit3d")
        try:
            return fit_tracks(inputs["track"], self.config(), self.rig, ctx.device, bar.update)
        finally:
            bar.close()


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
    from facepipe.face.fit import fit_shot
    from facepipe.face.model import load_model

    lm, confidence = check_tracks(tracks, config.min_confidence)
    cuts = np.searchsorted(np.asarray(tracks.frame_index), np.asarray(tracks.shot_cuts))
    fit = fit_shot(lm, confidence, (tracks.width, tracks.height), load_model(rig or None), config,
                   device=device, progress=progress, cuts=cuts, identity=identity)  # fmt: skip
    return FaceFit(**vars(fit), frame_index=np.asarray(tracks.frame_index, np.int64))
