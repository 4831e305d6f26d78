"""The fit3d stage: face tracks in, a :class:`~facepipe.face.shot.FaceFit` (identity, pose, AU
curves) out, through :func:`facepipe.face.shot.fit_tracks`. A shot without a usable face gives
an unfitted FaceFit (every frame invalid, with the reason), which later stages pass through."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

from facepipe.face.fit import FitConfig
from facepipe.face.model import RIG_PATH, load_model
from facepipe.face.shot import FaceFit, check_tracks, fit_tracks, unfitted, usable_frames
from facepipe.pipeline.artifacts import Artifact
from facepipe.pipeline.stage import AnalysisStage


@dataclass
class Fit3DStage(AnalysisStage):
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
        # The rig's content, not its path, decides the fit.
        rig = Path(self.rig or RIG_PATH)
        return {**dataclasses.asdict(self), "rig": hashlib.sha256(rig.read_bytes()).hexdigest()[:16]}

    def config(self) -> FitConfig:
        return dataclasses.replace(
            FitConfig(), iterations=self.iterations, pose_smooth=self.pose_smooth, au_smooth=self.au_smooth,
            au_l1=self.au_l1, min_confidence=self.min_confidence,
        )  # fmt: skip

    def run(self, ctx, inputs: dict[str, Artifact]) -> FaceFit:
        tracks = inputs["track"]
        if not usable_frames(tracks, self.min_confidence).any():
            return unfitted(tracks, load_model(self.rig or None))
        check_tracks(tracks, self.min_confidence)  # the one-line error, before any work
        bar = ctx.progress(self.iterations, "fit3d")
        try:
            return fit_tracks(tracks, self.config(), self.rig, ctx.device, bar.update)
        finally:
            bar.close()
