"""Numbered image sequences (``sh010.%04d.exr``, ``sh010.####.png``): the frames on disk, read
with PyAV (an image file opens as a one-frame container) into ``(T,3,H,W) float32 0..1`` chunks.

PNG and TIFF keep their integer code values exactly (8 or 16 bit); EXR frames are float and are
read as stored (the values facepipe writes are display-referred 0..1).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from facepipe.errors import MediaError, RequestError
from facepipe.io.reader import FrameChunk

_PRINTF = re.compile(r"%0?(\d*)d")
_HASHES = re.compile(r"#+")


def sequence_regex(name: str) -> re.Pattern:
    """The file names a pattern's name (``sh010.%04d.exr``, ``sh010.####.exr``) matches; group 1
    is the frame number."""
    found = _PRINTF.search(name) or _HASHES.search(name)
    if found is None or len(_PRINTF.findall(name)) + len(_HASHES.findall(name)) != 1:
        raise RequestError(f"{name}: an image sequence needs one frame-number pattern such as name.%04d.exr")
    width = (int(found[1]) if found[1] else 1) if found[0].startswith("%") else len(found[0])
    digits = rf"(-?\d{{{width},}})" if width > 1 else r"(-?\d+)"
    return re.compile(re.escape(name[: found.start()]) + digits + re.escape(name[found.end() :]) + "$")


def sequence_frames(pattern: str | Path) -> dict[int, Path]:
    """Frame number -> file of every frame of ``pattern`` on disk, in frame order."""
    pattern = Path(pattern)
    folder = pattern.parent if str(pattern.parent) else Path(".")
    regex = sequence_regex(pattern.name)
    if not folder.is_dir():
        raise RequestError(f"{pattern}: the folder {folder} does not exist")
    found = {}
    for entry in folder.iterdir():
        m = regex.match(entry.name)
        if m and entry.is_file():
            found[int(m[1])] = entry
    return dict(sorted(found.items()))


def frame_path(pattern: str | Path, number: int) -> Path:
    """The file of frame ``number`` of ``pattern`` (``%04d`` or ``####`` style)."""
    pattern = Path(pattern)
    name = pattern.name
    if _PRINTF.search(name):
        return pattern.with_name(name % number)
    hashes = _HASHES.search(name)
    return pattern.with_name(f"{name[: hashes.start()]}{number:0{len(hashes[0])}d}{name[hashes.end():]}")


def read_image(path: Path) -> np.ndarray:
    """(3,H,W) float32 0..1 (EXR: as stored) RGB pixels of one image file."""
    import av

    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    except (av.error.FFmpegError, StopIteration) as exc:
        raise MediaError(f"{path}: not a readable image ({getattr(exc, 'strerror', None) or exc})") from exc
    name = frame.format.name
    if "f32" in name or "f16" in name:
        # Planar float RGB comes back as (H,W,3) in R, G, B order.
        return np.ascontiguousarray(frame.to_ndarray(format="gbrpf32le").transpose(2, 0, 1), np.float32)
    high = frame.format.components[0].bits > 8
    rgb = frame.to_ndarray(format="rgb48le" if high else "rgb24")
    return (rgb.transpose(2, 0, 1) / np.float32(65535.0 if high else 255.0)).astype(np.float32)


class SequenceReader:
    """Reads the files ``paths`` (one per frame) as :class:`~facepipe.io.reader.FrameChunk` s
    labelled with source frame ``indices`` (T,) and their ``pts`` (T,). ``size``: the (width,
    height) every image must have (a RequestError names the first that differs)."""

    def __init__(self, paths: Sequence[Path], indices: Sequence[int], pts: Sequence[int],
                 size: tuple[int, int] | None = None):  # fmt: skip
        self.paths, self.indices, self.pts = list(paths), np.asarray(indices, np.int64), np.asarray(pts, np.int64)
        self.size = size

    def chunks(self, chunk_size: int = 16) -> Iterator[FrameChunk]:
        import torch

        for start in range(0, len(self.paths), chunk_size):
            end = min(start + chunk_size, len(self.paths))
            frames = torch.from_numpy(np.stack([self._read(p) for p in self.paths[start:end]]))
            yield FrameChunk(indices=self.indices[start:end], pts=self.pts[start:end], frames=frames)

    def _read(self, path: Path) -> np.ndarray:
        pixels = read_image(path)
        if self.size is not None and pixels.shape[:0:-1] != tuple(self.size):
            w, h = self.size
            raise RequestError(f"{path} is {pixels.shape[2]}x{pixels.shape[1]} but the source is {w}x{h}: "
                               f"assemble frames rendered from this clip at full size")  # fmt: skip
        return pixels
