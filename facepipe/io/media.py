"""What a media file holds: :class:`MediaInfo`, read with PyAV by :func:`probe`.

``probe`` demuxes every video packet (no decoding) to build the exact presentation timestamps
of every frame, and decodes the first frame to prove the stream is readable and to learn its
rotation and pixel format. Frame counts and pts therefore come from the file, not from headers.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from facepipe.errors import MediaError

# Pixel formats whose components carry more than 8 bits.
_HIGH_BIT_MARKERS = ("p10", "p12", "p16", "48", "64", "gray16", "rgbaf", "gbrpf")


@dataclass(frozen=True)
class ColourTags:
    """FFmpeg's colour description of a stream (names as FFmpeg spells them, or ints)."""

    primaries: int = 2  # 2 = unspecified
    transfer: int = 2
    matrix: int = 2
    range: int = 0  # 0 = unspecified, 1 = limited (mpeg), 2 = full (jpeg)


@dataclass(frozen=True)
class AudioStreamInfo:
    index: int
    codec: str
    sample_rate: int
    channels: int
    packets: int


@dataclass(frozen=True)
class MediaInfo:
    """One video stream of a media file, plus the audio streams that ride along with it.

    ``frame_pts`` holds every frame's presentation timestamp in ``time_base`` units, in
    presentation order; frame index ``i`` of the whole project means ``frame_pts[i]``.
    """

    path: str
    container: str
    video_index: int
    codec: str
    width: int  # as displayed, i.e. after rotation
    height: int
    coded_width: int
    coded_height: int
    rotation: int  # degrees counter-clockwise that the player applies (0, 90, 180, 270)
    pix_fmt: str
    bit_depth: int
    fps: Fraction  # nominal rate (average over the stream); never a float
    time_base: Fraction
    frame_pts: tuple[int, ...]
    frame_durations: tuple[int, ...]
    colour: ColourTags
    timecode: str | None
    audio: tuple[AudioStreamInfo, ...] = ()
    metadata: dict = field(default_factory=dict)

    @property
    def frame_count(self) -> int:
        return len(self.frame_pts)

    @property
    def duration(self) -> Fraction:
        """Seconds from the first frame's pts to the end of the last frame."""
        if not self.frame_pts:
            return Fraction(0)
        ticks = self.frame_pts[-1] + self.frame_durations[-1] - self.frame_pts[0]
        return ticks * self.time_base

    @property
    def variable_frame_rate(self) -> bool:
        return len(set(np.diff(self.frame_pts).tolist())) > 1 if self.frame_count > 2 else False

    def frame_time(self, index: int) -> Fraction:
        """Presentation time of frame ``index`` in seconds, relative to the first frame."""
        return (self.frame_pts[index] - self.frame_pts[0]) * self.time_base

    def summary(self) -> dict:
        """JSON-friendly description (rationals as strings)."""
        d = dataclasses.asdict(self)
        for k in ("frame_pts", "frame_durations"):
            d.pop(k)
        d.update(
            fps=str(self.fps),
            time_base=str(self.time_base),
            frame_count=self.frame_count,
            duration=str(self.duration),
            duration_seconds=float(self.duration),
            variable_frame_rate=self.variable_frame_rate,
        )
        return d


def _bit_depth(pix_fmt: str) -> int:
    return 16 if any(m in pix_fmt for m in _HIGH_BIT_MARKERS) else 8


def _find_timecode(container) -> str | None:
    for meta in [container.metadata] + [s.metadata for s in container.streams]:
        for key, value in meta.items():
            if key.lower() == "timecode":  # Matroska tags come back upper-case
                return value
    return None


def _open(path: Path):
    try:
        return av.open(str(path), metadata_errors="replace")
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: not a readable media file ({exc.strerror or exc})") from exc


def probe(path: str | os.PathLike) -> MediaInfo:
    """Read the facts of ``path``'s first video stream. Raises :class:`MediaError` on bad input."""
    path = Path(path)
    _check_file(path)
    with _open(path) as container:
        stream_facts = _stream_facts(path, container)
    # The first frame is decoded from a fresh open: it proves the stream decodes and gives the
    # rotation, pixel format and colour tags as the decoder sees them.
    first = _decode_first_frame(path)
    rotation = int(first["rotation"]) % 360
    coded_w, coded_h = first["width"], first["height"]
    w, h = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    return MediaInfo(
        width=w,
        height=h,
        coded_width=coded_w,
        coded_height=coded_h,
        rotation=rotation,
        pix_fmt=first["pix_fmt"],
        bit_depth=_bit_depth(first["pix_fmt"]),
        colour=first["stream"],
        **stream_facts,
    )


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a directory, not a media file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: the file is empty")


def _stream_facts(path: Path, container) -> dict:
    """The MediaInfo fields that demuxing ``container`` (open) tells: every frame's pts and
    duration, the frame rate, timecode, audio streams and metadata."""
    if not container.streams.video:
        raise MediaError(f"{path}: has no video stream (audio-only or data file)")
    vs = container.streams.video[0]
    pts, durations, audio_packets = _demux(path, container, vs)
    order = np.argsort(pts, kind="stable")
    pts_sorted = [int(pts[i]) for i in order]
    if len(set(pts_sorted)) != len(pts_sorted):
        raise MediaError(f"{path}: duplicate frame timestamps; the file is damaged")
    stream_end = vs.start_time + vs.duration if vs.start_time is not None and vs.duration else None
    dur_sorted = frame_durations(pts_sorted, stream_end, int(durations[order[-1]]))
    return dict(
        path=str(path),
        container=container.format.name,
        video_index=vs.index,
        codec=vs.codec_context.name,
        fps=_frame_rate(vs, pts_sorted),
        time_base=Fraction(vs.time_base),
        frame_pts=tuple(pts_sorted),
        frame_durations=tuple(dur_sorted),
        timecode=_find_timecode(container),
        audio=tuple(
            AudioStreamInfo(
                index=s.index,
                codec=s.codec_context.name,
                sample_rate=s.codec_context.sample_rate or 0,
                channels=s.codec_context.channels or 0,
                packets=audio_packets[s.index],
            )
            for s in container.streams.audio
        ),
        metadata=dict(container.metadata),
    )


def _demux(path: Path, container, vs) -> tuple[list[int], list[int], dict[int, int]]:
    """Every video packet's pts and duration in decode order (discarded packets skipped), and the
    packet count of each audio stream, demuxed (not decoded) from ``container``."""
    audio_packets = {s.index: 0 for s in container.streams.audio}
    pts, durations = [], []
    video_packets = 0
    try:
        for packet in container.demux([vs] + list(container.streams.audio)):
            if packet.size == 0:  # flush packet at the end of each stream
                continue
            if packet.stream.type == "audio":
                audio_packets[packet.stream.index] += 1
                continue
            video_packets += 1
            if packet.pts is not None and not packet.is_discard:
                pts.append(packet.pts)
                durations.append(packet.duration or 0)
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: the file is damaged or truncated ({exc.strerror or exc})") from exc
    if not pts:
        raise MediaError(f"{path}: the video stream has no frames")
    if vs.frames and video_packets < vs.frames:  # the index (e.g. an MP4 moov) lists more than is there
        raise MediaError(
            f"{path}: the file is truncated: its index lists {vs.frames} frames but only {video_packets} are present"
        )
    return pts, durations, audio_packets


def _frame_rate(vs, pts_sorted: list[int]) -> Fraction:
    """The stream's nominal rate; without one, frames over the span of their timestamps (else 25)."""
    rate = vs.average_rate or vs.guessed_rate or vs.base_rate
    if not rate:
        span = (pts_sorted[-1] - pts_sorted[0]) * vs.time_base
        rate = Fraction(len(pts_sorted) - 1) / span if span else Fraction(25)
    return Fraction(rate)


def frame_durations(pts: list[int], stream_end: int | None, last_packet_duration: int) -> list[int]:
    """Display duration of each frame: the gap to the next frame's pts.

    The last frame lasts until the stream's end when the container says where that is, else
    for its packet's duration, else as long as the frame before it.
    """
    gaps = np.diff(pts).tolist()
    if stream_end is not None and stream_end > pts[-1]:
        last = stream_end - pts[-1]
    elif last_packet_duration > 0:
        last = last_packet_duration
    else:
        last = gaps[-1] if gaps else 1
    return [int(g) for g in gaps] + [int(last)]


def _decode_first_frame(path: Path) -> dict:
    with _open(path) as container:
        vs = container.streams.video[0]
        try:
            for frame in container.decode(vs):
                return {
                    "rotation": frame.rotation or 0,
                    "width": frame.width,
                    "height": frame.height,
                    "pix_fmt": frame.format.name,
                    "stream": ColourTags(
                        primaries=int(frame.color_primaries),
                        transfer=int(frame.color_trc),
                        matrix=int(frame.colorspace),
                        range=int(frame.color_range),
                    ),
                }
        except av.error.FFmpegError as exc:
            raise MediaError(f"{path}: the video cannot be decoded ({exc.strerror or exc})") from exc
    raise MediaError(f"{path}: the video stream has no decodable frames")
