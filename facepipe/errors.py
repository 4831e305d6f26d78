"""Errors a user can cause, and the exit codes the CLI gives them (farm managers read them).

=====  ==========================================================================
code   meaning
=====  ==========================================================================
0      done
1      internal failure: a bug (the message says to rerun with ``--debug``)
2      bad input: a missing or damaged file, a bad request, option or frame range
3      the output exists and ``--force`` was not given (nothing was written)
4      model weights are missing (the message names the command that fetches them)
130    interrupted (Ctrl-C); no partial output is left
=====  ==========================================================================

Each is printed as one line (no traceback unless ``--debug``).
"""

#: Exit code of an unexpected exception (a bug).
INTERNAL_ERROR = 1
#: Exit code of an interrupted run.
INTERRUPTED = 130


class FacepipeError(Exception):
    """A problem with the user's input or environment; the message says what to do."""

    exit_code = 2


class MediaError(FacepipeError):
    """The input is not a readable video, or it has no usable video stream."""


class OutputExistsError(FacepipeError):
    """The output exists and --force was not given."""

    exit_code = 3


class WeightsMissingError(FacepipeError):
    """A model's weights are not in the cache; the message names the command that fetches them."""

    exit_code = 4


class RequestError(FacepipeError):
    """An edit request (emotion, intensity, frame range, codec...) is invalid."""
