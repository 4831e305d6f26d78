"""The render stage of the synthesis pass: frames in, frames with the edited face out.

Per frame the edit changes (:class:`~facepipe.render.geometry.FrameMeshes`):

1. warp: the actor's own pixels move from the source mesh to the edited mesh
   (:func:`facepipe.render.warp.warp_field`, fold-free, rigid mouth interior and eyes);
2. appearance (optional): donor regions from the actor's own frames are laid over the warped
   face (an :class:`AppearanceSource`, e.g. :class:`facepipe.render.transfer` through
   ``facepipe.stages.appearance``), with the plate's motion blur re-applied to them (``shutter``);
3. composite: a soft matte from the edited mesh, stabilised over time, and a Laplacian blend
   with grain matched to the plate. Pixels outside the matte are the decoded source pixels.

Frames the edit does not change are returned as decoded, bit for bit; frames that repeat their
predecessor (pulled-down footage) get its edit again (:class:`RepeatDetector`). Steps 1-3 of
each frame touch no shared state and run on ``RenderOptions.workers`` threads; the renderer
keeps state between chunks (matte stabiliser, repeat detector), so it must see them in order.
"""

from __future__ import annotations

from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from facepipe.composite import MatteStabilizer, composite, face_matte
from facepipe.composite.blend import composite_box
from facepipe.composite.reblur import reblur_layer
from facepipe.face.extent import Box, face_box
from facepipe.face.topology import outer_boundary
from facepipe.io.reader import FrameChunk
from facepipe.render.geometry import EditGeometry
from facepipe.render.warp import apply_warp, warp_field


class AppearanceSource(Protocol):
    """Transferred appearance for one frame in the frame's edited geometry: ``(box, layer (3,h,w),
    alpha (1,h,w))`` over the box it touches, or None where nothing is transferred. ``pos`` is
    the frame's row in the shot arrays; ``dst`` (N,2) the edited mesh at the render scale;
    ``warped`` (3,H,W) the warped frame."""

    def __call__(self, warped: torch.Tensor, pos: int, dst: torch.Tensor) -> tuple[Box, torch.Tensor, torch.Tensor] | None: ...


@dataclass(frozen=True)
class RenderOptions:
    """shutter: degrees, for re-blurring transferred appearance with the plate's motion (180 =
    half the frame interval; 0 = none). grain: match the plate's grain on the new face.
    work_px: face size in pixels of the grid the warp is built on. matte_memory: how much of the
    previous frame's matte is kept (0 = none; steadies the edge over time). workers: CPU threads
    that render and blend a chunk's faces side by side (each runs torch on one thread; the frames
    are independent, so the result does not depend on it; on a GPU one is used)."""

    shutter: float = 180.0
    grain: bool = True
    work_px: float = 96.0
    matte_memory: float = 0.5
    workers: int = 1


@dataclass
class RenderStats:
    """What the renderer did, for the edit report."""

    frames: int = 0
    edited: int = 0
    min_edit_scale: float = 1.0
    scaled_down: int = 0  # frames whose edit was scaled down to avoid fold-over
    repaired: int = 0  # frames whose warp needed local relaxation
    mouth_stretched: int = 0  # frames whose edited mouth opens beyond the source's
    transferred: int = 0  # frames with transferred appearance
    held: int = 0  # frames that repeat their predecessor and got its edit again
    regions: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {
            "frames": self.frames,
            "edited": self.edited,
            "min_edit_scale": round(self.min_edit_scale, 3),
            "frames_scaled_down": self.scaled_down,
            "frames_repaired": self.repaired,
            "frames_mouth_stretched": self.mouth_stretched,
            "frames_transferred": self.transferred,
            "frames_held": self.held,
        }


class RepeatDetector:
    """Finds frames that repeat the one before (pulled-down or frame-doubled footage: vr_face4 is
    30 fps made from ~24, every fourth frame a re-encoded copy), from the mean absolute change
    inside the face's box: a repeat changes by less than ``max_step`` (fraction of full scale)
    and by less than ``max_ratio`` of the median of the last ``history`` steps (at least
    ``min_history`` of them). In the shared clips repeats change by 0.07 code values at most and
    real frames by 0.11 at least (a still three-quarter view), 0.6-1.2 in the median, so
    both tests are needed. Streams: call it for consecutive frames in order."""

    def __init__(self, max_step: float = 0.1 / 255, max_ratio: float = 0.05, history: int = 8, min_history: int = 4):
        self.max_step, self.max_ratio, self.min_history = max_step, max_ratio, min_history
        self.steps: deque[float] = deque(maxlen=history)
        self.prev: tuple[int, torch.Tensor] | None = None  # (source index, frame (3,H,W))

    def __call__(self, frame: torch.Tensor, index: int, mesh: torch.Tensor | None) -> bool:
        """frame (3,H,W) of source frame ``index``; mesh (N,2) pixels of its face, or None where
        it has none (the history restarts)."""
        prev, self.prev = self.prev, (index, frame)
        if mesh is None or prev is None or prev[0] != index - 1:
            self.steps.clear()
            return False
        x0, y0, x1, y1 = face_box([mesh], 0.0, tuple(frame.shape[-2:]))
        if x1 <= x0 or y1 <= y0:
            self.steps.clear()
            return False
        step = float((frame[:, y0:y1, x0:x1] - prev[1][:, y0:y1, x0:x1]).abs().mean())
        known = len(self.steps) >= self.min_history
        repeat = known and step < self.max_step and step < self.max_ratio * float(np.median(self.steps))
        if not repeat:  # a repeat's near-zero step would drag the median down
            self.steps.append(step)
        return repeat


def composite_face(layer: torch.Tensor, plate: torch.Tensor, matte: torch.Tensor, grain: bool, seed: int, index: int):
    """One frame's rendered face (3,H,W) blended over its plate (3,H,W) with ``matte`` (1,H,W):
    (box (y0, y1, x0, x1), the blended crop (3,h,w)), or None for an empty matte. Only the crop
    :func:`~facepipe.composite.blend.composite_box` says the blend reads is carried, and each
    frame's result depends on that frame alone (not on which frames share its chunk)."""
    box = composite_box(matte[None])
    if box is None:
        return None
    y0, y1, x0, x1 = box
    crop = (slice(None), slice(y0, y1), slice(x0, x1))
    blended = composite(layer[crop][None], plate[crop][None], matte[crop][None], color=False, grain=grain, seed=seed,
                        frame_indices=[index])  # fmt: skip
    return box, blended[0]


class FaceRenderer:
    """A frame transform for :func:`facepipe.pipeline.synthesis.render_frames`.

    geometry: the shot's source and edited meshes; triangles: (F,3) of the mesh; velocity: (T,2)
    face motion px/frame at full resolution per shot row; scale: the render scale (frames decoded
    at that scale); appearance: transferred appearance or None (warp only); seed: grain noise.
    """

    def __init__(
        self,
        geometry: EditGeometry,
        triangles: np.ndarray,
        velocity: np.ndarray,
        options: RenderOptions = RenderOptions(),
        scale: float = 1.0,
        appearance: AppearanceSource | None = None,
        seed: int = 0,
    ):
        self.geometry = geometry
        self.triangles = torch.as_tensor(np.asarray(triangles, np.int64))
        outline = outer_boundary(np.asarray(triangles))
        # of the source and the edited mesh, concatenated as in __call__
        self.outlines = (outline, outline + geometry.model.n_vertices)
        self.velocity = np.nan_to_num(np.asarray(velocity, np.float32)) * scale
        self.options = options
        self.scale = scale
        self.appearance = appearance
        self.seed = seed
        self.stabilizer = MatteStabilizer(options.matte_memory)
        self.stats = RenderStats()
        self.repeats = RepeatDetector()
        # threads for _render_face (CPU only); they end when the renderer is garbage collected
        self.pool = ThreadPoolExecutor(options.workers, "facepipe-render") if options.workers > 1 else None
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None  # (source, output) of the last frame seen

    def __call__(self, chunk: FrameChunk) -> torch.Tensor:
        """frames (T,3,H,W) float 0..1 -> (T,3,H,W) with the edited face."""
        frames = chunk.frames
        T = frames.shape[0]
        self.stats.frames += T
        meshes = self.geometry.meshes(chunk.indices, self.scale)
        dev = frames.device
        tris = self.triangles.to(dev)
        rows, held, fresh = [], [], []  # fresh: the matte history ends before this row (an edit pause)
        paused = False
        for t in range(T):
            src = torch.from_numpy(meshes.src[t]).to(dev) if meshes.edit[t] else None
            repeat = self.repeats(frames[t], int(chunk.indices[t]), src)
            if src is None:
                paused = True
            elif repeat:
                held.append(t)
            else:
                rows.append(t)
                fresh.append(paused)
                paused = False

        # Each frame renders on the threads; the matte stabiliser takes the mattes in frame order
        # as they come, and hands each frame on to its blend at once, so the threads never wait
        # for the whole chunk in between.
        submit = self._submitter(dev)
        renders = [submit(self._render_face, frames[t], meshes, t, tris) for t in rows]
        blends = []
        for t, rendered, restart in zip(rows, renders, fresh):
            face, matte, centre, fld, transferred = rendered.result()
            self._count_warp(fld)
            self.stats.transferred += transferred
            if restart:
                self.stabilizer.prev = None
            matte = self.stabilizer(matte[None], centre[None])[0]
            blends.append(submit(composite_face, face, frames[t], matte, self.options.grain, self.seed,
                                 int(chunk.indices[t])))  # fmt: skip
        self.stats.edited += len(rows)
        out = frames.clone()
        for t, blend in zip(rows, blends):
            blended = blend.result()
            if blended is not None:
                (y0, y1, x0, x1), face = blended
                out[t, :, y0:y1, x0:x1] = face.to(out.dtype)
        self._hold(out, frames, held)
        # the last frame's source and output, for a repeat that starts the next chunk (copies:
        # views would keep the whole chunk alive)
        self.last = (frames[-1].clone(), out[-1].clone())
        return out

    def _submitter(self, device):
        """``submit(fn, *args) -> Future``: on the render threads (CPU, several workers), else
        run at once in this thread."""
        if self.pool is not None and device.type == "cpu":
            return self.pool.submit

        def run_now(fn, *args) -> Future:
            done = Future()
            done.set_result(fn(*args))
            return done

        return run_now

    def _render_face(self, frame: torch.Tensor, meshes, t: int, tris: torch.Tensor):
        """Row ``t`` of the chunk's ``meshes`` rendered on ``frame`` (3,H,W): (face (3,H,W),
        matte (1,H,W), matte centre (2,), warp field, whether appearance was transferred).
        Touches no renderer state, so frames can render in parallel."""
        H, W = frame.shape[-2:]
        dev = frame.device
        src, dst, depth = (torch.from_numpy(m[t]).to(dev) for m in (meshes.src, meshes.dst, meshes.depth))
        fld = warp_field(src, dst, tris, (H, W), depth, work_px=self.options.work_px)
        face = apply_warp(frame[None], fld)[0]
        face, transferred = self._lay_appearance(face, int(meshes.positions[t]), dst)
        matte = face_matte(torch.cat([src, dst]), torch.cat([tris, tris + len(src)]), (H, W), outlines=self.outlines)
        return face, matte, dst.mean(0), fld, transferred

    def _hold(self, out, frames, held) -> None:
        """Frames that repeat their predecessor get its edit (output - source) again, in order:
        rendering them afresh would make the new face move (grain, donors, tracking noise) where
        the plate stands still, a pop on every repeated frame of pulled-down footage. Outside the
        matte the edit is exactly 0, so those pixels stay the source's."""
        for t in held:
            before = (frames[t - 1], out[t - 1]) if t > 0 else self.last
            out[t] = frames[t] + (before[1] - before[0])
        self.stats.edited += len(held)
        self.stats.held += len(held)

    def _count_warp(self, fld) -> None:
        s = self.stats
        s.min_edit_scale = min(s.min_edit_scale, fld.edit_scale)
        s.scaled_down += fld.edit_scale < 1.0
        s.repaired += fld.repaired > 0
        s.mouth_stretched += fld.mouth_filled

    def _lay_appearance(self, face: torch.Tensor, pos: int, dst: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """The warped face (3,H,W) with transferred appearance over it (in place), re-blurred
        with the plate's motion; and whether there was any."""
        if self.appearance is None:
            return face, False
        got = self.appearance(face, pos, dst)
        if got is None:
            return face, False
        box, layer, alpha = got
        if self.options.shutter > 0:
            box, layer, alpha = reblur_layer(face, box, layer, alpha, self.velocity[pos], self.options.shutter)
        x0, y0, x1, y1 = box
        region = face[:, y0:y1, x0:x1]
        region.copy_(torch.lerp(region, layer.to(face.dtype), alpha.clamp(0, 1).to(face.dtype)))
        return face, True
