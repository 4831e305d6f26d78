"""The deblur stage, for analysis: restores the face of frames blurred by fast motion.

The design puts face deblurring between decode and tracking (sharp faces track and fit better).
The delivered plate keeps its blur (synthesis reads ``decode``) unless the edit asks for the
restored face (``edit --deblur``: render reads this node's frames). Each frame's blur estimate is
the face's motion in px/frame from the ``motion`` stage (the detector alone: the tracks' own
velocity would need this node's frames). Frames whose face moves at least ``threshold``
px/frame get their face square restored at the central moment and the change pasted back
feathered (:mod:`facepipe.deblur.restore`); every other frame, and every pixel outside the face
square, passes unchanged.

``method``: ``none`` (the default: every frame passes through, no motion pulled), ``classical``
(Richardson-Lucy with the face's velocity over a ``shutter`` exposure) or ``gan`` (the deblur
GAN of the checkpoint ``weights``). ``none`` stays the default because neither restores real
exposures yet: on synthetic exposures of the shared footage they lose 1.2 and 0.3 dB against
the blurred input (``benchmarks/deblur.py``), and ``benchmarks/deblur_tracking.py`` measures
what they do to tracking.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from facepipe.deblur.checkpoint import checkpoint_sha256, existing_checkpoint
from facepipe.deblur.exposure import window_crops
from facepipe.deblur.restore import ClassicalRestorer, GanRestorer, feather, paste_change
from facepipe.errors import RequestError
from facepipe.face.extent import square_around
from facepipe.pipeline.stage import FrameStage

METHODS = ("none", "classical", "gan")
#: Face motion (px/frame, full resolution) from which a frame is restored.
DEFAULT_THRESHOLD = 3.0


def blurred_frames(motion, indices: np.ndarray, threshold: float) -> np.ndarray:
    """(T,) bool: which source frames ``indices`` of ``motion`` (a
    :class:`~facepipe.stages.motion.FaceMotion`) have a face moving at least ``threshold``
    px/frame: the frames the deblur node restores."""
    rows = np.searchsorted(motion.indices, indices)
    return (motion.speed[rows] >= threshold) & np.isfinite(motion.box[rows]).all(1)


def unchanged(chunk):
    """The identity transform: the chunk as it came."""
    return chunk


class FaceRestorer:
    """One run of the deblur node: restores the faces of the chunks' blurred frames.

    ``motion``: the shot's :class:`~facepipe.stages.motion.FaceMotion` (full-resolution px);
    ``scale``: the frames' decode scale. ``restored`` lists the source frames it changed."""

    def __init__(self, restorer, motion, threshold: float, scale: float):
        self.restorer, self.motion, self.threshold, self.scale = restorer, motion, threshold, scale
        self.restored: list[int] = []
        self.mask = feather(restorer.size)

    def square(self, index: int) -> tuple[float, float, float]:
        """(cx, cy, side) px at the decode scale of frame ``index``'s face square."""
        box = self.motion.box[np.searchsorted(self.motion.indices, index)]
        return tuple(v * self.scale for v in square_around(box))

    def crop(self, frame: torch.Tensor, index: int) -> torch.Tensor:
        """frame (3,H,W) of source frame ``index`` -> (3,S,S) its face square."""
        return window_crops(frame[None], *self.square(index), self.restorer.size)[0]

    def __call__(self, chunk):
        todo = np.flatnonzero(blurred_frames(self.motion, chunk.indices, self.threshold))
        if not len(todo):
            return chunk
        S = self.restorer.size
        crops = torch.stack([self.crop(chunk.frames[t], int(chunk.indices[t])) for t in todo])
        sides = torch.tensor([self.square(int(chunk.indices[t]))[2] for t in todo])
        rows = np.searchsorted(self.motion.indices, chunk.indices[todo])
        velocity = torch.from_numpy(self.motion.velocity[rows]) * self.scale * (S / sides)[:, None]  # crop px/frame
        change = (self.restorer(crops, velocity) - crops) * self.mask.to(crops)
        frames = chunk.frames.clone()
        for k, t in enumerate(todo):
            frames[t] = paste_change(frames[t], change[k], *self.square(int(chunk.indices[t])))
        self.restored += [int(i) for i in chunk.indices[todo]]
        return dataclasses.replace(chunk, frames=frames)


@dataclass
class DeblurStage(FrameStage):
    """Face deblurring for analysis (see the module); ``threshold`` px/frame at full resolution,
    ``shutter`` degrees (the classical kernel's length), ``weights`` the GAN's checkpoint."""

    name = "deblur"
    version = "1"
    frames_from = "decode"

    method: str = "none"
    weights: str = ""
    threshold: float = DEFAULT_THRESHOLD
    shutter: float = 180.0

    def __post_init__(self):
        if self.method not in METHODS:
            raise RequestError(f"deblur method {self.method!r}: use one of {', '.join(METHODS)}")
        if self.method == "gan" and not self.weights:
            raise RequestError("the gan deblur method needs a checkpoint (made by facepipe train deblur): "
                               "pass it as --weights CKPT (facepipe deblur) or --deblur-weights CKPT (edit, preview, prepare)")
        if self.method == "gan":
            existing_checkpoint(self.weights)  # a missing file is exit 4 now, not after the tracking ran
        if self.threshold < 0 or not 0 < self.shutter <= 360:
            raise RequestError("deblur threshold must be >= 0 px/frame and the shutter in (0, 360] degrees")

    @property
    def inputs(self) -> tuple[str, ...]:  # the graph pulls the face motion only when it is used
        return () if self.method == "none" else ("motion",)

    def params(self) -> dict:
        if self.method == "none":  # the key of the pass-through node before methods existed: caches stay valid
            return {"method": "none"}
        if self.method == "classical":
            return {"method": "classical", "threshold": float(self.threshold), "shutter": float(self.shutter)}
        sha = getattr(self, "_weights_sha", None)
        if sha is None:  # hashed once per stage object: keys are asked for often
            sha = checkpoint_sha256(self.weights)
            object.__setattr__(self, "_weights_sha", sha)
        return {"method": "gan", "threshold": float(self.threshold), "weights_sha256": sha}

    def restorer(self, device):
        """The method's restorer (the GAN loaded on ``device``)."""
        if self.method == "gan":
            return GanRestorer.load(self.weights, device)
        return ClassicalRestorer(self.shutter)

    def open(self, ctx, inputs, scale):
        if self.method == "none":
            return unchanged
        return FaceRestorer(self.restorer(ctx.device), inputs["motion"], self.threshold, scale)
