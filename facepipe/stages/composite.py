"""The composite stage: each rendered face blended over its plate.

The render stage's mattes are stabilised over time (:class:`~facepipe.composite.MatteStabilizer`,
a window of the last few frames, in frame order, following the face), then each frame is blended on its own crop on the worker
threads (colour-matched grain, Laplacian blend: :func:`facepipe.composite.composite`). Pixels
outside the matte are the decoded source pixels, bit for bit; frames the render did not touch
come through as decoded. Frames the render marked ``held`` (repeats of their predecessor) get
the predecessor's edit (output - source) again, so pulled-down footage shows no pop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facepipe.composite import MatteStabilizer, composite
from facepipe.composite.blend import composite_box
from facepipe.io.reader import FrameChunk
from facepipe.pipeline.stage import FrameStage

#: (y0, y1, x0, x1) frame pixels, half-open: the crop a frame's blend wrote, and its matte there.
MatteCrop = tuple[tuple[int, int, int, int], torch.Tensor]


@dataclass
class EditedChunk(FrameChunk):
    """An edited chunk: ``frames`` (T,3,H,W) the edited frames, plus what temporal stages
    downstream need: plate (T,3,H,W) the frames the edit is laid over; mattes: per frame the
    blend's crop box and the (stabilised) matte (1,h,w) there, None where the frame is the plate
    unchanged; held: (T,) bool frames that repeat their predecessor's edit; decoded (T,3,H,W)
    the decoded frames where the plate is not them (restored faces delivered), else None."""

    plate: torch.Tensor | None = None
    mattes: list[MatteCrop | None] | None = None
    held: np.ndarray | None = None
    decoded: torch.Tensor | None = None


def composite_face(layer: torch.Tensor, plate: torch.Tensor, matte: torch.Tensor, grain: bool, seed: int,
                   index: int) -> tuple[tuple[int, int, int, int], torch.Tensor, torch.Tensor] | None:  # fmt: skip
    """One frame's rendered face (3,H,W) blended over its plate (3,H,W) with ``matte`` (1,H,W):
    (box (y0, y1, x0, x1), the blended crop (3,h,w), the matte crop (1,h,w)), or None for an
    empty matte. Only the crop :func:`~facepipe.composite.blend.composite_box` says the blend
    reads is carried, and each frame's result depends on that frame alone (not on which frames
    share its chunk)."""
    box = composite_box(matte[None])
    if box is None:
        return None
    y0, y1, x0, x1 = box
    crop = (slice(None), slice(y0, y1), slice(x0, x1))
    blended = composite(layer[crop][None], plate[crop][None], matte[crop][None], color=False, grain=grain, seed=seed,
                        frame_indices=[index])  # fmt: skip
    return box, blended[0], matte[crop]


class FaceCompositor:
    """The composite stage's transform: :class:`~facepipe.stages.render.RenderedChunk` ->
    :class:`EditedChunk`. Keeps the matte stabiliser and the last frame's edit across chunks."""

    def __init__(self, grain: bool, matte_memory: float, matte_window: int, seed: int, submit):
        self.grain, self.seed, self.submit = grain, seed, submit
        self.stabilizer = MatteStabilizer(matte_memory, matte_window)
        # (source, output, matte crop) of the last frame seen, for a repeat that starts a chunk
        self.last: tuple[torch.Tensor, torch.Tensor, MatteCrop | None] | None = None

    def __call__(self, rendered) -> EditedChunk:
        plate = rendered.plate
        frames = plate.frames
        # The stabiliser takes the mattes in frame order as the renders finish and hands each
        # frame on to its blend at once, so the threads never wait for the whole chunk.
        blends = []
        for t, face in enumerate(rendered.faces):
            if face is None:
                continue
            layer, matte, centre = face.result()
            if rendered.restart[t]:
                self.stabilizer.restart()
            matte = self.stabilizer(matte[None], centre[None])[0]
            blends.append((t, self.submit(composite_face, layer, frames[t], matte, self.grain, self.seed,
                                          int(plate.indices[t]))))  # fmt: skip
        out = frames.clone()
        mattes: list[MatteCrop | None] = [None] * len(frames)
        for t, blend in blends:
            blended = blend.result()
            if blended is not None:
                box, face, matte = blended
                y0, y1, x0, x1 = box
                out[t, :, y0:y1, x0:x1] = face.to(out.dtype)
                mattes[t] = (box, matte)
        self._hold(out, frames, mattes, np.flatnonzero(rendered.held))
        # copies: views would keep the whole chunk alive
        self.last = (frames[-1].clone(), out[-1].clone(), mattes[-1])
        return EditedChunk(plate.indices, plate.pts, out, plate=frames, mattes=mattes, held=rendered.held,
                           decoded=getattr(plate, "decoded", None))  # a RestoredChunk's: the preview's source side

    def _hold(self, out, frames, mattes, held) -> None:
        """Frames that repeat their predecessor get its edit (output - source) again, in order:
        rendering them afresh would make the new face move (grain, donors, tracking noise) where
        the plate stands still, a pop on every repeated frame of pulled-down footage. Outside the
        matte the edit is exactly 0, so those pixels stay the source's."""
        for t in held:
            before = (frames[t - 1], out[t - 1], mattes[t - 1]) if t > 0 else self.last
            out[t] = frames[t] + (before[1] - before[0])
            mattes[t] = before[2]


@dataclass
class CompositeStage(FrameStage):
    """Blend the rendered faces over the plate.

    Args:
        grain: match the plate's grain on the new face (preview: off, for speed).
        matte_memory: weight of the previous frame's matte against the current one's (0 = none;
            steadies the edge over time); matte_window: frames the matte is averaged over.
        seed: of the grain noise (the same request gives the same frames).
    """

    name = "composite"
    version = "2"  # 2: the matte averaged over a finite window (was an exponential average)
    frames_from = "render"

    grain: bool = True
    matte_memory: float = 0.5
    matte_window: int = 4
    seed: int = 0

    def open(self, ctx, inputs, scale) -> FaceCompositor:
        return FaceCompositor(self.grain, self.matte_memory, self.matte_window, self.seed, ctx.submit)
