"""Errors a user can cause. The CLI prints them as one line (no traceback) and exits non-zero."""


class FacepipeError(Exception):
    """A problem with the user's input or environment; the message says what to do."""

    exit_code = 2


class MediaError(FacepipeError):
    """The input is not a readable video, or it has no usable video stream."""


class OutputExistsError(FacepipeError):
    """The output exists and --force was not given."""


class WeightsMissingError(FacepipeError):
    """A model's weights are not in the cache; the message names the command that fetches them."""


class RequestError(FacepipeError):
    """An edit request (emotion, intensity, frame range, codec...) is invalid."""
