"""The evaluation harness: score an edited clip against its source.

- :mod:`facepipe.evaluation.harness` -- ``evaluate(source, edited, emotion, plan=None)`` -> report dict.
- :mod:`facepipe.evaluation.measures` -- one small function per measure (emotion stats, AU
  fidelity, identity, speech correlation, sharpness, jitter/flicker, background PSNR, warnings).
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
