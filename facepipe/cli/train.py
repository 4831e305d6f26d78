"""``facepipe train``: the recipes that make the project's own network weights."""

from __future__ import annotations

import json

import click

from facepipe.cli.common import handle_errors


@click.group()
def train() -> None:
    """Train networks on footage (the deblur GAN; the person-specific renderer is issue 15)."""


@train.command("deblur")
@click.argument("clips", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Checkpoint to write (.pt).")
@click.option("--val", "val_clips", multiple=True, type=click.Path(dir_okay=False),
              help="Clip held out for validation (repeatable; default: every tenth window of the training clips).")
@click.option("--steps", type=click.IntRange(1, None), default=None, help="Training steps.")
@click.option("--minutes", type=click.FloatRange(0, None, min_open=True), default=None, help="Training wall time.")
@click.option("--size", type=click.IntRange(16, 1024), default=128, show_default=True, help="Face crop size, px (a multiple of 8).")
@click.option("--exposure", type=click.IntRange(3, 31), default=7, show_default=True, help="Frames per synthetic exposure (odd).")
@click.option("--width", type=click.IntRange(4, 256), default=16, show_default=True, help="Generator width (16: the CPU config).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-windows", type=click.IntRange(1, None), default=60, show_default=True, help="Windows per clip at most.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None, help="Cache of the tracking (as facepipe edit's).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--force", is_flag=True, help="Overwrite an existing checkpoint.")
@handle_errors
def deblur(clips, **options) -> None:
    """Train the continuous-motion face deblur GAN on synthetic exposures made from sharp
    CLIPS (consecutive frames averaged in linear light) and write its checkpoint.

    Example: facepipe train deblur a.mp4 b.mp4 --val c.mp4 --minutes 10 --out deblur.pt
    """
    from facepipe.api import train_deblur

    report = train_deblur(list(clips), **options)
    click.echo(json.dumps({"steps": report["steps"], "seconds": report["seconds"],
                           "validation_before": report["validation_before"], "validation_after": report["validation_after"]}))
