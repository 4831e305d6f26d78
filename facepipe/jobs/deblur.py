"""``facepipe deblur``: a clip with the faces of its motion-blurred frames restored, on its own.

    from facepipe.jobs.deblur import run_deblur
    result = run_deblur("clip.mp4", DeblurStage(method="gan", weights="deblur.pt"), moments=5, ...)

The graph is decode -> motion -> deblur -> encode: the deblur node (:mod:`facepipe.stages.deblur`)
as the analysis uses it, written out with the edit's writer (same fps, frame count, timestamps,
timecode, colour tags and audio; temporary file renamed when complete). ``moments`` N > 0 (GAN
only) also writes, for every restored frame, the N sharp moments of its exposure as PNG crops
of the face square: ``OUT.moments/FRAME_mK.png`` (FRAME the 0-based source frame, 6 digits; K
= 0..N-1, shutter opening to closing, though one frame cannot tell the direction), a folder that
appears complete or not at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facepipe import __version__
from facepipe.errors import OutputExistsError, RequestError
from facepipe.io.atomic import StagedDir, check_output_path
from facepipe.io.codecs import choose_codec
from facepipe.io.media import MediaInfo, probe
from facepipe.io.reader import to_uint8_images
from facepipe.jobs.edit import default_output, make_writer
from facepipe.pipeline.graph import Graph
from facepipe.stages.deblur import DeblurStage
from facepipe.stages.decode import DecodeStage
from facepipe.stages.encode import EncodeStage
from facepipe.stages.motion import MotionStage
from facepipe.tracking.sheets import write_png


@dataclass
class DeblurResult:
    """output: the clip written; restored: the source frames whose face was restored;
    moments_dir: the moments' folder (None without ``moments``)."""

    output: Path
    info: MediaInfo
    frames_written: int
    restored: list[int] = field(default_factory=list)
    moments_dir: Path | None = None
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)

    def summary(self) -> str:
        extra = f"; moments in {self.moments_dir}" if self.moments_dir else ""
        return (f"deblurred {Path(self.info.path).name}: {len(self.restored)}/{self.frames_written} frames restored -> "
                f"{self.output}{extra} ({self.seconds:.1f} s)")


def moments_folder(out: Path) -> Path:
    """``clip.deblurred.mp4`` -> ``clip.deblurred.moments``."""
    return out.with_name(f"{out.stem}.moments")


def run_deblur(src, deblur: DeblurStage, out=None, force: bool = False, moments: int = 0, open_ctx=None,
               log=print) -> DeblurResult:  # fmt: skip
    """Restore the faces of ``src``'s blurred frames with ``deblur`` (its method not ``none``)
    and write the clip (default ``clip.deblurred.mp4``), and with ``moments`` N the moments'
    PNGs. Existing outputs without ``force``: OutputExistsError before anything runs.
    open_ctx: MediaInfo -> RunContext."""
    t0 = time.perf_counter()
    if deblur.method == "none":
        raise RequestError("facepipe deblur needs a method: gan (with --weights) or classical")
    if moments and deblur.method != "gan":
        raise RequestError("--moments needs the gan method: the classical baseline restores one moment only")
    src = Path(src)
    info = probe(src)
    out = Path(out) if out else default_output(src, "deblurred", None)
    indices = np.arange(info.frame_count)
    provenance = {"tool": "facepipe", "version": __version__, "source": src.name, "deblur": deblur.params()}
    writer = make_writer(out, info, choose_codec(None, info, out), indices, 0, provenance, force, src)
    folder = moments_folder(out) if moments else None
    if folder is not None and folder.exists() and not force:
        raise OutputExistsError(f"{folder} exists; pass --force to overwrite it")
    with open_ctx(info) as ctx:
        graph = Graph([DecodeStage(), MotionStage(), deblur, EncodeStage(writer, indices, frames_from="deblur", desc="deblur")], ctx)
        written = graph.get("encode")
        restorer = graph.opened["deblur"]
        if folder is not None:
            write_moments(graph, restorer, moments, folder)
        stats = ctx.stats
    result = DeblurResult(out, info, written.frames, sorted(restorer.restored), folder, time.perf_counter() - t0, stats)
    log(result.summary())
    return result


def write_moments(graph: Graph, restorer, n: int, folder: Path) -> None:
    """For every frame the deblur run ``restorer`` (its :class:`~facepipe.stages.deblur.FaceRestorer`)
    restored, its ``n`` moments as PNG crops in ``folder`` (replaced as a whole)."""
    check_output_path(folder, force=True)
    with StagedDir(folder) as staging:
        if restorer.restored:
            for chunk in graph.frames("decode", np.asarray(restorer.restored, np.int64)):
                for frame, index in zip(chunk.frames, chunk.indices.tolist()):
                    images = to_uint8_images(restorer.restorer.moments(restorer.crop(frame, index), n))
                    for k, image in enumerate(images):
                        write_png(staging / f"{index:06d}_m{k}.png", image)
