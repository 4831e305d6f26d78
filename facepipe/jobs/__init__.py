"""Jobs: build the stage graph a request needs, pull its sink, report what happened.

- :mod:`facepipe.jobs.context` -- run contexts over the work directory (analysis cache).
- :mod:`facepipe.jobs.edit` -- ``run_edit``: the edit (``facepipe edit``) and the setup it
  shares with the preview.
- :mod:`facepipe.jobs.preview` -- ``run_preview``: the edit of a frame range, reduced, beside the source.
- :mod:`facepipe.jobs.report` -- the edit report (JSON beside the output, one terminal line).
- :mod:`facepipe.jobs.analyze` -- ``run_analysis`` / ``analyze`` (``facepipe analyze``).
- :mod:`facepipe.jobs.faces` -- ``list_faces`` (``facepipe faces``), ``track_clip``.

Jobs sit above the stages; only :mod:`facepipe.api` and :mod:`facepipe.cli` use them.
"""
