"""``facepipe faces CLIP``: list the faces in a clip and write a contact sheet per face.

Registered by ``facepipe/cli.py`` as the ``faces`` command (``faces_command``); kept here so the
tracking code owns its command line.
"""

from __future__ import annotations

import json

import click

from facepipe.cli_common import common_options, handle_errors


def list_faces(
    clip,
    out_dir=None,
    samples: int = 6,
    backend: str = "mediapipe",
    scale: float = 1.0,
    small_faces: bool = False,
    workdir=None,
    device: str = "auto",
    progress: str = "auto",
    chunk_mb: int = 32,
    log=print,
) -> dict:
    """Track every face of ``clip``; write ``<out_dir>/<clip>.face<ID>.png`` per face.

    Returns {"clip", "frames", "faces": [summary + "sheet"], "message"}.
    """
    from pathlib import Path

    from facepipe.api import open_context
    from facepipe.io.media import probe
    from facepipe.pipeline.runner import Runner
    from facepipe.stages.track import TrackStage
    from facepipe.tracking.sheets import tracks_sheet, write_png

    info = probe(clip)
    ctx = open_context(info, workdir, device, progress, chunk_mb, log=log)
    stage = TrackStage(backend=backend, scale=scale, small_faces=small_faces)
    tracks = Runner([stage], ctx).get("track")
    src = Path(clip)
    out = Path(out_dir) if out_dir else Path.cwd() / f"{src.stem}.faces"
    faces = tracks.faces_summary()
    for face in faces:
        sheet = tracks_sheet(info, tracks, face["id"], n=samples, cols=min(samples, 3))
        face["sheet"] = str(write_png(out / f"{src.stem}.face{face['id']}.png", sheet))
    return {"clip": str(src), "frames": len(tracks), "faces": faces, "message": tracks.message}


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
    report = list_faces(clip, out_dir, samples, backend, scale, small_faces, workdir, device,
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
