"""The evaluation harness: score an edited clip against its source.

- :mod:`facepipe.evaluation.harness` -- ``evaluate(source, edited, emotion, *, analyse,
  reencode_source, plan=None, ...)`` -> report dict; the clips' analysis and the plain
  re-encode are given as callables (``facepipe.api.evaluate`` wires facepipe's own in).
- :mod:`facepipe.evaluation.measures` -- one small function per measure (emotion stats, AU
  fidelity, identity, speech correlation, sharpness, jitter/flicker, warping error, background
  PSNR, warnings).
- :mod:`facepipe.evaluation.identity` -- dlib ResNet face descriptors (optional extra).
- :mod:`facepipe.evaluation.breakers` -- deliberately broken edits (frame shift, face blur).
- :mod:`facepipe.evaluation.table` -- reports as a markdown table.
"""

__all__ = ["evaluate"]


def __getattr__(name):  # lazy: ``facepipe --help`` must not import torch
    if name == "evaluate":
        from facepipe.evaluation.harness import evaluate

        return evaluate
    raise AttributeError(f"module 'facepipe.evaluation' has no attribute {name!r}")
