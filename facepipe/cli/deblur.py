"""``facepipe deblur CLIP``: restore the faces of a clip's motion-blurred frames, on its own."""

from __future__ import annotations

import click

from facepipe.cli.common import common_options, handle_errors


@click.command("deblur")
@click.argument("clip", type=click.Path(dir_okay=False))
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="Deblur GAN checkpoint (facepipe train deblur); needed by --method gan.")
@click.option("--method", type=click.Choice(["gan", "classical"]), default="gan", show_default=True,
              help="gan: the checkpoint's generator; classical: Richardson-Lucy with the face's velocity.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Output clip (default: CLIP.deblurred.EXT).")
@click.option("--moments", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Also write N sharp moments per restored frame as PNG face crops into OUT.moments/ (gan only).")
@click.option("--threshold", type=click.FloatRange(0, None), default=None,
              help="Face motion (px/frame) from which a frame is restored (default: the deblur node's, 3).")
@click.option("--shutter", type=click.FloatRange(0, 360, min_open=True), default=180.0, show_default=True,
              help="Shutter angle, degrees: the classical kernel's length.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@common_options
@handle_errors
def deblur_command(clip, threshold, debug, **options) -> None:
    """Restore the faces of CLIP's frames blurred by fast motion and write the clip (same fps,
    frame count, timing and audio); other frames and everything outside the face pass unchanged.

    Example: facepipe deblur shot.mp4 --weights deblur.pt --moments 5
    (writes shot.deblurred.mp4 and shot.deblurred.moments/)
    """
    from facepipe.api import deblur

    if threshold is not None:
        options["threshold"] = threshold
    deblur(clip, log=lambda m: click.echo(m, err=True), **options)
