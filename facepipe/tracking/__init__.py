"""Face tracking: find, follow and landmark the actor through a shot.

Public API (the backends load mediapipe and face_alignment only when they run):

- :mod:`facepipe.tracking.backends` -- ``get_backend(name)``: detector + landmark model behind
  one interface (MediaPipe face mesh by default; FAN when its weights are on disk).
- :mod:`facepipe.tracking.schemes` -- landmark schemes and ``mesh_to_ibug68``.
- :mod:`facepipe.tracking.tracker` -- ``FaceTracker`` (multi-face, stable ids, shot-cut aware).
- :mod:`facepipe.tracking.signature` -- ``signature``, ``similarity``: a face's re-identification signature.
- :mod:`facepipe.tracking.shotcut` -- ``ShotCutDetector``, ``detect_cuts``.
- :mod:`facepipe.tracking.filters` -- ``smooth_offline``, ``smooth_causal`` / ``OneEuroFilter``, ``jitter``.
- :mod:`facepipe.tracking.tracks` -- the ``FaceTracks`` artifact, ``Flag``, ``select_target``.
- :mod:`facepipe.tracking.geometry` -- ``head_pose``, ``box_iou``.
- :mod:`facepipe.tracking.metrics` -- ``read_pts``, ``nme``.
- :mod:`facepipe.tracking.sheets` -- contact sheets (``tracks_sheet``, ``write_png``).

The stage that runs all this in the pipeline is :class:`facepipe.stages.track.TrackStage`;
``facepipe faces`` is :mod:`facepipe.jobs.faces`.
"""

__all__ = ["FaceTracks", "Flag", "UNUSABLE"]


def __getattr__(name):  # lazy, so ``facepipe --help`` does not import numpy for the faces command
    if name in __all__:
        from facepipe.tracking import tracks

        return getattr(tracks, name)
    raise AttributeError(f"module 'facepipe.tracking' has no attribute {name!r}")
