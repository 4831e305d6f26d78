"""``facepipe faces CLIP``: list the faces in a clip and write a contact sheet per face."""

from __future__ import annotations

import json

import click

from facepipe.cli.common import common_options, handle_errors


@click.command("faces")
@click.argument("clip", type=click.Path(dir_okay=False))
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the contact sheets (default: ./CLIPNAME.faces).",
)
@click.option("--samples", type=click.IntRange(1, 24), default=6, show_default=True, help="Frames per contact sheet.")
@click.option(
    "--backend",
    default="mediapipe",
    show_default=True,
    help="Landmark backend: mediapipe, mediapipe-468, fan, fan3d (FAN needs its weights on disk).",
)
@click.option(
    "--scale",
    type=click.FloatRange(0.05, 1.0),
    default=1.0,
    show_default=True,
    help="Track on frames downscaled by this factor (faster on 4K).",
)
@click.option("--small-faces", is_flag=True, help="Also search for small faces (wide shots, crowds); slower.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@common_options
@handle_errors
def faces_command(clip, out_dir, samples, backend, scale, small_faces, as_json, workdir, device, progress, chunk_mb,
                  debug):
    """List the faces in a clip (id, frames seen, size) and write a contact sheet of each.

    Pick the actor to edit with --face ID on edit/preview/analyze.

    Example: facepipe faces shot.mov --out-dir sheets/
    """
    from facepipe.api import faces

    report = faces(clip, out_dir, samples, backend, scale, small_faces, workdir, device,
                        progress, chunk_mb, log=lambda m: click.echo(m, err=True))  # fmt: skip
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    if not report["faces"]:
        click.echo(f"no faces found in {clip} ({report['frames']} frames); an edit would pass it through unchanged")
        return
    click.echo(f"{len(report['faces'])} face(s) in {clip} ({report['frames']} frames):")
    click.echo(f"{'id':>4}  {'frames':>7}  {'first-last':>11}  {'mean box (px)':>14}  {'conf':>5}  sheet")
    for f in report["faces"]:
        w, h = f["mean_box"]
        mark = "  <- default (largest)" if f["target"] else ""
        click.echo(
            f"{f['id']:>4}  {f['frames']:>7}  {str(f['first']) + '-' + str(f['last']):>11}  "
            f"{f'{w:.0f}x{h:.0f}':>14}  {f['mean_confidence']:5.2f}  {f['sheet']}{mark}"
        )
