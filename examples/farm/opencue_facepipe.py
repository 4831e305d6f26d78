"""Submit one shot's facepipe edit to OpenCue with its outline API (pyoutline), as three layers:
prepare (one frame) -> edit (the shot's frames in chunks) -> assemble (one frame).

    python examples/farm/opencue_facepipe.py /shots/sh010.mov --emotion happy --last-frame 240 \
        --out /renders --workdir /farm/facepipe-work --chunk 50 [--deblur-method gan --deblur-weights /farm/deblur.pt --deblur]

Frames are 1-based here (OpenCue's frame ranges), so every command says ``--frame-base 1``. The
deblur method (and checkpoint) go to prepare and to every chunk alike: they key the tracking.
OUT and WORKDIR must be shared by every host. Needs pyoutline and a reachable Cuebot
(``CUEBOT_HOSTS``); facepipe's tests only check that this file parses.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path


def facepipe(python: str, *args) -> str:
    return shlex.join([python, "-m", "facepipe", *map(str, args), "--progress", "plain"])


def build(clip: Path, emotion: str, last_frame: int, out: Path, workdir: Path, chunk: int, python: str,
          deblur_method: str = "none", deblur_weights: str = "", deblur: bool = False):
    """The outline of the job: its three layers and their dependencies."""
    from outline import Outline
    from outline.modules.shell import Shell

    shot = clip.stem
    frames = out / f"{shot}.{emotion}.frames" / f"{shot}.%06d.png"
    job = Outline(f"facepipe_{shot}_{emotion}", shot=shot)
    analysis = ["--deblur-method", deblur_method, *(["--deblur-weights", deblur_weights] if deblur_weights else [])]
    prepare_cmd = facepipe(python, "prepare", clip, "--workdir", workdir, *analysis)
    setup = f"mkdir -p {shlex.quote(str(frames.parent))} && {prepare_cmd}"
    prepare = Shell("prepare", range="1", command=["bash", "-c", setup])
    # #FRAME_START# / #FRAME_END#: the first and last frame of the chunk this task renders.
    edit = Shell("edit", range=f"1-{last_frame}", chunk=chunk, command=shlex.split(facepipe(
        python, "edit", clip, "--emotion", emotion, "--frames", "#FRAME_START#-#FRAME_END#", "--frame-base", "1",
        "--out", frames, "--workdir", workdir, *analysis, "--deblur" if deblur else "--no-deblur")))
    # (a retried task renders only its missing frames)
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
    parser.add_argument("--deblur-method", default="none", choices=["none", "classical", "gan"])
    parser.add_argument("--deblur-weights", default="", help="the deblur GAN checkpoint (gan), on shared storage")
    parser.add_argument("--deblur", action="store_true", help="deliver the restored faces (facepipe edit --deblur)")
    a = parser.parse_args()
    from outline import cuerun

    job = build(a.clip, a.emotion, a.last_frame, a.out, a.workdir, a.chunk, a.python, a.deblur_method, a.deblur_weights,
                a.deblur)  # fmt: skip
    cuerun.launch(job, use_pycuerun=False)


if __name__ == "__main__":
    main()
