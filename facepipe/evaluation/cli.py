"""``facepipe eval ORIG EDITED --emotion E``: score an edit (the evaluation harness).

Registered by ``facepipe/cli.py`` as the ``eval`` command (``eval_command``); kept here so the
evaluation code owns its command line. Like every command it only assembles: it calls
``facepipe.api.evaluate``, which wires the analysis job into the harness (the rest of
``facepipe.evaluation`` imports neither the API nor the job layer). ``benchmarks/quality.py``
is the same with a batch mode.
"""

from __future__ import annotations

import json

import click

from facepipe.cli_common import common_options, handle_errors


@click.command("eval")
@click.argument("source", type=click.Path(dir_okay=False))
@click.argument("edited", type=click.Path(dir_okay=False))
@click.option(
    "--emotion",
    required=True,
    help="The emotion the edit asked for (neutral, happy, sad, angry, surprised, fearful, disgusted, contempt).",
)
@click.option(
    "--plan",
    type=click.Path(),
    default=None,
    help="The edit's plan (per-frame AU targets, JSON or plan artifact folder) for AU fidelity.",
)
@click.option("--frames", default=None, help="Source frames the edited clip holds (default: all), e.g. 40-120.")
@click.option("--codec", default=None, help="Codec preset of the reference re-encode (default: like the edited clip).")
@click.option(
    "--reencode",
    type=click.Path(dir_okay=False),
    default=None,
    help="An existing plain re-encode of the source to compare the background with.",
)
@click.option("--no-identity", is_flag=True, help="Skip the dlib identity measure.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the full report here.")
@common_options
@handle_errors
def eval_command(
    source, edited, emotion, plan, frames, codec, reencode, no_identity, json_path, workdir, device, progress, chunk_mb,
    debug,
):
    """Score EDITED against its SOURCE: emotion, AU fidelity, identity, speech, sharpness,
    stability (landmark jitter, flicker, warping error) and untouched background. The edited
    clip is re-tracked independently.

    Example: facepipe eval clip.mp4 clip.happy.mp4 --emotion happy --json scores.json
    """
    from facepipe.api import evaluate
    from facepipe.evaluation.table import summary_lines

    report = evaluate(
        source,
        edited,
        emotion,
        plan=plan,
        frames=frames,
        codec=codec,
        reencode=reencode,
        identity=not no_identity,
        workdir=workdir,
        device=device,
        progress=progress,
        log=lambda m: click.echo(m, err=True),
    )
    if json_path:
        from pathlib import Path

        from facepipe.io.atomic import StagedFile

        with StagedFile(Path(json_path)) as tmp:
            tmp.write_text(json.dumps(report, indent=1))
    for line in summary_lines(report):
        click.echo(line)
