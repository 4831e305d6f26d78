"""Decode a frame selection of a video into chunks of RGB tensors.

Frames come out upright (the stream's display rotation applied) and in presentation order, as
``(T,3,H,W) float32 0..1`` tensors. 8-bit sources go through rgb24 and >8-bit ones through
rgb48, so values round-trip exactly to the integer code values of that depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from facepipe.errors import MediaError
from facepipe.io.media import MediaInfo

DEFAULT_CHUNK_BYTES = 256 * 2**20


@dataclass
class FrameChunk:
    """Consecutive frames of a selection.

    indices: (T,) int64 source frame indices.
    pts: (T,) int64 presentation timestamps in the stream's time base.
    frames: (T,3,H,W) float32 0..1 torch tensor, upright, full resolution (or scaled).
    """

    indices: np.ndarray
    pts: np.ndarray
    frames: "torch.Tensor"  # noqa: F821

    def __len__(self) -> int:
        return len(self.indices)


def rgb_format(bit_depth: int) -> str:
    return "rgb48le" if bit_depth > 8 else "rgb24"


def code_max(bit_depth: int) -> float:
    return 65535.0 if bit_depth > 8 else 255.0


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply the player's display rotation to an (H,W,3) image.

    FFmpeg's display matrix rotation is counter-clockwise degrees of the stored picture
    relative to display; displaying it means turning it back (clockwise).
    """
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=-k)) if k else rgb


def stored(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Inverse of :func:`upright`: the picture as it is stored in a stream with ``rotation``."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=k)) if k else rgb


def chunk_length(info: MediaInfo, budget_bytes: int = DEFAULT_CHUNK_BYTES, scale: float = 1.0) -> int:
    """Frames per chunk so that one chunk of float32 frames stays within ``budget_bytes``."""
    frame_bytes = 3 * 4 * max(1, int(info.width * scale)) * max(1, int(info.height * scale))
    return int(max(1, min(256, budget_bytes // frame_bytes)))


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
    ) -> Iterator[FrameChunk]:
        """Yield :class:`FrameChunk` s covering ``indices`` (default: every frame) in order."""
        import torch

        from facepipe.io.frameranges import contiguous_runs

        info = self.info
        indices = np.arange(info.frame_count) if indices is None else np.asarray(indices, np.int64)
        chunk_size = chunk_size or chunk_length(info, scale=scale)
        size = None if scale == 1.0 else (max(2, round(info.width * scale)), max(2, round(info.height * scale)))
        batch_idx, batch_img = [], []
        for start, end in contiguous_runs(indices):
            for index, rgb in self._decode_run(start, end, size):
                batch_idx.append(index)
                batch_img.append(rgb)
                if len(batch_idx) == chunk_size:
                    yield self._make_chunk(batch_idx, batch_img, torch)
                    batch_idx, batch_img = [], []
        if batch_idx:
            yield self._make_chunk(batch_idx, batch_img, torch)

    def read(self, indices: Sequence[int] | np.ndarray) -> "torch.Tensor":  # noqa: F821
        """All of ``indices`` as one (T,3,H,W) float32 tensor (for small selections)."""
        import torch

        return torch.cat([c.frames for c in self.chunks(indices)])

    def _make_chunk(self, idx: list[int], imgs: list[np.ndarray], torch) -> FrameChunk:
        arr = np.stack(imgs)  # (T,H,W,3) uint8/uint16
        frames = torch.from_numpy(arr.astype(np.float32)).permute(0, 3, 1, 2).contiguous()
        frames /= code_max(self.info.bit_depth)
        idx_arr = np.asarray(idx, np.int64)
        pts = np.asarray([self.info.frame_pts[i] for i in idx], np.int64)
        return FrameChunk(indices=idx_arr, pts=pts, frames=frames)

    def _decode_run(self, start: int, end: int, size: tuple[int, int] | None) -> Iterator[tuple[int, np.ndarray]]:
        """Decoded (index, (H,W,3) upright rgb) for every frame in [start, end]."""
        import av

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
