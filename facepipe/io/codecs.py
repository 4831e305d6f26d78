"""Output codec presets: what encoder, pixel format, options and containers each one means."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from facepipe.errors import RequestError
from facepipe.io.media import MediaInfo

MOVIE_EXTS = (".mp4", ".mov", ".mkv", ".mxf", ".m4v")
SEQUENCE_EXTS = (".png", ".tif", ".tiff", ".exr")


@dataclass(frozen=True)
class CodecSpec:
    """One output format.

    ``pix_fmt_8`` / ``pix_fmt_high`` are used for 8-bit and >8-bit sources; ``pix_fmt_odd`` when
    the frame has an odd width or height and the normal format subsamples chroma.
    ``options_high`` replaces ``options`` for >8-bit sources; ``min_size`` is the smallest
    (width, height) the encoder accepts; ``fixed_matrix`` is the YUV matrix (FFmpeg's
    AVColorSpace number) that decoders assume for the format whatever the source's tag says, and
    ``fixed_range`` likewise the range (1 = limited).
    """

    name: str
    encoder: str
    pix_fmt_8: str
    pix_fmt_high: str
    containers: tuple[str, ...]
    options: dict = field(default_factory=dict)
    pix_fmt_odd: str | None = None
    lossless: bool = False
    image_sequence: bool = False
    description: str = ""
    options_high: dict | None = None
    min_size: tuple[int, int] | None = None
    fixed_matrix: int | None = None
    fixed_range: int | None = None

    def pix_fmt(self, info: MediaInfo) -> str:
        if (info.width % 2 or info.height % 2) and self.pix_fmt_odd:
            return self.pix_fmt_odd
        return self.pix_fmt_high if info.bit_depth > 8 else self.pix_fmt_8

    def encoder_options(self, info: MediaInfo) -> dict:
        return dict(self.options_high if info.bit_depth > 8 and self.options_high is not None else self.options)


CODECS: dict[str, CodecSpec] = {
    c.name: c
    for c in [
        CodecSpec("h264", "libx264", "yuv420p", "yuv420p10le", (".mp4", ".mov", ".mkv", ".m4v"),
                  {"crf": "16", "preset": "medium"}, pix_fmt_odd="yuv444p", description="H.264, CRF 16"),
        CodecSpec("h265", "libx265", "yuv420p", "yuv420p10le", (".mp4", ".mov", ".mkv"),
                  {"crf": "18", "preset": "medium", "x265-params": "log-level=error"}, pix_fmt_odd="yuv444p",
                  description="H.265/HEVC, CRF 18"),
        CodecSpec("h264-lossless", "libx264rgb", "rgb24", "rgb24", (".mp4", ".mov", ".mkv"),
                  {"crf": "0", "preset": "ultrafast"}, lossless=True, description="lossless RGB H.264 (8-bit)"),
        CodecSpec("ffv1", "ffv1", "bgr0", "gbrp16le", (".mkv",), {"level": "3"}, lossless=True,
                  description="FFV1 lossless RGB"),
        # ProRes cannot signal full range: decoders read it as limited.
        CodecSpec("prores", "prores_ks", "yuv422p10le", "yuv422p10le", (".mov",), {"profile": "3"}, fixed_range=1,
                  description="ProRes 422 HQ"),
        CodecSpec("prores4444", "prores_ks", "yuv444p10le", "yuv444p10le", (".mov",), {"profile": "4"},
                  fixed_range=1, description="ProRes 4444"),
        # DNxHR is read as BT.709 whatever its tag, and needs at least 256x120.
        CodecSpec("dnxhr", "dnxhd", "yuv422p", "yuv422p10le", (".mov", ".mxf"), {"profile": "dnxhr_hq"},
                  options_high={"profile": "dnxhr_hqx"}, min_size=(256, 120), fixed_matrix=1,
                  description="DNxHR HQ (HQX for >8-bit sources)"),
        CodecSpec("png", "png", "rgb24", "rgb48be", (".png",), lossless=True, image_sequence=True,
                  description="PNG image sequence (16-bit for >8-bit sources)"),
        CodecSpec("tiff", "tiff", "rgb48le", "rgb48le", (".tif", ".tiff"), lossless=True, image_sequence=True,
                  description="16-bit TIFF image sequence"),
        CodecSpec("exr", "exr", "gbrpf32le", "gbrpf32le", (".exr",), image_sequence=True,
                  description="float EXR image sequence (display-referred values)"),
    ]
}

_DEFAULT_BY_SOURCE = {"hevc": "h265", "prores": "prores", "dnxhd": "dnxhr", "ffv1": "ffv1"}
_DEFAULT_BY_EXT = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".exr": "exr"}


def choose_codec(name: str | None, info: MediaInfo, out: Path) -> CodecSpec:
    """The codec for ``out``: ``name`` if given, else by extension, else the source's codec class."""
    ext = out.suffix.lower()
    if ext not in MOVIE_EXTS + SEQUENCE_EXTS:
        raise RequestError(f"unsupported output extension {ext!r}: use one of {', '.join(MOVIE_EXTS + SEQUENCE_EXTS)}")
    if name is None:
        name = _DEFAULT_BY_EXT.get(ext) or _DEFAULT_BY_SOURCE.get(info.codec, "h264")
        if name == "dnxhr" and ext not in CODECS["dnxhr"].containers or name.startswith("prores") and ext != ".mov":
            name = "h264"
    if name not in CODECS:
        raise RequestError(f"unknown codec {name!r}: use one of {', '.join(CODECS)}")
    spec = CODECS[name]
    if ext not in spec.containers:
        raise RequestError(f"codec {name} cannot be written to {ext}: use {' or '.join(spec.containers)}")
    if spec.image_sequence and "%" not in out.name:
        raise RequestError(f"{out}: an image sequence needs a frame-number pattern such as name.%04d{ext}")
    if spec.min_size and (info.coded_width < spec.min_size[0] or info.coded_height < spec.min_size[1]):
        raise RequestError(
            f"codec {name} needs frames of at least {spec.min_size[0]}x{spec.min_size[1]}; "
            f"this clip is {info.coded_width}x{info.coded_height}: use prores, ffv1 or h264"
        )
    return spec
