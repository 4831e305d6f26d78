"""``facepipe faces CLIP``: the faces in a clip and a contact sheet of each; tracking a clip on
its own (``track_clip``) for tools and benchmarks."""

from __future__ import annotations

from pathlib import Path

from facepipe.io.media import probe
from facepipe.jobs.context import open_context
from facepipe.pipeline.cache import ArtifactCache
from facepipe.pipeline.context import RunContext
from facepipe.pipeline.graph import Graph
from facepipe.pipeline.hashing import source_key
from facepipe.stages.decode import DecodeStage
from facepipe.stages.deblur import DeblurStage
from facepipe.stages.track import TrackStage
from facepipe.tracking.sheets import tracks_sheet, write_png


def track_clip(info, workdir=None, progress: str = "off", log=None, **stage_params):
    """The FaceTracks of a whole clip (``info``: MediaInfo) from the track stage with
    ``stage_params``; cached under ``workdir`` (None: no cache)."""
    cache = ArtifactCache(Path(workdir) / source_key(info)) if workdir else None
    ctx = RunContext(media=info, cache=cache, progress_mode=progress, log=log or (lambda m: None))
    return Graph([DecodeStage(), DeblurStage(), TrackStage(**stage_params)], ctx).get("track")


def list_faces(
    clip,
    out_dir=None,
    samples: int = 6,
    backend: str = "mediapipe",
    scale: float = 1.0,
    small_faces: bool = False,
    workdir=None,
    device: str = "auto",
    progress: str = "auto",
    chunk_mb: int = 32,
    log=print,
) -> dict:
    """Track every face of ``clip``; write ``<out_dir>/<clip>.face<ID>.png`` per face.

    Returns {"clip", "frames", "faces": [summary + "sheet"], "message"}.
    """
    info = probe(clip)
    ctx = open_context(info, workdir, device, progress, chunk_mb, log=log)
    track = TrackStage(backend=backend, scale=scale, small_faces=small_faces)
    tracks = Graph([DecodeStage(), DeblurStage(), track], ctx).get("track")
    src = Path(clip)
    out = Path(out_dir) if out_dir else Path.cwd() / f"{src.stem}.faces"
    faces = tracks.faces_summary()
    for face in faces:
        sheet = tracks_sheet(info, tracks, face["id"], n=samples, cols=min(samples, 3))
        face["sheet"] = str(write_png(out / f"{src.stem}.face{face['id']}.png", sheet))
    return {"clip": str(src), "frames": len(tracks), "faces": faces, "message": tracks.message}
