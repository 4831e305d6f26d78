"""Expression analysis: what the actor's face does, frame by frame.

- :mod:`facepipe.analysis.align` -- 64x64 greyscale face crops from landmarks (eye-centre similarity).
- :mod:`facepipe.analysis.expression` -- the ``expression`` stage (``ExpressionStage``,
  ``EmotionCurves``): per-frame emotion probabilities from fer's mini-Xception.
- :mod:`facepipe.analysis.regions` -- mouth opening, face size, face mattes from landmarks.
- :mod:`facepipe.analysis.job` -- ``analyze()`` / ``run_analysis()``: tracks + fit + emotions.
- :mod:`facepipe.analysis.report` -- JSON/CSV records, the curves plot, the contact sheet.
- :mod:`facepipe.analysis.cli` -- the ``facepipe analyze`` command (``analyze_command``).
"""

__all__ = ["analyze", "run_analysis"]


def __getattr__(name):  # lazy: ``facepipe --help`` must not import torch
    if name in __all__:
        from facepipe.analysis import job

        return getattr(job, name)
    raise AttributeError(f"module 'facepipe.analysis' has no attribute {name!r}")
