"""The commands that run an edit: ``probe``, ``edit``, ``preview`` and ``demo``."""

from __future__ import annotations

import json

import click

from facepipe import defaults
from facepipe.cli.common import common_options, deblur_analysis_options, deblur_options, handle_errors
from facepipe.plan.emotions import MAX_INTENSITY


@click.command()
@click.argument("clip", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a summary.")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@handle_errors
def probe(clip: str, as_json: bool, debug: bool) -> None:
    """Show a clip's streams, rational fps, frame count, duration, timecode, audio and colour tags.

    Example: facepipe probe clip.mp4
    """
    from facepipe.api import probe as api_probe

    info = api_probe(clip)
    summary = info.summary()
    if as_json:
        click.echo(json.dumps(summary, indent=1, default=str))
        return
    rows = [
        ("file", info.path),
        ("container", info.container),
        ("video", f"{info.codec} {info.width}x{info.height} {info.pix_fmt} ({info.bit_depth}-bit)"),
        ("fps", f"{info.fps} ({float(info.fps):.3f}){' variable' if info.variable_frame_rate else ''}"),
        ("frames", str(info.frame_count)),
        ("duration", f"{info.duration} s ({float(info.duration):.3f} s)"),
        ("time base", str(info.time_base)),
        ("timecode", info.timecode or "none"),
        ("rotation", f"{info.rotation} deg"),
        ("colour", f"primaries={info.colour.primaries} transfer={info.colour.transfer} "
                   f"matrix={info.colour.matrix} range={info.colour.range}"),
        ("audio", ", ".join(f"#{a.index} {a.codec} {a.sample_rate} Hz {a.channels} ch" for a in info.audio) or "none"),
    ]
    for key, value in rows:
        click.echo(f"{key:>10}: {value}")


def edit_options(fn):
    """What to change, shared by ``edit`` and ``preview`` (named as :func:`facepipe.api.edit`'s arguments)."""
    options = [
        click.option("--emotion", "emotion", multiple=True,
                     help="neutral, happy, sad, angry, surprised, fearful, disgusted, contempt; a keyframe "
                          "adds a span: happy@0s-2.5s, sad@3s-, happy@40-90 (frames), happy@01:00:10:00-. Repeatable."),
        click.option("--intensity", type=float, default=None, help=f"Strength 0..{MAX_INTENSITY:g} of every keyframe without its own: 1 = the emotion "
                          "as real actors make it at its peak, above 1 exaggerated [default: 1]."),
        click.option("--ramp", default=None, help="Ease in/out: seconds (0.5s) or frames (12) [default: 0.25s]."),
        click.option("--au", "au", multiple=True, help="AU override, e.g. AU12=0.6 or AU4=0.8@1s-2s. Repeatable."),
        click.option("--keyframes", type=click.Path(dir_okay=False), default=None, help="JSON/YAML keyframe file."),
        click.option("--appearance", type=float, default=defaults.APPEARANCE_STRENGTH, show_default=True,
                     help="Strength 0..1 of appearance (teeth, folds, wrinkles) taken from the actor's own frames; 0 = warp only."),
        click.option("--actor-library", type=click.Path(file_okay=False), default=None,
                     help="Folder of other shots of the same actor to take appearance from."),
        click.option("--shutter", type=float, default=180.0, show_default=True,
                     help="Shutter angle (degrees) for the motion blur re-applied to the new face."),
        click.option("--smooth", type=float, default=defaults.SMOOTH, show_default=True,
                     help="Strength 0..1 of the temporal smoothing of the edit where the face holds still; 0 = off."),
        click.option("--face", default="largest", show_default=True, help="Actor to edit: largest, center or a track id."),
        click.option("--renderer", type=click.Choice(defaults.RENDERERS), default=defaults.RENDERER, show_default=True,
                     help="auto: the actor's neural renderer when one is trained (facepipe train renderer), else the "
                          "geometric warp; neural: train one on this shot first if missing."),
        click.option("--actor", default="", help="Whose neural renderer to use [default: the one trained on this shot]."),
        click.option("--renderer-minutes", type=float, default=defaults.RENDERER_MINUTES, show_default=True,
                     help="Training budget when --renderer neural trains a renderer."),
        click.option("--threads", type=int, default=None,
                     help=f"CPU threads that render faces side by side [default: every core, at most {defaults.MAX_RENDER_THREADS}]."),
        click.option("--force", is_flag=True, help="Overwrite an existing output."),
        click.option("--frames", default=None, help="Frame range in farm syntax: 1001-1100, 1-100x5, 3,7,10-12, 40-."),
        click.option("--frame-base", type=click.Choice(["index", "1", "timecode"]), default="index", show_default=True,
                     help="What --frames numbers mean: 0-based index, 1-based, or timecode frame numbers."),
    ]
    fn = deblur_options(fn)  # applied first: listed after the options above
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command()
@click.argument("clip", type=click.Path(dir_okay=False))
@edit_options
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Output movie, or image sequence with a frame pattern (sh010.%04d.exr). Default: CLIP.EMOTION.ext")
@click.option("--codec", default=None,
              help="h264, h265, h264-lossless, ffv1, prores, prores4444, dnxhr, png, tiff, exr (default: like the source).")
@common_options
@handle_errors
def edit(clip, debug, **options) -> None:
    """Edit the actor's expression and write the clip with the same timing, timecode and audio.

    Writes CLIP.EMOTION.ext and CLIP.EMOTION.report.json (what was done, per-frame AU targets).

    Example: facepipe edit clip.mp4 --emotion happy --intensity 0.8
    """
    from facepipe.api import edit as api_edit
    from facepipe.jobs.report import summary_line

    result = api_edit(clip, **options)
    click.echo(summary_line(result.report))
    reused = ", ".join(result.stats.get("cached", [])) or "nothing"
    click.echo(f"report: {result.report_path} (cache reused: {reused}, {result.stats.get('chunks_cached', 0)} chunks resumed)")


@click.command()
@click.argument("clip", type=click.Path(dir_okay=False))
@edit_options
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Preview movie (H.264). Default: CLIP.EMOTION.preview.mp4 beside the clip.")
@click.option("--scale", type=click.FloatRange(0.05, 1.0), default=0.5, show_default=True, help="Render scale.")
@click.option("--compare", type=click.Choice(["side", "wipe", "none"]), default="side", show_default=True,
              help="Source and edit side by side, a wipe across the frame, or the edit alone.")
@common_options
@handle_errors
def preview(clip, debug, **options) -> None:
    """The same edit, fast, for review: a frame range at reduced scale, beside the source.

    Example: facepipe preview clip.mp4 --emotion sad --frames 40-120 --scale 0.5
    """
    from facepipe.api import preview as api_preview

    click.echo(api_preview(clip, **options).summary())


@click.command()
@click.argument("clip", type=click.Path(dir_okay=False))
@click.option("--face", default="largest", show_default=True, help="Actor to edit: largest, center or a track id.")
@deblur_analysis_options
@common_options
@handle_errors
def prepare(clip, face, deblur_method, deblur_weights, workdir, device, progress, chunk_mb, debug) -> None:
    """The analysis pass of a shot (tracking, 3D fit) into the work directory, once: run it as a
    farm job's first step; every chunk (edit --frames A-B) of the shot then reuses it.

    Example: facepipe prepare shot.mov --workdir /farm/work
    """
    from facepipe.api import prepare as api_prepare

    click.echo(api_prepare(clip, face=face, deblur_method=deblur_method, deblur_weights=deblur_weights, workdir=workdir,
                           device=device, progress=progress, chunk_mb=chunk_mb,
                           log=lambda m: click.echo(m, err=True)).summary())  # fmt: skip


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="facepipe-demo", show_default=True,
              help="Folder for the demo clip and its edit.")
@click.option("--emotion", default="happy", show_default=True, help="The edit to make.")
@click.option("--force", is_flag=True, help="Overwrite earlier demo outputs.")
@common_options
@handle_errors
def demo(out_dir, emotion, force, workdir, device, progress, chunk_mb, debug) -> None:
    """Make a short clip from a photo that scikit-image ships and edit it; needs no footage of yours.

    Example: facepipe demo --out /tmp/demo --emotion surprised
    """
    from pathlib import Path

    from facepipe.api import edit as api_edit
    from facepipe.api import probe as api_probe
    from facepipe.demo import make_demo_clip
    from facepipe.jobs.report import summary_line

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / "astronaut.mp4"
    if force or not clip.exists():
        make_demo_clip(clip)
    click.echo(f"demo clip: {clip}")
    result = api_edit(clip, emotion=emotion, force=force, workdir=workdir, device=device, progress=progress,
                      chunk_mb=chunk_mb)  # fmt: skip
    src, dst = api_probe(clip), api_probe(result.output)
    same = src.frame_pts == dst.frame_pts and src.fps == dst.fps
    click.echo(summary_line(result.report))
    click.echo(f"edited:    {result.output} ({result.frames_written} frames, fps {dst.fps}, "
               f"timing {'identical' if same else 'DIFFERENT'} to the source; report {result.report_path})")
