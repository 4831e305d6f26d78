"""Submit one shot's facepipe edit to OpenCue with its outline API (pyoutline), as three layers:
prepare (one frame) -> edit (the shot's frames in chunks) -> assemble (one frame).

    python examples/farm/opencue_facepipe.py /shots/sh010.mov --emotion happy --last-frame 240 \
        --out /renders --workdir /farm/facepipe-work --chunk 50

Frames are 1-based here (OpenCue's frame ranges), so every command says ``--frame-base 1``.
OUT and WORKDIR must be shared by every host. Needs pyoutline and a reachable Cuebot
(``CUEBOT_HOSTS``); facepipe's tests only check that this file parses.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path


def facepipe(python: str, *args) -> str:
    return shlex.join([python, "-m", "facepipe", *map(str, args), "--progress", "plain"])


def build(clip: Path, emotion: str, last_frame: int, out: Path, workdir: Path, chunk: int, python: str):
    """The outline of the job: its three layers and their dependencies."""
    from outline import Outline
    from outline.modules.shell import Shell

    shot = clip.stem
    frames = out / f"{shot}.{emotion}.frames" / f"{shot}.%06d.png"
    job = Outline(f"facepipe_{shot}_{emotion}", shot=shot)
    setup = f"mkdir -p {shlex.quote(str(frames.parent))} && {facepipe(python, 'prepare', clip, '--workdir', workdir)}"
    prepare = Shell("prepare", range="1", command=["bash", "-c", setup])
    # #FRAME_START# / #FRAME_END#: the first and last frame of the chunk this task renders.
    edit = Shell("edit", range=f"1-{last_frame}", chunk=chunk, command=shlex.split(facepipe(
        python, "edit", clip, "--emotion", emotion, "--frames", "#FRAME_START#-#FRAME_END#", "--frame-base", "1",
        "--out", frames, "--workdir", workdir)))  # a retried task renders only its missing frames
    assemble = Shell("assemble", range="1", command=shlex.split(facepipe(
        python, "assemble", frames, "--like", clip, "--frames", f"1-{last_frame}", "--frame-base", "1",
        "--out", out / f"{shot}.{emotion}{clip.suffix}", "--force")))
    edit.depend_on(prepare)
    assemble.depend_on(edit)
    for layer in (prepare, edit, assemble):
        job.add_layer(layer)
    return job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--emotion", default="happy")
    parser.add_argument("--last-frame", type=int, required=True, help="the shot's frame count")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--python", default="python3")
    a = parser.parse_args()
    from outline import cuerun

    cuerun.launch(build(a.clip, a.emotion, a.last_frame, a.out, a.workdir, a.chunk, a.python), use_pycuerun=False)


if __name__ == "__main__":
    main()
