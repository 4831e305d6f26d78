"""Appearance transfer for the render stage: donors from the actor's own frames, decoded once.

Builds the donor pool (this shot's fitted frames, plus every clip of an actor library, each
analysed through the same cached stages), chooses each region's donors over the shot
(:func:`facepipe.render.transfer_plan.plan_transfer`), decodes only the donor frames chosen (as
face crops, at the render scale) and returns the per-frame :class:`AppearanceTransfer` the
renderer calls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facepipe.errors import FacepipeError
from facepipe.face.regions import facemesh_regions
from facepipe.face.topology import N_VERTICES
from facepipe.io.media import probe
from facepipe.render.donors import DonorPool, cut_donor
from facepipe.render.occluders import erase_rims
from facepipe.render.transfer import render_transfer_box
from facepipe.render.transfer_plan import TransferConfig, plan_transfer
from facepipe.stages.graph import track_and_fit

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".mxf", ".avi", ".m4v")


class AppearanceTransfer:
    """The :class:`~facepipe.stages.render.AppearanceSource` of one shot: ``(warped, pos, dst)``
    -> ``(box, layer (3,h,w), alpha (1,h,w))`` or None where the transfer plan lays nothing."""

    def __init__(self, transfer, donors: dict, regions, config):
        self.transfer, self.donors, self.regions, self.config = transfer, donors, regions, config

    def __call__(self, warped: torch.Tensor, pos: int, dst: torch.Tensor):
        if pos < 0 or not (self.transfer.alpha[:, pos] > 0).any():
            return None
        return render_transfer_box(warped, dst, self.donors, self.transfer, pos, self.regions, config=self.config)


def library_clips(folder: Path) -> list[Path]:
    """The video files of an actor library folder, sorted (FacepipeError when there are none)."""
    clips = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not clips:
        raise FacepipeError(f"--actor-library {folder}: no video files ({', '.join(VIDEO_SUFFIXES)}) in it")
    return clips


def appearance_for_shot(ctx, tracks, fit, edit_plan, model, strength: float, library: Path | None, face: str,
                        scale: float):  # fmt: skip
    """(:class:`AppearanceTransfer`, report dict) for an analysed shot: ``ctx`` its run context,
    ``tracks``/``fit``/``edit_plan`` its artifacts; ``library`` a folder of other shots of the
    actor (``face`` picks the actor there) or None; ``scale`` the render scale."""
    regions = facemesh_regions(model)
    sources = [(ctx, tracks, fit)]  # clip 0 is the shot itself
    if library is not None:
        sources += [_analyse_library_clip(p, face, ctx) for p in library_clips(library)]
    pools = [
        DonorPool.from_fit(f.au, f.rotation, usable=t.usable() & (np.asarray(f.valid) > 0), clip=i,
                           frames=f.frame_index, landmarks=t.landmarks)  # fmt: skip
        for i, (_, t, f) in enumerate(sources)
        if f is not None
    ]
    pool = DonorPool.concat(pools)
    config = TransferConfig(strength=strength)
    transfer = plan_transfer(pool, fit.au, edit_plan.target, fit.rotation, edit_plan.weight, fit.au_names,
                         frame_rows=np.arange(len(fit.au)), config=config, regions=regions)  # fmt: skip
    donors = _decode_donors(transfer, sources, scale, model.n_vertices)
    report = {
        "pool_frames": int(len(pool.au)),
        "library_clips": [str(c.media.path) for c, _, _ in sources[1:]],
        "donor_frames_decoded": len(donors),
        "regions": transfer.report(),
    }
    return AppearanceTransfer(transfer, donors, regions, config), report


def _analyse_library_clip(path: Path, face: str, ctx):
    other = ctx.open_other(probe(path))
    tracks, fit = track_and_fit(other, face)
    if fit is None:
        ctx.log(f"edit: actor library clip {path.name} has no face; not used")
    return other, tracks, fit


def _decode_donors(transfer, sources, scale: float, n_vertices: int) -> dict:
    """{pool row: DonorImage} for every row the transfer plan uses, decoded at ``scale`` as face crops
    (with the donor's first ``n_vertices`` tracked landmarks: the mesh's), glasses rims erased
    (:func:`facepipe.render.occluders.erase_rims`, per clip: the transfer would carry them off the
    edited frame's rims, and the render stage holds the edited frame's own)."""
    rows = transfer.rows_used()
    donors = {}
    for clip in np.unique(transfer.pool_clip[rows]) if len(rows) else ():
        ctx, tracks, fit = sources[int(clip)]
        mine = rows[transfer.pool_clip[rows] == clip]
        frames = transfer.pool_frame[mine]
        order = np.argsort(frames)
        pos = np.searchsorted(np.asarray(tracks.frame_index), frames)
        cut = {}
        for chunk in ctx.reader.chunks(frames[order], chunk_size=None, scale=scale):
            for k, frame in zip(chunk.indices, chunk.frames):
                for j in np.flatnonzero(frames == k):
                    lm = tracks.landmarks[pos[j], :n_vertices, :2]
                    cut[int(mine[j])] = cut_donor(frame, (lm + 0.5) * scale - 0.5)
        if n_vertices == N_VERTICES:  # the rims are found on FaceMesh's topology
            meshes = [d.vertices - d.vertices.new_tensor(d.offset) for d in cut.values()]
            erased = erase_rims([d.image for d in cut.values()], meshes)
            cut = {row: d._replace(image=image) for (row, d), image in zip(cut.items(), erased)}
        donors.update(cut)
    return donors
