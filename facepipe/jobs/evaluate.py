"""``facepipe eval``: the evaluation harness with both clips analysed through the stage graph
(cached in the work directory) and the background compared with facepipe's own pass-through
re-encode of the source."""

from __future__ import annotations

from facepipe.evaluation.harness import evaluate as score
from facepipe.jobs.analyze import run_analysis
from facepipe.jobs.context import open_context
from facepipe.jobs.edit import EditSettings, run_edit
from facepipe.plan.request import parse_request


def evaluate(source, edited, emotion: str, plan=None, frames: str | None = None, codec: str | None = None,
             reencode=None, identity: bool = True, workdir=None, device: str = "auto", progress: str = "off",
             log=print) -> dict:  # fmt: skip
    """Score ``edited`` against ``source`` for an edit towards ``emotion`` (see
    :func:`facepipe.evaluation.harness.evaluate`); ``reencode`` an existing plain re-encode of
    the source, else one is made with ``codec``. Returns the report."""
    quiet = lambda m: None  # noqa: E731

    def analyse(path, au: bool):
        return run_analysis(path, au=au, workdir=workdir, device=device, progress=progress, log=quiet)

    def reencode_source(src, out, codec_name, frame_range):
        opener = lambda info: open_context(info, workdir, device, "off", log=quiet)  # noqa: E731
        return run_edit(src, parse_request(["neutral"], 0.0), out, True, frame_range, "index", codec_name,
                        EditSettings(), opener, quiet).output  # fmt: skip

    return score(source, edited, emotion, analyse=analyse, reencode_source=reencode_source, plan=plan, frames=frames,
                 codec=codec, reencode=reencode, identity=identity, log=log)  # fmt: skip
