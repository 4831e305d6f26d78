"""``facepipe analyze CLIP``: AU / emotion curves, CSV + JSON, a plot and a contact sheet."""

from __future__ import annotations

import json

import click

from facepipe.cli.common import common_options, deblur_analysis_options, handle_errors


@click.command("analyze")
@click.argument("clip", type=click.Path(dir_okay=False))
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for CLIP.analysis.{csv,json}, CLIP.curves.png, CLIP.sheet.png (default: ./CLIP.analysis).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the per-frame JSON here instead "
    "(fps, frames[index, face, confidence, residual_iod, au, emotion, pose]).",
)
@click.option(
    "--face", default="largest", show_default=True, help="The actor: largest, center or a face id (see facepipe faces)."
)
@click.option("--no-au", is_flag=True, help="Skip the 3D face fit (no AU columns; faster).")
@click.option("--no-plot", is_flag=True, help="Do not write the curves PNG.")
@click.option("--no-sheet", is_flag=True, help="Do not write the contact sheet PNG.")
@click.option(
    "--samples", type=click.IntRange(1, 48), default=12, show_default=True, help="Frames on the contact sheet."
)
@click.option("--summary-json", "summary_json", is_flag=True, help="Print the summary as JSON.")
@deblur_analysis_options
@common_options
@handle_errors
def analyze_command(
    clip,
    out_dir,
    json_path,
    face,
    no_au,
    no_plot,
    no_sheet,
    samples,
    summary_json,
    deblur_method,
    deblur_weights,
    workdir,
    device,
    progress,
    chunk_mb,
    debug,
):
    """Per-frame AU intensities, emotion probabilities, head pose and face confidence of the actor.

    Writes CSV and JSON, a PNG of the curves and a contact sheet of sampled frames labelled with
    the dominant emotion. Reuses cached tracking/fit artifacts (--deblur-method keys them: give
    the method the edit will use to share its tracking).

    Example: facepipe analyze clip.mp4 --json clip.json
    """
    from facepipe.api import analyze
    from facepipe.jobs.analyze import summary

    result = analyze(
        clip,
        out_dir=out_dir,
        json_path=json_path,
        au=not no_au,
        plot=not no_plot,
        sheet=not no_sheet,
        samples=samples,
        face=face,
        deblur_method=deblur_method,
        deblur_weights=deblur_weights,
        workdir=workdir,
        device=device,
        progress=progress,
        chunk_mb=chunk_mb,
        log=lambda m: click.echo(m, err=True),
    )
    info = summary(result)
    if summary_json:
        click.echo(
            json.dumps(
                {
                    **info,
                    "outputs": {k: str(v) for k, v in result.outputs.items()},
                    "seconds": round(result.seconds, 2),
                },
                indent=1,
            )
        )
        return
    click.echo(
        f"{result.clip.name}: {info['face_frames']}/{info['frames']} frames with a face, "
        f"{result.seconds:.1f} s (cache reused: {', '.join(result.stats.get('cached', [])) or 'nothing'})"
    )
    click.echo("  dominant emotion: " + ", ".join(f"{k} {v:.0%}" for k, v in info["dominant_share"].items()))
    if "au_peaks" in info:
        click.echo("  AU peaks: " + ", ".join(f"{k} {v:.2f}" for k, v in info["au_peaks"].items()))
    else:
        click.echo(f"  AU intensities MISSING: {info['au_missing']}")
    for kind, path in result.outputs.items():
        click.echo(f"  {kind:>5}: {path}")
