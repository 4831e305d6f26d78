"""The stage graph of facepipe: which nodes exist and how they connect.

    analysis:  decode -> deblur -> track -> fit3d -> plan     (plan reads track too)
                         deblur -> expression                  (reads track too)
               decode -> motion -> deblur                     (deblur reads motion unless its method is none)
               decode -> scan
               decode -> repeats                      (reads track too: frames that repeat the one before)
    synthesis: decode -> render -> composite -> smooth -> encode
               (render reads track, fit3d, plan and repeats; smooth reads track;
               with edit --deblur render reads deblur's frames instead of decode's)
    preview:   ... smooth -> compare -> encode

Jobs (``facepipe.jobs``) build a :class:`~facepipe.pipeline.graph.Graph` from these lists and
pull what they need: an analysis pulls ``expression`` and ``fit3d``, an edit pulls ``encode``.
"""

from __future__ import annotations

from facepipe.pipeline.graph import Graph
from facepipe.pipeline.stage import Stage
from facepipe.stages.decode import DecodeStage
from facepipe.stages.deblur import DeblurStage
from facepipe.stages.expression import ExpressionStage
from facepipe.stages.fit3d import Fit3DStage
from facepipe.stages.motion import MotionStage
from facepipe.stages.repeats import RepeatsStage
from facepipe.stages.scan import ScanStage
from facepipe.stages.track import TrackStage


def analysis_stages(face: str = "largest", deblur: DeblurStage | None = None, **track_params) -> list[Stage]:
    """The analysis graph: every stage an edit or an analysis may pull artifacts from.

    ``face`` picks the actor (``largest``, ``center`` or a track id from ``facepipe faces``);
    ``deblur``: the deblur node the tracking reads (default: method ``none``, a pass-through);
    ``track_params`` set the other :class:`TrackStage` parameters.
    """
    return [DecodeStage(), MotionStage(), deblur or DeblurStage(), ScanStage(), TrackStage(face=face, **track_params),
            Fit3DStage(), ExpressionStage(), RepeatsStage()]  # fmt: skip


def track_and_fit(ctx, face: str = "largest"):
    """(FaceTracks, FaceFit or None when the clip has no usable face) of ``ctx``'s clip, through
    the cache."""
    graph = Graph(analysis_stages(face), ctx)
    tracks, fit = graph.get("track"), graph.get("fit3d")
    return tracks, (fit if fit.has_face else None)
