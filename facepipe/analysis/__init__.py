"""Expression analysis: what the actor's face does, frame by frame (pure parts; the job that
runs them through the stage graph is :mod:`facepipe.jobs.analyze`).

- :mod:`facepipe.analysis.align` -- 64x64 greyscale face crops from landmarks (eye-centre similarity).
- :mod:`facepipe.analysis.expression` -- per-frame emotion probabilities from fer's mini-Xception
  (``EmotionCurves``, the artifact of the ``expression`` stage).
- :mod:`facepipe.analysis.regions` -- mouth opening, face size, face mattes from landmarks.
- :mod:`facepipe.analysis.result` -- ``AnalysisResult``: tracks + fit + emotions of a clip.
- :mod:`facepipe.analysis.report` -- JSON/CSV records, the curves plot, the contact sheet.
"""
