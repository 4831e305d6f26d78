"""Edit planning: emotion -> AU targets (EMFACS), edit requests, and the per-frame expression plan.

``facepipe.plan.request`` and ``facepipe.plan.emotions`` import no torch, so the CLI can check a
request before anything heavy loads; the planner (torch) is imported on first use.
"""

from facepipe.plan.emotions import EMOTIONAL_AUS, EMOTIONS, SPEECH_AUS, prototype
from facepipe.plan.request import EditRequest, parse_request, request_from_data

_LAZY = {"EditPlan", "make_plan", "plan_targets"}


def __getattr__(name):
    if name in _LAZY:
        from facepipe.plan import planner

        return getattr(planner, name)
    raise AttributeError(f"module 'facepipe.plan' has no attribute {name!r}")


__all__ = [
    "EMOTIONAL_AUS",
    "EMOTIONS",
    "SPEECH_AUS",
    "EditPlan",
    "EditRequest",
    "make_plan",
    "parse_request",
    "plan_targets",
    "prototype",
    "request_from_data",
]
