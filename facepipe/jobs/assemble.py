"""``facepipe assemble``: encode an image sequence (a farm's chunks) into a movie that keeps the
source's timing: its rational fps, every frame's pts, timecode, colour tags and audio (copied
packet for packet; for a sub-range, the audio of that range).

    from facepipe.jobs.assemble import run_assemble
    run_assemble("renders/sh010.%04d.exr", like="shot.mov", out="sh010.happy.mov")

Sequence frame numbers map to source frames through the frame base (``index``: number = source
index, ``1``: 1-based, ``timecode``: the source timecode's frame numbers), as ``edit --frames``
numbered them. The movie is written to a temporary file and renamed only when complete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facepipe import __version__
from facepipe.errors import RequestError
from facepipe.io.atomic import check_output_path
from facepipe.io.codecs import choose_codec
from facepipe.io.frameranges import contiguous_runs, first_frame_number, parse_frame_range
from facepipe.io.media import MediaInfo, probe
from facepipe.io.reader import chunk_length
from facepipe.io.sequence import SequenceReader, frame_path, sequence_frames, sequence_regex
from facepipe.io.writer import MovieWriter
from facepipe.pipeline.progress import make_progress


@dataclass
class AssembleResult:
    """output: the movie; frames: frames written; first / last: the sequence's frame numbers used."""

    output: Path
    frames: int
    info: MediaInfo
    first: int
    last: int
    codec: str
    seconds: float

    def summary(self) -> str:
        return (f"assembled {self.output}: frames {self.first}-{self.last} ({self.frames} frames, {self.codec}, "
                f"fps {self.info.fps}) in {self.seconds:.1f} s")  # fmt: skip


def sequence_numbers(pattern: Path, info: MediaInfo, frames: str | None, first_number: int) -> dict[int, Path]:
    """Frame number -> file of the frames to assemble: ``frames`` (a range in the frame base's
    numbering), else every frame from the first to the last on disk. RequestError for a
    pattern without frames, a missing frame (the first is named), a gap or frames outside the source."""
    on_disk = sequence_frames(pattern)
    if not on_disk:
        raise RequestError(f"{pattern}: no frames match this pattern")
    if frames is not None:
        numbers = parse_frame_range(frames, info.frame_count, first_number) + first_number
    else:
        numbers = np.arange(min(on_disk), max(on_disk) + 1)
    last_number = first_number + info.frame_count - 1
    if numbers[0] < first_number or numbers[-1] > last_number:
        raise RequestError(f"{pattern}: frames {numbers[0]}-{numbers[-1]} are outside the source "
                           f"(frames {first_number}-{last_number} with this --frame-base)")  # fmt: skip
    if len(contiguous_runs(numbers)) > 1:
        raise RequestError(f"{frames}: a movie needs consecutive frames; assemble each run separately")
    missing = [int(n) for n in numbers if int(n) not in on_disk]
    if missing:
        raise RequestError(f"frame {missing[0]} is missing: {frame_path(pattern, missing[0])} "
                           f"({len(missing)} of frames {numbers[0]}-{numbers[-1]} are)")  # fmt: skip
    return {int(n): on_disk[int(n)] for n in numbers}


def default_movie(pattern: Path, like: Path) -> Path:
    """``renders/sh010.%04d.exr`` beside ``shot.mov`` -> ``renders/sh010.mov``."""
    sequence_regex(pattern.name)  # one frame-number pattern, or a RequestError
    stem = pattern.name.split("%")[0].split("#")[0].rstrip("._") or "sequence"
    return pattern.with_name(stem + like.suffix)


def run_assemble(pattern, like, out=None, force: bool = False, codec: str | None = None, frame_base: str = "index",
                 frames: str | None = None, progress="auto") -> AssembleResult:  # fmt: skip
    """Encode the image sequence ``pattern`` as a movie timed like the clip ``like`` (see the module doc)."""
    t0 = time.perf_counter()
    pattern, like = Path(pattern), Path(like)
    info = probe(like)
    first_number = first_frame_number(frame_base, info.timecode, info.fps)
    files = sequence_numbers(pattern, info, frames, first_number)
    out = Path(out) if out else default_movie(pattern, like)
    spec = choose_codec(codec, info, out)
    if spec.image_sequence:
        raise RequestError(f"{out}: assemble writes a movie ({', '.join(('.mov', '.mp4', '.mkv', '.mxf'))}), not a sequence")
    check_output_path(out, force=force, inputs=(like,))
    indices = np.asarray(list(files), np.int64) - first_number
    provenance = {"tool": "facepipe", "version": __version__, "assembled": pattern.name, "like": like.name,
                  "frames": f"{min(files)}-{max(files)}", "frame_base": frame_base, "codec": spec.name}  # fmt: skip
    reader = SequenceReader(list(files.values()), indices, [info.frame_pts[i] for i in indices],
                            size=(info.width, info.height))  # fmt: skip
    bar = make_progress(len(indices), "assemble", progress)
    try:
        with MovieWriter(out, info, spec, indices, provenance) as writer:
            for chunk in reader.chunks(chunk_length(info)):
                writer.write(chunk.frames, chunk.indices)
                bar.update(len(chunk))
    finally:
        bar.close()
    return AssembleResult(out, len(indices), info, min(files), max(files), spec.name, time.perf_counter() - t0)
