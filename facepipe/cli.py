"""The ``facepipe`` command line. Commands only parse options and call :mod:`facepipe.api`.

User errors end in one line on stderr and a non-zero exit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json

import click

from facepipe import __version__
from facepipe.cli_common import common_options, handle_errors


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facepipe")
@click.option("--debug", is_flag=True, help="Show full tracebacks for every command.")
def main(debug: bool) -> None:
    """Change an actor's facial expression in a finished shot."""


@main.command()
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


@main.command()
@click.argument("clip", type=click.Path(dir_okay=False))
@click.option("--emotion", required=True, help="neutral, happy, sad, angry, surprised, fearful, disgusted, contempt.")
@click.option("--intensity", type=float, default=1.0, show_default=True, help="Strength of the edit, 0..1.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Output movie, or image sequence with a frame pattern (sh010.%04d.exr). Default: CLIP.EMOTION.ext")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@click.option("--frames", default=None, help="Frame range in farm syntax: 1001-1100, 1-100x5, 3,7,10-12, 40-.")
@click.option("--frame-base", type=click.Choice(["index", "1", "timecode"]), default="index", show_default=True,
              help="What --frames numbers mean: 0-based index, 1-based, or timecode frame numbers.")
@click.option("--codec", default=None,
              help="h264, h265, h264-lossless, ffv1, prores, prores4444, dnxhr, png, tiff, exr (default: like the source).")
@common_options
@handle_errors
def edit(clip, emotion, intensity, out, force, frames, frame_base, codec, workdir, device, progress, chunk_mb, debug) -> None:
    """Edit the actor's expression and write the clip with the same timing, timecode and audio.

    Example: facepipe edit clip.mp4 --emotion neutral --intensity 0
    """
    from facepipe.api import edit as api_edit

    result = api_edit(clip, emotion=emotion, intensity=intensity, out=out, force=force, frames=frames,
                      frame_base=frame_base, codec=codec, workdir=workdir, device=device, progress=progress,
                      chunk_mb=chunk_mb)
    reused = ", ".join(result.stats.get("cached", [])) or "nothing"
    click.echo(f"wrote {result.output} ({result.frames_written} frames; cache reused: {reused}, "
               f"{result.stats.get('chunks_cached', 0)} chunks resumed)")


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="facepipe-demo", show_default=True,
              help="Folder for the demo clip and its edit.")
@click.option("--force", is_flag=True, help="Overwrite earlier demo outputs.")
@common_options
@handle_errors
def demo(out_dir, force, workdir, device, progress, chunk_mb, debug) -> None:
    """Make a short clip from a photo that scikit-image ships and edit it; needs no footage of yours.

    Example: facepipe demo --out /tmp/demo
    """
    from pathlib import Path

    from facepipe.api import edit as api_edit
    from facepipe.api import probe as api_probe
    from facepipe.demo import make_demo_clip

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / "astronaut.mp4"
    if force or not clip.exists():
        make_demo_clip(clip)
    click.echo(f"demo clip: {clip}")
    result = api_edit(clip, emotion="neutral", intensity=0.0, force=force, workdir=workdir, device=device,
                      progress=progress, chunk_mb=chunk_mb)
    src, dst = api_probe(clip), api_probe(result.output)
    same = src.frame_pts == dst.frame_pts and src.fps == dst.fps
    click.echo(f"edited:    {result.output} ({result.frames_written} frames, fps {dst.fps}, "
               f"timing {'identical' if same else 'DIFFERENT'} to the source)")


def _register_subsystem_commands() -> None:
    """Commands that live beside their subsystems."""
    from facepipe.analysis.cli import analyze_command
    from facepipe.evaluation.cli import eval_command
    from facepipe.tracking.cli import faces_command
    from facepipe.weights.cli import weights_group

    main.add_command(weights_group, "weights")
    main.add_command(faces_command, "faces")
    main.add_command(analyze_command, "analyze")
    main.add_command(eval_command, "eval")


_register_subsystem_commands()


if __name__ == "__main__":
    main()
