"""Encode frames to a movie or an image sequence, keeping the source's timing and metadata.

Movie output keeps every frame's pts (in the source's time base), the timecode, colour tags and
display rotation, copies the audio streams packet for packet, and is written to a temporary file
that is renamed onto the target only when complete. Image-sequence frames are each written to a
temporary file and renamed.
"""

from __future__ import annotations

import dataclasses
import contextlib
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

from facepipe.errors import FacepipeError
from facepipe.io.atomic import StagedFile, write_error
from facepipe.io.codecs import CodecSpec
from facepipe.io.media import MediaInfo
from facepipe.io.reader import code_max, rgb_format, stored
from facepipe.io.timecode import offset_timecode


def tensor_to_rgb(frames, bit_depth: int) -> np.ndarray:
    """(T,3,H,W) float32 0..1 torch tensor -> (T,H,W,3) uint8 or uint16 code values."""
    top = code_max(bit_depth)
    arr = (frames.clamp(0, 1) * top).round_().permute(0, 2, 3, 1).cpu().numpy()
    return arr.astype(np.uint16 if bit_depth > 8 else np.uint8)


#: Encoder pixel formats that swscale fills from planar gbrp exactly as from packed rgb24 (checked
#: pixel for pixel over many widths; not so for 10-bit targets, which stay on the packed path).
_PLANAR_INPUT_OK = ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p")


def plane_views(frame) -> list[np.ndarray]:
    """(H,W) writable views of an 8-bit planar VideoFrame's planes (rows may be padded)."""
    return [np.ndarray((frame.height, frame.width), np.uint8, buffer=p, strides=(p.line_size, 1)) for p in frame.planes]


def packed_view(frame) -> np.ndarray:
    """(H,W,3) writable view of a packed rgb24 / rgb48le VideoFrame's pixels (rows may be padded)."""
    plane = frame.planes[0]
    dtype = np.dtype("<u2") if frame.format.name == "rgb48le" else np.dtype(np.uint8)
    return np.ndarray((frame.height, frame.width, 3), dtype, buffer=plane,
                      strides=(plane.line_size, 3 * dtype.itemsize, dtype.itemsize))


class AudioCopier:
    """Copies the source's audio packets, untouched, into an output container.

    Packets are muxed lazily, up to the time of the video written so far, so the file stays
    interleaved. ``span`` = (start, end) seconds relative to the first video frame keeps only
    the packets in that span, shifted to start at zero (a partial frame range); ``None`` keeps
    every packet where it was (priming before the first frame and tails after the last too).
    """

    def __init__(self, info: MediaInfo, out_container, span: tuple[Fraction, Fraction] | None):
        self.span = span
        self.src = av.open(info.path, metadata_errors="replace")
        self.pairs = {s.index: out_container.add_stream_from_template(s) for s in self.src.streams.audio}
        self.out = out_container
        self.packets = self.src.demux(list(self.src.streams.audio)) if self.pairs else iter(())
        self.pending = None
        self.t0 = Fraction(info.frame_pts[0]) * info.time_base

    def advance(self, until: Fraction | None) -> None:
        """Mux every packet that starts before ``until`` seconds of output time (None: all that remain)."""
        start = self.span[0] if self.span else Fraction(0)
        while True:
            packet = self.pending or next(self.packets, None)
            self.pending = None
            if packet is None:
                return
            if packet.size == 0 or packet.pts is None:
                continue
            t = Fraction(packet.pts) * packet.time_base - self.t0
            if until is not None and t - start >= until:
                self.pending = packet
                return
            if self.span:
                if not start <= t < self.span[1]:
                    continue
                # The output's zero is the range's first frame: source time t0 + start.
                shift = round((self.t0 + start) / packet.time_base)
                packet.pts -= shift
                if packet.dts is not None:
                    packet.dts -= shift
            packet.stream = self.pairs[packet.stream_index]
            self.out.mux(packet)

    def close(self) -> None:
        self.src.close()


class MovieWriter:
    """Writes the frames of ``indices`` (source frame indices) to ``out``; use as a context manager."""

    def __init__(
        self,
        out: Path,
        info: MediaInfo,
        codec: CodecSpec,
        indices: Sequence[int],
        provenance: dict,
        copy_audio: bool = True,
    ):
        self.out, self.info, self.codec = Path(out), info, codec
        self.indices = np.asarray(indices, np.int64)
        self.provenance = provenance
        self.copy_audio = copy_audio
        self._staging = None
        self._next = 0
        self._held = None
        self._first_dts = None

    def __enter__(self) -> "MovieWriter":
        info, codec = self.info, self.codec
        self._staging = StagedFile(self.out)
        with self._discard_on_error():
            muxer = _muxer(self.out)
            # Edit lists (where each track starts, how long it lasts) are stored in the movie
            # timescale: make it a multiple of the video's and the audio's so both stay exact.
            scale = math.lcm(info.time_base.denominator, *(a.sample_rate for a in info.audio if a.sample_rate))
            options = {"movie_timescale": str(scale)} if muxer in ("mp4", "mov") else {}
            self.container = av.open(str(self._staging.tmp), "w", format=muxer, options=options)
            first, last = int(self.indices[0]), int(self.indices[-1])
            # A whole-clip render keeps the source pts; a sub-range starts at zero.
            whole = len(self.indices) == info.frame_count
            self.pts_offset = 0 if whole else info.frame_pts[first]
            self.range_start = info.frame_time(first)
            stream = self.container.add_stream(codec.encoder, rate=info.fps)
            stream.width, stream.height = info.coded_width, info.coded_height
            stream.pix_fmt = codec.pix_fmt(info)
            stream.time_base = info.time_base
            stream.codec_context.time_base = info.time_base
            stream.options = codec.encoder_options(info)
            cc = stream.codec_context
            tags = info.colour
            if stream.pix_fmt.startswith(("rgb", "bgr", "gbr")):
                # RGB coding (libx264rgb, FFV1): the matrix is the identity and the range full.
                # A YUV matrix tag here makes H.264 decoders read the G, B, R planes as Y, Cb, Cr.
                tags = dataclasses.replace(tags, matrix=0, range=2)
            else:  # e.g. DNxHR is read as BT.709, ProRes as limited range: convert to what will be read
                if codec.fixed_matrix is not None:
                    tags = dataclasses.replace(tags, matrix=codec.fixed_matrix)
                if codec.fixed_range is not None:
                    tags = dataclasses.replace(tags, range=codec.fixed_range)
            self.colour = tags
            cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = (
                tags.primaries, tags.transfer, tags.matrix, tags.range,
            )
            if info.rotation:
                stream.set_display_rotation(info.rotation)
            if info.timecode:
                stream.metadata["timecode"] = offset_timecode(info.timecode, first, info.fps)
            self.container.metadata["comment"] = provenance_text(self.provenance)
            if muxer == "mxf":  # MXF has no comment; its identification set names the writing product
                self.container.metadata.update(product_name="facepipe", product_version=provenance_text(self.provenance))
            self.stream = stream
            end = info.frame_time(last) + info.frame_durations[last] * info.time_base
            span = None if whole else (self.range_start, end)
            self.audio = AudioCopier(info, self.container, span) if self.copy_audio else None
        return self

    def write(self, frames, indices: Sequence[int]) -> None:
        """Encode ``frames`` (T,3,H,W) float32 0..1, upright, for source frame ``indices``."""
        expected = self.indices[self._next : self._next + len(indices)]
        if not np.array_equal(expected, np.asarray(indices)):
            raise FacepipeError("internal: frames reached the writer out of order")
        # 8-bit pictures reach YUV encoders as planar GBR: no interleaving pass, and swscale's
        # conversion to YUV is the same arithmetic as from packed rgb24. Everything else goes
        # packed (rgb24 / rgb48le), as the reader decodes.
        planar = self.info.bit_depth <= 8 and self.stream.pix_fmt in _PLANAR_INPUT_OK
        fmt = "gbrp" if planar else rgb_format(self.info.bit_depth)
        top = np.float32(code_max(self.info.bit_depth))
        pictures = frames.detach().cpu().numpy() if hasattr(frames, "detach") else np.asarray(frames)
        code = np.empty(pictures.shape[1:], np.float32)  # (3,H,W) one frame's code values, reused
        # Clamping costs more than the rest of the conversion: only when something is out of 0..1.
        clamp = not (pictures.size == 0 or (pictures.min() >= 0 and pictures.max() <= 1))
        try:
            for picture, index in zip(pictures, indices):
                # Frame by frame into the encoder's own buffer: no whole-chunk temporaries.
                np.multiply(picture, top, out=code)
                np.rint(code, out=code)
                if clamp:
                    np.minimum(code, top, out=code)
                    np.maximum(code, 0, out=code)
                frame = av.VideoFrame(self.info.coded_width, self.info.coded_height, fmt)
                if planar:
                    for view, channel in zip(plane_views(frame), (1, 2, 0)):  # planes G, B, R
                        view[...] = stored(code[channel], self.info.rotation)
                else:
                    packed_view(frame)[...] = stored(code.transpose(1, 2, 0), self.info.rotation)
                # The encoder converts RGB to YUV with the frame's matrix and range: use the
                # source's, as the reader did (untagged means swscale's BT.601, limited). Some
                # encoders (ProRes) also write the frame's, not the stream's, tags into the bitstream.
                tags = self.colour
                frame.colorspace, frame.color_range = tags.matrix, tags.range
                frame.color_primaries, frame.color_trc = tags.primaries, tags.transfer
                if fmt != self.stream.pix_fmt:
                    # Convert here, single-threaded: the encoder would use threaded swscale, which in
                    # FFmpeg 8 (PyAV 18.1) writes wrong, run-to-run different slices for some widths
                    # (e.g. 720, 1000 or 1364 wide to 10-bit YUV: errors up to a quarter of full scale).
                    frame = frame.reformat(format=self.stream.pix_fmt, threads=1)
                frame.pts = self.info.frame_pts[index] - self.pts_offset
                frame.time_base = self.info.time_base
                frame.duration = self.info.frame_durations[index]
                for packet in self.stream.encode(frame):
                    self._mux_video(packet)
        except OSError as exc:
            raise write_error(self.out, exc) from exc
        self._next += len(indices)

    def _mux_video(self, packet) -> None:
        # One packet is held back so the last one's duration can be set at the end (see _finish_video).
        if self._first_dts is None:
            self._first_dts = packet.dts
        held, self._held = self._held, packet
        if held is None:
            return
        if self.audio is not None and held.dts is not None:
            self.audio.advance(self._range_time(held.dts))
        self.container.mux(held)

    def _range_time(self, dts: int) -> Fraction:
        """Seconds since the start of the rendered range of an output timestamp."""
        return (dts + self.pts_offset - self.info.frame_pts[0]) * self.info.time_base - self.range_start

    def _finish_video(self) -> None:
        """Mux the held-back last packet with the duration that ends the track where the source's frame ends.

        MP4/MOV store durations in decode order, so with B-frames the last packet muxed is not the
        last frame shown; its duration is what makes the stream's end (and so the clip's
        duration) equal the source's.
        """
        last_index = int(self.indices[-1])
        first_pts = self.info.frame_pts[int(self.indices[0])] - self.pts_offset
        end_pts = self.info.frame_pts[last_index] + self.info.frame_durations[last_index] - self.pts_offset
        packet, self._held = self._held, None
        packet.duration = max(1, (end_pts - first_pts) - (packet.dts - self._first_dts))
        if self.audio is not None:
            self.audio.advance(self._range_time(packet.dts))
        self.container.mux(packet)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._abort()
            return
        with self._discard_on_error():
            if self._next != len(self.indices):
                raise FacepipeError(f"internal: {len(self.indices) - self._next} frames were never written")
            for packet in self.stream.encode(None):
                self._mux_video(packet)
            self._finish_video()
            if self.audio is not None:
                self.audio.advance(None)
                self.audio.close()
            self.container.close()
            self._staging.commit()

    @contextlib.contextmanager
    def _discard_on_error(self):
        """On any error inside the block, discard the temporary file; OS errors become one line."""
        try:
            yield
        except OSError as exc:
            self._abort()
            raise write_error(self.out, exc) from exc
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        """Close what is open and delete the temporary file; the target is never touched."""
        for thing in (getattr(self, "audio", None), getattr(self, "container", None)):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001 - the file is discarded anyway
                    pass
        if self._staging is not None:
            self._staging.discard()


def _muxer(out: Path) -> str:
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".mxf": "mxf"}[out.suffix.lower()]


def provenance_text(provenance: dict) -> str:
    return "facepipe " + json.dumps(provenance, sort_keys=True, separators=(",", ":"))


class ImageSequenceWriter:
    """Writes one image per frame to ``pattern % frame_number`` (e.g. ``sh010.%04d.exr``)."""

    def __init__(self, pattern: Path, info: MediaInfo, codec: CodecSpec, numbers: dict[int, int], provenance: dict):
        self.pattern, self.info, self.codec, self.numbers = Path(pattern), info, codec, numbers
        self.provenance = provenance

    def paths(self) -> list[Path]:
        return [Path(str(self.pattern) % n) for n in self.numbers.values()]

    def __enter__(self) -> "ImageSequenceWriter":
        self.cc = av.CodecContext.create(self.codec.encoder, "w")
        self.cc.width, self.cc.height = self.info.width, self.info.height
        self.cc.pix_fmt = self.codec.pix_fmt(self.info)
        self.cc.time_base = Fraction(1, 1)
        return self

    def write(self, frames, indices: Sequence[int]) -> None:
        if self.codec.encoder == "exr":
            planes = frames.clamp(0, 1).cpu().numpy().astype(np.float32)  # (T,3,H,W)
        rgb = None if self.codec.encoder == "exr" else tensor_to_rgb(frames, 16 if "48" in self.cc.pix_fmt else 8)
        for t, index in enumerate(indices):
            if rgb is None:
                # PyAV takes planar-RGB formats as (H,W,3) in R, G, B order and stores the G, B, R planes.
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(planes[t].transpose(1, 2, 0)), format="gbrpf32le")
            else:
                fmt = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
                frame = av.VideoFrame.from_ndarray(rgb[t], format=fmt).reformat(format=self.cc.pix_fmt, threads=1)
            frame.pts = t
            data = b"".join(bytes(p) for p in self.cc.encode(frame))
            self.cc = _fresh_context(self.cc)  # image encoders are one-shot
            out = Path(str(self.pattern) % self.numbers[int(index)])
            with StagedFile(out) as tmp:
                tmp.write_bytes(data)

    @property
    def sidecar(self) -> Path:
        """The JSON beside the sequence that says what made it (``sh010.facepipe.json``)."""
        return self.pattern.parent / f"{self.pattern.name.split('%')[0].rstrip('._')}.facepipe.json"

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            with StagedFile(self.sidecar) as tmp:
                tmp.write_text(json.dumps(self.provenance, indent=1, sort_keys=True, default=str))


def _fresh_context(cc):
    new = av.CodecContext.create(cc.name, "w")
    new.width, new.height, new.pix_fmt, new.time_base = cc.width, cc.height, cc.pix_fmt, cc.time_base
    return new
