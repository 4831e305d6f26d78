"""The edit job: change an actor's expression in a shot (``facepipe edit`` / ``facepipe preview``)."""

from facepipe.edit.job import EditResult, EditSettings, run_edit

__all__ = ["EditResult", "EditSettings", "run_edit"]
