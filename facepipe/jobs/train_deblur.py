"""``facepipe train deblur``: the deblur GAN's recipe on sharp footage (issue 16).

From each clip, windows of ``exposure`` consecutive frames where the face is tracked throughout
(non-overlapping, evenly spread, at most ``max_windows``) are cropped with the central frame's
face square (the tracked box grown 1.25x) at ``size`` px and kept as uint8. A sharpness filter
drops windows whose central crop is soft (Laplacian variance of the luma below half the clip's
median), so the targets are sharp. Held out for validation: the ``val_clips`` when given, else
every tenth window. The exposures themselves are made during training
(:mod:`facepipe.deblur.train`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from kornia.color import rgb_to_grayscale
from kornia.filters import laplacian

from facepipe.deblur.checkpoint import save_checkpoint
from facepipe.deblur.config import DeblurConfig
from facepipe.deblur.exposure import window_crops
from facepipe.deblur.train import train_deblur
from facepipe.errors import FacepipeError
from facepipe.face.extent import square_around
from facepipe.io.atomic import check_output_path
from facepipe.io.media import probe
from facepipe.io.reader import VideoReader
from facepipe.jobs.context import open_context
from facepipe.pipeline.device import select_device
from facepipe.pipeline.graph import Graph
from facepipe.stages.graph import analysis_stages


def window_starts(tracked: np.ndarray, exposure: int, max_windows: int) -> np.ndarray:
    """Starts of non-overlapping ``exposure``-frame windows inside runs of tracked frames (T,)
    bool, at most ``max_windows`` of them, evenly spread."""
    starts = np.array([s for s in range(0, len(tracked) - exposure + 1, exposure) if tracked[s:s + exposure].all()], np.int64)
    if len(starts) > max_windows:
        starts = starts[np.linspace(0, len(starts) - 1, max_windows).round().astype(np.int64)]
    return starts


def sharp_enough(windows: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """(M,) bool: windows (M,N,3,S,S) uint8 whose central crop's Laplacian variance is at least
    ``ratio`` x the median of the set."""
    central = windows[:, windows.shape[1] // 2].float() / 255.0
    sharpness = laplacian(rgb_to_grayscale(central), 3).flatten(1).var(1)
    return sharpness >= ratio * sharpness.median()


def face_windows(clip, exposure: int, size: int, max_windows: int, workdir=None, log=print) -> torch.Tensor:
    """(M,N,3,size,size) uint8 windows of sharp consecutive face crops of ``clip`` (tracking cached)."""
    info = probe(clip)
    ctx = open_context(info, workdir, progress="off", log=lambda *a, **k: None)
    tracks = Graph(analysis_stages("largest"), ctx).get("track")
    if not tracks.has_face:
        log(f"train deblur: {Path(clip).name}: no face, skipped")
        return torch.zeros((0, exposure, 3, size, size), dtype=torch.uint8)
    tracked = np.zeros(info.frame_count, bool)
    tracked[tracks.frame_index] = True
    box = np.zeros((info.frame_count, 4), np.float32)
    box[tracks.frame_index] = tracks.box
    starts = window_starts(tracked, exposure, max_windows)
    out = torch.zeros((len(starts), exposure, 3, size, size), dtype=torch.uint8)
    where = {int(s + j): (w, j) for w, s in enumerate(starts) for j in range(exposure)}
    squares = [square_around(box[s + exposure // 2]) for s in starts]
    for chunk in VideoReader(info).chunks(np.array(sorted(where), np.int64), read_ahead=0):
        for index, frame in zip(chunk.indices, chunk.frames):
            w, j = where[int(index)]
            crop = window_crops(frame[None].float(), *squares[w], size)[0]
            out[w, j] = (crop.clamp(0, 1) * 255).round().byte()
    keep = sharp_enough(out) if len(out) else torch.zeros(0, dtype=torch.bool)
    log(f"train deblur: {Path(clip).name}: {int(keep.sum())} windows of {exposure} frames ({len(out) - int(keep.sum())} soft ones dropped)")
    return out[keep]


def run_train_deblur(clips, out, val_clips=(), config: DeblurConfig | None = None, steps: int | None = None,
                     minutes: float | None = None, max_windows: int = 60, workdir=None, device: str = "auto",
                     force: bool = False, log=print) -> dict:
    """Build the windows, train, save the checkpoint at ``out`` (atomically); -> the report."""
    config = config or DeblurConfig()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    check_output_path(out, force, tuple(Path(c) for c in (*clips, *val_clips)))
    if not clips:
        raise FacepipeError("give at least one clip to train on")
    train = [face_windows(c, config.exposure, config.size, max_windows, workdir, log) for c in clips]
    val = [face_windows(c, config.exposure, config.size, max_windows, workdir, log) for c in val_clips]
    train_windows = torch.cat(train)
    if val:
        val_windows = torch.cat(val)
    else:
        held = torch.zeros(len(train_windows), dtype=torch.bool)
        held[::10] = True
        train_windows, val_windows = train_windows[~held], train_windows[held]
    if len(train_windows) == 0 or len(val_windows) == 0:
        raise FacepipeError("no tracked face windows to train or validate on: give clips with a visible face")
    dev = select_device(device)
    generator, regressor, report = train_deblur(train_windows, val_windows, config, steps, minutes, dev, log)
    report["training_clips"] = [Path(c).name for c in clips]
    report["validation_clips"] = [Path(c).name for c in val_clips] or "every tenth window of the training clips"
    save_checkpoint(out, config, generator, regressor, report)
    log(f"train deblur: saved {out}")
    return report
