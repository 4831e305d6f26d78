"""The analysis graph: the stages an edit, an analysis or an evaluation pulls artifacts from."""

from __future__ import annotations


def analysis_stages(face: str = "largest") -> list:
    """The analysis graph: every stage an edit or an analysis may pull artifacts from.

    ``face`` picks the actor (``largest``, ``center`` or a track id from ``facepipe faces``).
    """
    from facepipe.analysis.expression import ExpressionStage
    from facepipe.stages.fit3d import Fit3DStage
    from facepipe.stages.scan import ScanStage
    from facepipe.stages.track import TrackStage

    return [ScanStage(), TrackStage(face=str(face).strip().lower()), Fit3DStage(), ExpressionStage()]


def track_and_fit(ctx, face: str = "largest"):
    """(FaceTracks, FaceFit or None when the clip has no face) of ``ctx``'s clip, through the cache."""
    from facepipe.pipeline.runner import Runner

    runner = Runner(analysis_stages(face), ctx)
    tracks = runner.get("track")
    return tracks, (runner.get("fit3d") if tracks.has_face else None)
