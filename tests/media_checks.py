"""Compare an output with its source using PyAV: timing, audio packets, timecode and pixels.

Used by tests, the I/O benchmark and the evaluation harness; nothing here trusts headers alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from facepipe.io.media import MediaInfo, probe


def audio_packets(path: str) -> dict[int, list[tuple[bytes, Fraction]]]:
    """Per audio stream (by order among audio streams): [(payload bytes, pts in seconds)]."""
    import av

    out: dict[int, list[tuple[bytes, Fraction]]] = {}
    with av.open(path) as c:
        order = {s.index: i for i, s in enumerate(c.streams.audio)}
        if not order:  # demux([]) would mean every stream
            return out
        for p in c.demux(list(c.streams.audio)):
            if p.size:
                out.setdefault(order[p.stream.index], []).append((bytes(p), Fraction(p.pts) * p.time_base))
    return out


@dataclass
class TimingReport:
    frame_count: tuple[int, int]
    pts_equal: bool
    duration: tuple[Fraction, Fraction]
    timecode: tuple[str | None, str | None]
    audio_identical: bool
    audio_packets: tuple[int, int]

    @property
    def ok(self) -> bool:
        return (
            self.frame_count[0] == self.frame_count[1]
            and self.pts_equal
            and self.duration[0] == self.duration[1]
            and self.timecode[0] == self.timecode[1]
            and self.audio_identical
        )


def frame_times(info: MediaInfo) -> list[Fraction]:
    """Every frame's presentation time in seconds, as exact rationals."""
    return [Fraction(p) * info.time_base for p in info.frame_pts]


def timing_report(src: str, out: str) -> TimingReport:
    a, b = probe(src), probe(out)
    pa, pb = audio_packets(src), audio_packets(out)
    identical = pa.keys() == pb.keys() and all(pa[k] == pb[k] for k in pa)  # bytes and pts
    return TimingReport(
        frame_count=(a.frame_count, b.frame_count),
        pts_equal=frame_times(a) == frame_times(b),
        duration=(a.duration, b.duration),
        timecode=(a.timecode, b.timecode),
        audio_identical=identical,
        audio_packets=(sum(len(v) for v in pa.values()), sum(len(v) for v in pb.values())),
    )


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of images in 0..1 (any matching shapes); ``mask`` selects the pixels compared."""
    diff = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    if mask is not None:
        diff = diff[..., mask] if diff.ndim > mask.ndim else diff[mask]
    mse = float(diff.mean()) if diff.size else 0.0
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def frame_psnr(src: str, out: str, indices=None, out_indices=None) -> np.ndarray:
    """(N,) per-frame PSNR between decoded source frames ``indices`` and output frames ``out_indices``."""
    from facepipe.io.reader import VideoReader

    ra, rb = VideoReader(probe(src)), VideoReader(probe(out))
    indices = np.arange(ra.info.frame_count) if indices is None else np.asarray(indices)
    out_indices = np.arange(len(indices)) if out_indices is None else np.asarray(out_indices)
    scores = []
    for ca, cb in zip(ra.chunks(indices, chunk_size=16), rb.chunks(out_indices, chunk_size=16)):
        for fa, fb in zip(ca.frames.numpy(), cb.frames.numpy()):
            scores.append(psnr(fa, fb))
    return np.asarray(scores)
