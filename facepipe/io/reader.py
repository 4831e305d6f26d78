"""Decode a frame selection of a video into chunks of RGB tensors.

Frames come out upright (the stream's display rotation applied) and in presentation order, as
``(T,3,H,W) float32 0..1`` tensors. 8-bit sources go through rgb24 and >8-bit ones through
rgb48, so values round-trip exactly to the integer code values of that depth.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Iterator, Sequence

import av
import cv2
import numpy as np
import torch

from facepipe.errors import MediaError
from facepipe.io.frameranges import contiguous_runs
from facepipe.io.media import MediaInfo

#: Default chunk budget when a caller names no chunk size (the synthesis pass). Below glibc's
#: 32 MiB mmap ceiling a freed chunk's memory is reused for the next one; bigger chunks are fresh
#: pages that the kernel zeroes every time (about 5 ms per 1280x720 frame, as much as decoding it).
DEFAULT_CHUNK_BYTES = 32 * 2**20


@dataclass
class FrameChunk:
    """Consecutive frames of a selection.

    indices: (T,) int64 source frame indices.
    pts: (T,) int64 presentation timestamps in the stream's time base.
    frames: (T,3,H,W) float32 0..1 torch tensor, upright, full resolution (or scaled).
    """

    indices: np.ndarray
    pts: np.ndarray
    frames: torch.Tensor

    def __len__(self) -> int:
        return len(self.indices)


def rgb_format(bit_depth: int) -> str:
    return "rgb48le" if bit_depth > 8 else "rgb24"


def code_max(bit_depth: int) -> float:
    return 65535.0 if bit_depth > 8 else 255.0


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply the player's display rotation to an (H,W[,C]) image, as a view (no copy).

    ``rotation`` is FFmpeg's display-matrix angle (``av_display_rotation_get``, PyAV's
    ``VideoFrame.rotation``): the counter-clockwise turn that displaying the stored picture
    applies, as ffmpeg's autorotate does (an iPhone portrait clip says -90, i.e. 270: turn
    clockwise).
    """
    return np.rot90(rgb, k=(rotation // 90) % 4)


def stored(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Inverse of :func:`upright` (a view): the picture as it is stored in a stream with ``rotation``."""
    return np.rot90(rgb, k=-((rotation // 90) % 4))


def chunk_length(info: MediaInfo, budget_bytes: int = DEFAULT_CHUNK_BYTES, scale: float = 1.0) -> int:
    """Frames per chunk so that one chunk of float32 frames stays within ``budget_bytes``."""
    frame_bytes = 3 * 4 * max(1, int(info.width * scale)) * max(1, int(info.height * scale))
    return int(max(1, min(256, budget_bytes // frame_bytes)))


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


_DONE = object()


def _read_ahead(source: Iterator, depth: int) -> Iterator:
    """Items of ``source``, produced by a background thread up to ``depth`` items ahead.

    Exceptions reach the caller at the item where they happened; closing the iterator early
    (``break``, garbage collection) stops the thread, which closes ``source``.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            put(_Failed(exc))
        finally:
            source.close()

    thread = threading.Thread(target=produce, name="facepipe-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


class VideoReader:
    """Decode frames of ``info``'s video stream by source index.

    Seeks to the keyframe before a run of requested frames, so selecting frames 1001-1050 of a
    long shot does not decode from the start.
    """

    def __init__(self, info: MediaInfo):
        self.info = info
        self._index_of_pts = {p: i for i, p in enumerate(info.frame_pts)}

    def chunks(
        self,
        indices: Sequence[int] | np.ndarray | None = None,
        chunk_size: int | None = None,
        scale: float = 1.0,
        read_ahead: int = 1,
    ) -> Iterator[FrameChunk]:
        """Yield :class:`FrameChunk` s covering ``indices`` (default: every frame) in order.

        With ``read_ahead`` > 0 a background thread decodes up to that many chunks ahead while
        the caller works on the current one (PyAV and numpy release the GIL), so decoding
        overlaps encoding or inference; 0 decodes in the caller's thread. At most
        ``read_ahead + 2`` chunks are alive at once.
        """
        if read_ahead <= 0:
            yield from self._chunks(indices, chunk_size, scale)
            return
        yield from _read_ahead(self._chunks(indices, chunk_size, scale), read_ahead)

    def _chunks(self, indices, chunk_size: int | None, scale: float) -> Iterator[FrameChunk]:
        info = self.info
        indices = np.arange(info.frame_count) if indices is None else np.asarray(indices, np.int64)
        chunk_size = chunk_size or chunk_length(info, scale=scale)
        size = None if scale == 1.0 else (max(2, round(info.width * scale)), max(2, round(info.height * scale)))
        top = np.float32(code_max(info.bit_depth))
        remaining = len(indices)
        batch_idx: list[int] = []
        frames = planes = None
        for start, end in contiguous_runs(indices):
            for index, rgb in self._decode_run(start, end, size):
                if frames is None:
                    # The chunk's tensor is filled frame by frame, converted straight into place.
                    n = min(chunk_size, remaining)
                    frames = torch.empty((n, 3, rgb.shape[0], rgb.shape[1]), dtype=torch.float32)
                    planes = frames.numpy()
                np.divide(rgb.transpose(2, 0, 1), top, out=planes[len(batch_idx)], dtype=np.float32)
                batch_idx.append(index)
                if len(batch_idx) == len(frames):
                    yield self._make_chunk(batch_idx, frames)
                    remaining -= len(batch_idx)
                    batch_idx, frames = [], None
        if batch_idx:
            yield self._make_chunk(batch_idx, frames[: len(batch_idx)])

    def read(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """All of ``indices`` as one (T,3,H,W) float32 tensor (for small selections)."""
        return torch.cat([c.frames for c in self.chunks(indices)])

    def _make_chunk(self, idx: list[int], frames) -> FrameChunk:
        idx_arr = np.asarray(idx, np.int64)
        pts = np.asarray([self.info.frame_pts[i] for i in idx], np.int64)
        return FrameChunk(indices=idx_arr, pts=pts, frames=frames)

    def _decode_run(self, start: int, end: int, size: tuple[int, int] | None) -> Iterator[tuple[int, np.ndarray]]:
        """Decoded (index, (H,W,3) upright rgb code values, maybe a strided view) for every frame in [start, end]."""
        info = self.info
        fmt = rgb_format(info.bit_depth)
        want = end - start + 1
        got = 0
        with av.open(info.path, metadata_errors="replace") as container:
            vs = container.streams.video[0]
            vs.thread_type = "AUTO"
            if start > 0:
                container.seek(info.frame_pts[start], stream=vs, backward=True, any_frame=False)
            try:
                for frame in container.decode(vs):
                    index = self._index_of_pts.get(frame.pts)
                    if index is None or index < start:
                        continue
                    if index > end:
                        break
                    if size is not None:
                        w, h = size if info.rotation in (0, 180) else size[::-1]
                        frame = frame.reformat(width=w, height=h, interpolation="AREA")
                    yield index, upright(frame.to_ndarray(format=fmt), info.rotation)
                    got += 1
                    if got == want:
                        return
            except av.error.FFmpegError as exc:
                raise MediaError(f"{info.path}: decoding failed at frame {start + got} ({exc.strerror or exc})") from exc
        if got < want:
            raise MediaError(
                f"{info.path}: only {got} of frames {start}-{end} could be decoded; the file is damaged or truncated"
            )


def to_uint8_images(frames) -> list[np.ndarray]:
    """(H,W,3) uint8 RGB images from (T,3,H,W) float32 0..1 torch frames (rounded, saturated).

    OpenCV's merge + convertScaleAbs is ~10x faster here than a torch permute/cast.
    """
    arr = frames.detach().cpu().numpy()
    return [cv2.convertScaleAbs(cv2.merge([p[0], p[1], p[2]]), alpha=255.0) for p in arr]
