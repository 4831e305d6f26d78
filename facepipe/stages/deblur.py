"""The deblur stage, for analysis: restores the face of frames blurred by fast motion.

The design puts face deblurring between decode and tracking (sharp faces track and fit better).
The delivered plate keeps its blur (synthesis reads ``decode``) unless the edit asks for the
restored face (``edit --deblur``: render reads this node's frames). Each frame's blur estimate is
the face's motion in px/frame from the ``motion`` stage (the detector alone: the tracks' own
velocity would need this node's frames). Frames whose face moves at least ``threshold``
px/frame get their face square restored at the central moment and the change pasted back
feathered (:mod:`facepipe.deblur.restore`); every other frame, and every pixel outside the face
square, passes unchanged.

:class:`DeliveredDeblurStage` is the node an edit delivers (``edit --deblur``): the same
restoration, blended in by a weight that ramps with the blur and is smoothed over a few frames
(:mod:`facepipe.deblur.ramp`), so restored and unrestored frames do not alternate. The tracking
keeps the plain switch (its cache key, shared with ``prepare`` and farm chunks, is unchanged).

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
from facepipe.deblur.ramp import RAMP_HIGH, RAMP_WINDOW, blend_weights
from facepipe.deblur.restore import ClassicalRestorer, GanRestorer, feather, paste_change
from facepipe.errors import RequestError
from facepipe.face.extent import square_around
from facepipe.io.reader import FrameChunk
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


@dataclass
class RestoredChunk(FrameChunk):
    """A chunk the deblur node changed: ``frames`` (T,3,H,W) with restored faces; ``decoded``
    (T,3,H,W) the frames as they came (a preview shows them as the source)."""

    decoded: torch.Tensor | None = None


def unchanged(chunk):
    """The identity transform: the chunk as it came."""
    return chunk


class FaceRestorer:
    """One run of the deblur node: restores the faces of the chunks' blurred frames.

    ``motion``: the shot's :class:`~facepipe.stages.motion.FaceMotion` (full-resolution px);
    ``weight``: (T,) float32 per row of ``motion``, how much of the restoration each frame gets
    (0: none, 1: all of it); ``scale``: the frames' decode scale. ``restored`` lists the source
    frames it changed."""

    def __init__(self, restorer, motion, weight: np.ndarray, scale: float):
        self.restorer, self.motion, self.weight, self.scale = restorer, motion, weight, scale
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
        rows = np.searchsorted(self.motion.indices, chunk.indices)
        todo = np.flatnonzero(self.weight[rows] > 0)
        if not len(todo):
            return chunk
        S = self.restorer.size
        crops = torch.stack([self.crop(chunk.frames[t], int(chunk.indices[t])) for t in todo])
        sides = torch.tensor([self.square(int(chunk.indices[t]))[2] for t in todo])
        velocity = torch.from_numpy(self.motion.velocity[rows[todo]]) * self.scale * (S / sides)[:, None]  # crop px/frame
        weight = torch.from_numpy(self.weight[rows[todo]]).to(crops)[:, None, None, None]
        change = (self.restorer(crops, velocity) - crops) * self.mask.to(crops) * weight
        frames = chunk.frames.clone()
        for k, t in enumerate(todo):
            frames[t] = paste_change(frames[t], change[k], *self.square(int(chunk.indices[t])))
        self.restored += [int(i) for i in chunk.indices[todo]]
        return RestoredChunk(chunk.indices, chunk.pts, frames, decoded=chunk.frames)


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
        motion = inputs["motion"]
        return FaceRestorer(self.restorer(ctx.device), motion, self.blend(motion), scale)

    def blend(self, motion) -> np.ndarray:
        """(T,) float32 per row of ``motion``: 1 on the frames it restores, 0 elsewhere."""
        return blurred_frames(motion, motion.indices, self.threshold).astype(np.float32)


@dataclass
class DeliveredDeblurStage(DeblurStage):
    """The deblur node whose frames an edit delivers (``edit --deblur``): the restoration blended
    in by :func:`facepipe.deblur.ramp.blend_weights`, from 0 at ``threshold`` to 1 at
    ``ramp_high`` px/frame, averaged over ``ramp_window`` frames. ``ramp_high = threshold``
    and ``ramp_window = 1`` is :class:`DeblurStage`'s switch."""

    name = "deblur_delivered"

    ramp_high: float = RAMP_HIGH
    ramp_window: int = RAMP_WINDOW

    def __post_init__(self):
        super().__post_init__()
        if self.ramp_high < self.threshold or self.ramp_window < 1 or self.ramp_window % 2 == 0:
            raise RequestError("the delivered deblur ramp must end at or above its threshold over an odd window")

    @classmethod
    def of(cls, stage: DeblurStage, ramp: bool = True) -> DeliveredDeblurStage:
        """The delivered node of the tracking's ``stage`` (same method, weights, threshold,
        shutter); ``ramp`` False: the plain switch."""
        fields = {f.name: getattr(stage, f.name) for f in dataclasses.fields(DeblurStage)}
        if not ramp:
            return cls(**fields, ramp_high=stage.threshold, ramp_window=1)
        return cls(**fields, ramp_high=max(RAMP_HIGH, stage.threshold))

    def params(self) -> dict:
        base = super().params()
        if self.method == "none":
            return base
        return {**base, "ramp_high": float(self.ramp_high), "ramp_window": int(self.ramp_window)}

    def blend(self, motion) -> np.ndarray:
        present = np.isfinite(motion.box).all(1)
        return blend_weights(motion.speed, present, self.threshold, self.ramp_high, self.ramp_window)
