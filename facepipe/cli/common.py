"""Click helpers shared by every facepipe command.

User errors end in one line on stderr and a non-zero exit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import functools
import os
import sys

import click

from facepipe.errors import INTERNAL_ERROR, INTERRUPTED, FacepipeError

os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe/absl noise, before any import of it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def handle_errors(fn):
    """Turn user errors into one line + exit code; anything else into a short internal-error line."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = kwargs.get("debug") or click.get_current_context().find_root().params.get("debug")
        try:
            return fn(*args, **kwargs)
        except FacepipeError as exc:
            if debug:
                raise
            click.echo(f"facepipe: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("facepipe: interrupted; no partial output was left", err=True)
            sys.exit(INTERRUPTED)
        except Exception as exc:  # noqa: BLE001 - a bug; keep the terminal readable
            if debug:
                raise
            click.echo(f"facepipe: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", err=True)
            sys.exit(INTERNAL_ERROR)

    return wrapper


def common_options(fn):
    """Options shared by commands that run the pipeline."""
    options = [
        click.option("--workdir", type=click.Path(file_okay=False), default=None,
                     help="Cache of analysis artifacts (default: $FACEPIPE_WORKDIR or ~/.cache/facepipe/work)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--chunk-mb", type=click.IntRange(1, None), default=32, show_default=True,
                     help="Memory budget of one chunk of decoded frames; bounds memory on long shots."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return progress_options(fn)


def progress_options(fn):
    """``--progress``, ``--progress-format`` and ``--debug``, folded into the command's job progress."""
    options = [
        click.option("--progress", type=click.Choice(["auto", "bar", "plain", "off"]), default="auto",
                     show_default=True, help="Bar on a terminal, 'Progress: N%' lines otherwise."),
        click.option("--progress-format", type=click.Choice(PROGRESS_FORMATS), default="plain", show_default=True,
                     help="Lines for a farm manager, one 0..100 over the whole command: plain/deadline "
                          "'Progress: N%', openjd 'openjd_progress: N', tractor 'ALF_PROGRESS N%'."),
        click.option("--debug", is_flag=True, help="Show full tracebacks."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return with_job_progress(fn)


#: ``--deblur-method`` choices (facepipe.stages.deblur.METHODS, not imported here: --help stays instant).
DEBLUR_METHODS = ["none", "classical", "gan"]


def deblur_analysis_options(fn):
    """``--deblur-method`` and ``--deblur-weights``: the deblur node the tracking reads (named as
    :func:`facepipe.api.edit`'s arguments). ``prepare`` takes these: they key the tracking its
    edit's chunks read."""
    options = [
        click.option("--deblur-method", type=click.Choice(DEBLUR_METHODS), default="none", show_default=True,
                     help="Deblur the faces of frames moving >= 3 px/frame before tracking: classical (Richardson-Lucy "
                          "with the face's motion) or gan (--deblur-weights); none reads the decoded frames."),
        click.option("--deblur-weights", type=click.Path(dir_okay=False), default=None,
                     help="Deblur GAN checkpoint for --deblur-method gan (facepipe train deblur)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def deblur_options(fn):
    """:func:`deblur_analysis_options` and ``--deblur``: the edit delivers the deblur node's
    restored faces."""
    # --no-deblur (the default) too: a farm template passes one or the other, it cannot omit an argument
    fn = click.option("--deblur/--no-deblur", default=False,
                      help="Deliver the restored faces: the edit is laid over the deblur node's frames instead of "
                           "the decoded ones, blended in as the face's motion rises from 3 to 6 px/frame (needs "
                           "--deblur-method classical or gan).")(fn)  # fmt: skip
    return deblur_analysis_options(fn)


#: ``--progress-format`` choices (facepipe.pipeline.progress.FORMATS, not imported here: --help stays instant).
PROGRESS_FORMATS = ["plain", "deadline", "openjd", "tractor"]


def with_job_progress(fn):
    """Fold ``--progress`` and ``--progress-format`` into one job-level progress for the command
    (named as the click command), and end it at 100% when the command succeeds."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from facepipe.pipeline.progress import finish_progress, job_progress

        ctx, names = click.get_current_context(), []
        while ctx.parent is not None:  # the command's path below the root: "edit", "farm edit"
            names.insert(0, ctx.info_name)
            ctx = ctx.parent
        job = " ".join(names) or "job"
        kwargs["progress"] = job_progress(job, kwargs["progress"], kwargs.pop("progress_format"))
        result = fn(*args, **kwargs)
        finish_progress(kwargs["progress"])
        return result

    return wrapper
