"""``facepipe train renderer`` and ``edit --renderer neural``: the person-specific renderer's
recipe on one shot (issue 15).

The shot's fitted frames (at most ``max_frames``, evenly spread) become
:class:`~facepipe.render.neural.samples.ShotSamples` through the cached tracking and fit; the
renderer trains on them (:mod:`facepipe.render.neural.train`) and is saved per actor
(:func:`~facepipe.render.neural.checkpoint.renderer_path`), with a contact sheet of held-out
frames beside it (``<actor>.sheet.png``: warp | renderer | real, one row per frame).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facepipe.errors import FacepipeError
from facepipe.face.model import load_model
from facepipe.io.atomic import check_output_path
from facepipe.pipeline.graph import Graph
from facepipe.render.neural.checkpoint import save_renderer
from facepipe.render.neural.conditioning import closed_triangles, template_coordinates
from facepipe.render.neural.config import RendererConfig
from facepipe.render.neural.library import shot_renderer_path
from facepipe.render.neural.samples import ShotSamples, collect_samples, to_byte
from facepipe.render.neural.train import train_renderer
from facepipe.stages.deblur import DeblurStage, DeliveredDeblurStage
from facepipe.stages.graph import analysis_stages
from facepipe.tracking.sheets import write_png


def shot_samples(ctx, config: RendererConfig, face: str = "largest", log=print, deblur: DeblurStage | None = None,
                 delivered: DeliveredDeblurStage | None = None) -> ShotSamples:  # fmt: skip
    """The renderer's samples of ``ctx``'s clip (tracking and fit through the cache; ``deblur``:
    the deblur node the tracking reads, the edit's, so its cached tracking is the one used).
    ``delivered``: an edit's delivered deblur node; the samples are then its restored frames,
    the frames that edit refines, else the decoded ones."""
    graph = Graph([*analysis_stages(face, deblur), *([delivered] if delivered else [])], ctx)
    tracks, fit = graph.get("track"), graph.get("fit3d")
    if not fit.has_face:
        raise FacepipeError(f"{Path(ctx.media.path).name}: {fit.message or 'no face fitted'}; nothing to train a renderer on")
    model = load_model()
    n = model.n_vertices
    lm = np.asarray(tracks.landmarks, np.float32)[:, :n]
    rows = np.flatnonzero(np.asarray(fit.valid, bool) & np.isfinite(lm).all(axis=(1, 2)))
    if len(rows) > config.max_frames:
        rows = rows[np.linspace(0, len(rows) - 1, config.max_frames).round().astype(np.int64)]
    index = np.asarray(fit.frame_index)[rows]
    row_of = dict(zip(index.tolist(), rows.tolist()))
    au = np.asarray(fit.au, np.float32)

    def frames():
        for chunk in graph.frames(delivered.name if delivered else "decode", index):
            for i, frame in zip(chunk.indices.tolist(), chunk.frames):
                r = row_of[i]
                yield i, frame, torch.from_numpy(lm[r]), au[r]

    samples = collect_samples(frames(), template_coordinates(model.template), closed_triangles(model.triangles),
                              config.size, config.holdout)  # fmt: skip
    log(f"train renderer: {len(samples)} frames of {Path(ctx.media.path).name} "
        f"({int(samples.train.sum())} to train on, {int((~samples.train).sum())} held out)")
    return samples


def sheet_image(rows: torch.Tensor, n: int = 6) -> np.ndarray:
    """(n*S, 3*S, 3) uint8: up to ``n`` rows of (warp, renderer, real) crops (V,3,3,S,S)."""
    pick = rows[np.linspace(0, len(rows) - 1, min(n, len(rows))).round().astype(np.int64)]
    return to_byte(pick.permute(0, 3, 1, 4, 2).reshape(len(pick) * rows.shape[-1], 3 * rows.shape[-1], 3)).numpy()


def train_on_shot(ctx, out: Path, config: RendererConfig, steps: int | None, minutes: float | None, actor: str,
                  face: str = "largest", log=print, deblur: DeblurStage | None = None,
                  delivered: DeliveredDeblurStage | None = None) -> dict:  # fmt: skip
    """Train ``ctx``'s shot's renderer and save it (and its sheet) at ``out``; -> the report.
    ``deblur``, ``delivered``: the deblur node its tracking reads and the one whose frames it
    trains on (see :func:`shot_samples`)."""
    samples = shot_samples(ctx, config, face, log, deblur, delivered)
    model = load_model()
    triangles = closed_triangles(model.triangles)
    generator, report, rows = train_renderer(samples, config, triangles, steps, minutes, ctx.device, log)
    report["clip"] = Path(ctx.media.path).name
    save_renderer(out, config, generator, model.au_names, actor, report)
    if len(rows):
        write_png(out.with_suffix(".sheet.png"), sheet_image(rows))
    log(f"train renderer: saved {out}")
    return report


def run_train_renderer(ctx, actor: str, library: Path | None, config: RendererConfig, steps: int | None,
                       minutes: float | None, face: str = "largest", out: Path | None = None, force: bool = False,
                       log=print) -> tuple[Path, dict]:  # fmt: skip
    """``facepipe train renderer``: train on ``ctx``'s clip, save at ``out`` (default: the
    actor's path). -> (the checkpoint's path, the report)."""
    out = Path(out) if out else shot_renderer_path(ctx.cache.root, actor, library)
    out.parent.mkdir(parents=True, exist_ok=True)
    check_output_path(out, force, (Path(ctx.media.path),))
    return out, train_on_shot(ctx, out, config, steps, minutes, actor, face, log)

