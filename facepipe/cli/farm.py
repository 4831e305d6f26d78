"""The commands for render farms and many machines: ``assemble`` (chunks -> movie) and
``farm edit`` (many shots on Dask workers)."""

from __future__ import annotations

import click

from facepipe.cli.common import deblur_options, handle_errors, progress_options
from facepipe.plan.emotions import MAX_INTENSITY


@click.command()
@click.argument("pattern", type=click.Path(dir_okay=False))
@click.option("--like", "like", type=click.Path(dir_okay=False), required=True,
              help="The source clip: fps, per-frame timestamps, timecode, colour tags and audio come from it.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Output movie. Default: the sequence's name with the source's extension, beside it.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@click.option("--codec", default=None, help="h264, h265, h264-lossless, ffv1, prores, prores4444, dnxhr (default: like the source).")
@click.option("--frames", default=None, help="Frames of the sequence to assemble (default: first to last on disk).")
@click.option("--frame-base", type=click.Choice(["index", "1", "timecode"]), default="index", show_default=True,
              help="How the sequence is numbered: source index, 1-based, or timecode frame numbers (as edit's).")
@progress_options
@handle_errors
def assemble(pattern, debug, **options) -> None:
    """Encode an image sequence (a farm's chunks) as a movie timed like the source clip: same
    rational fps, per-frame timestamps, timecode, colour tags, and its audio copied packet for
    packet (for a sub-range, the audio of that range).

    Example: facepipe assemble renders/sh010.%04d.exr --like shot.mov --out sh010.happy.mov
    """
    from facepipe.api import assemble as api_assemble

    click.echo(api_assemble(pattern, **options).summary())


@click.group()
def farm() -> None:
    """Run a batch of shots on many machines (Dask distributed; pip install 'facepipe[farm]')."""


@farm.command("edit")
@click.argument("shots", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--emotion", default=None, help="The emotion of every shot (a shot list's emotion column overrides it).")
@click.option("--shots", "shot_list", type=click.Path(dir_okay=False), default=None,
              help="Shot list: CSV or JSON (clip, emotion, frames optional) or a timeline (.otio, .edl).")
@click.option("--frames", default=None, help="Frame range of every shot named on the command line.")
@click.option("--frame-base", type=click.Choice(["index", "1", "timecode"]), default="index", show_default=True,
              help="What frame ranges mean: 0-based index, 1-based, or timecode frame numbers (an EDL's: timecode).")
@click.option("--scheduler", default=None, help="Dask scheduler address (tcp://HOST:8786); default: a LocalCluster here.")
@click.option("--workers", type=click.IntRange(1, None), default=None, help="LocalCluster worker processes [default: 1].")
@click.option("--chunk", type=click.IntRange(1, None), default=50, show_default=True, help="Frames per chunk task.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder of the movies (SHOT.EMOTION.ext) and of each shot's frames (SHOT.EMOTION.frames/).")
@click.option("--sequence", type=click.Choice(["png", "exr", "tiff"]), default="png", show_default=True,
              help="Image format of the chunks (png: lossless at the source's bit depth).")
@click.option("--intensity", type=float, default=None, help=f"Strength 0..{MAX_INTENSITY:g} of the emotion (1 = its real peak) [default: 1].")
@click.option("--appearance", type=float, default=None, help="Appearance strength 0..1 (see facepipe edit).")
@click.option("--smooth", type=float, default=None, help="Temporal smoothing 0..1 (see facepipe edit).")
@click.option("--threads", type=int, default=None, help="Render threads per task [default: this machine's cores / workers].")
@deblur_options
@click.option("--retries", type=click.IntRange(0, None), default=2, show_default=True, help="Attempts after a task failed.")
@click.option("--force", is_flag=True, help="Overwrite existing movies.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Analysis cache, shared by every worker (default: $FACEPIPE_WORKDIR or ~/.cache/facepipe/work).")
@progress_options
@handle_errors
def farm_edit(shots, emotion, shot_list, frames, frame_base, scheduler, workers, chunk, out_dir, sequence, intensity,
              appearance, smooth, threads, deblur, deblur_method, deblur_weights, retries, force, workdir, progress,
              debug) -> None:  # fmt: skip
    """Edit many shots on Dask workers: per shot, prepare, then its chunks in parallel (an image
    sequence in OUT/SHOT.EMOTION.frames/), then assemble OUT/SHOT.EMOTION.ext.

    Example: facepipe farm edit sh010.mov sh020.mov --emotion happy --workers 2 --out renders
    """
    from pathlib import Path

    from facepipe.errors import RequestError
    from facepipe.farm.engine import FarmSettings, run_farm
    from facepipe.farm.shots import read_shot_list, shots_from_args

    if shots and not emotion:
        raise RequestError("--emotion is needed for shots named on the command line")
    batch = shots_from_args(shots, emotion, frames) if shots else []
    if shot_list:
        batch += read_shot_list(shot_list, emotion)
    named = {"intensity": intensity, "appearance": appearance, "smooth": smooth, "threads": threads,
             "deblur": deblur or None, "deblur_method": None if deblur_method == "none" else deblur_method,
             "deblur_weights": str(Path(deblur_weights).resolve()) if deblur_weights else None}  # workers: another cwd
    settings = FarmSettings(out_dir=Path(out_dir), chunk=chunk, sequence=sequence, workdir=workdir, frame_base=frame_base,
                            force=force, retries=retries, edit={k: v for k, v in named.items() if v is not None})  # fmt: skip
    result = run_farm(batch, settings, scheduler, workers, progress, log=lambda m: click.echo(m, err=True))
    for shot in result.shots:
        click.echo(shot.summary())
    click.echo(result.summary())
