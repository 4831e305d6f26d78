"""The plan stage: the edit request resolved on the shot into per-frame target AUs
(:func:`facepipe.plan.planner.make_plan`), cached like the analysis it stands on."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from facepipe.plan import emotions as em
from facepipe.plan.planner import EditPlan, make_plan
from facepipe.plan.request import EditRequest
from facepipe.pipeline.stage import AnalysisStage


@dataclass
class PlanStage(AnalysisStage):
    """The :class:`~facepipe.plan.planner.EditPlan` of ``request`` (canonical JSON,
    :meth:`EditRequest.to_json`) on the fitted shot. Frames the tracker marks unreliable fade
    out of the edit; a shot with no fitted face gets weight 0 everywhere (it passes through)."""

    name = "plan"
    version = "3"  # 2: targets may exceed 1 (intensity above 1); 3: the lid raise yields to blinks
    inputs = ("track", "fit3d")
    artifact = EditPlan

    request: str = "{}"

    def params(self) -> dict:
        """The request and the emotion table it is resolved with (a recalibrated table is a new plan)."""
        return {**super().params(), "prototypes": dict(em.PROTOTYPE_CODES)}

    @classmethod
    def of(cls, request: EditRequest) -> PlanStage:
        return cls(request=request.to_json())

    def run(self, ctx, inputs) -> EditPlan:
        tracks, fit = inputs["track"], inputs["fit3d"]
        reliable = tracks.usable() if fit.has_face else np.zeros(len(fit.au), bool)
        request = EditRequest.from_dict(json.loads(self.request))
        return make_plan(fit.au, fit.au_names, request, ctx.media.fps, reliable, start_timecode=ctx.media.timecode,
                         device=ctx.device)  # fmt: skip
