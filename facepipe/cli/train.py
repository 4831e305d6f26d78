"""``facepipe train``: the recipes that make the project's own network weights."""

from __future__ import annotations

import json

import click

from facepipe.cli.common import handle_errors


@click.group()
def train() -> None:
    """Train networks on footage: the person-specific face renderer and the deblur GAN."""


@train.command("deblur")
@click.argument("clips", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Checkpoint to write (.pt).")
@click.option("--val", "val_clips", multiple=True, type=click.Path(dir_okay=False),
              help="Clip held out for validation (repeatable; default: every tenth window of the training clips).")
@click.option("--steps", type=click.IntRange(1, None), default=None, help="Training steps.")
@click.option("--minutes", type=click.FloatRange(0, None, min_open=True), default=None, help="Training wall time.")
@click.option("--size", type=click.IntRange(16, 1024), default=128, show_default=True, help="Face crop size, px (a multiple of 8).")
@click.option("--exposure", type=click.IntRange(3, 31), default=7, show_default=True, help="Frames per synthetic exposure (odd).")
@click.option("--shutter", type=float, default=None,
              help="Degrees: exposures as long as a real shutter (180 = half a frame time), moments interpolated "
                   "between frames by optical flow [default: whole frames averaged].")  # fmt: skip
@click.option("--samples", type=click.IntRange(2, 256), default=16, show_default=True,
              help="Moments per --shutter exposure.")
@click.option("--width", type=click.IntRange(4, 256), default=16, show_default=True, help="Generator width (16: the CPU config).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-windows", type=click.IntRange(1, None), default=60, show_default=True, help="Windows per clip at most.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None, help="Cache of the tracking (as facepipe edit's).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--force", is_flag=True, help="Overwrite an existing checkpoint.")
@handle_errors
def deblur(clips, **options) -> None:
    """Train the continuous-motion face deblur GAN on synthetic exposures made from sharp
    CLIPS (consecutive frames averaged in linear light, or with --shutter a real shutter's
    length of moments interpolated between them) and write its checkpoint.

    Example: facepipe train deblur a.mp4 b.mp4 --val c.mp4 --minutes 10 --out deblur.pt
    """
    from facepipe.api import train_deblur

    report = train_deblur(list(clips), **options)
    click.echo(json.dumps({"steps": report["steps"], "seconds": report["seconds"],
                           "validation_before": report["validation_before"], "validation_after": report["validation_after"]}))


@train.command("renderer")
@click.argument("clip", type=click.Path(dir_okay=False))
@click.option("--actor", default="", help="Actor name: edits with --actor NAME reuse this renderer [default: the shot's own].")
@click.option("--actor-library", type=click.Path(file_okay=False), default=None,
              help="Keep the renderer in this actor's library folder (under renderers/) instead of the work dir.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Checkpoint to write instead (.pt).")
@click.option("--steps", type=click.IntRange(1, None), default=None, help="Training steps.")
@click.option("--minutes", type=click.FloatRange(0, None, min_open=True), default=None, help="Training wall time.")
@click.option("--size", type=click.IntRange(16, 1024), default=None, help="Face crop px [default: 96 on a CPU, 256 on CUDA].")
@click.option("--width", type=click.IntRange(8, 256), default=None, help="Network width [default: 16 on a CPU, 64 on CUDA].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--face", default="largest", show_default=True, help="Actor to train on: largest, center or a track id.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None, help="Cache of the tracking (as facepipe edit's).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--force", is_flag=True, help="Overwrite an existing checkpoint.")
@handle_errors
def renderer(clip, **options) -> None:
    """Train the person-specific neural face renderer on CLIP (self-supervised: each frame
    re-rendered from another expression's frame warped to its mesh) and save it for the actor.
    Later edits use it with --renderer auto (the default) or neural.

    Example: facepipe train renderer shot.mp4 --actor jane --minutes 10
    """
    from facepipe.api import train_renderer

    report = train_renderer(clip, **options)
    click.echo(json.dumps({k: report[k] for k in ("checkpoint", "steps", "seconds", "device", "validation_after")}))
