"""The render stage of the synthesis pass: decoded frames in, each edited frame's new face out.

Per frame the edit changes (:class:`~facepipe.render.geometry.FrameMeshes`):

1. warp: the actor's own pixels move from the source mesh to the edited mesh
   (:func:`facepipe.render.warp.warp_field`, fold-free, rigid mouth interior and eyes);
2. appearance (optional): donor regions from the actor's own frames are laid over the warped
   face (:mod:`facepipe.stages.appearance`), with the plate's motion blur re-applied to them
   (``shutter``: the design's reblur step);
3. the face's matte from the source and edited meshes.

Steps 1-3 of a frame touch no shared state, so frames render on the run's worker threads
(:meth:`RunContext.submit`); the output chunk carries one Future per rendered frame, which the
composite stage resolves in frame order while later frames still render. Frames that repeat
their predecessor (pulled-down footage, :class:`RepeatDetector`) are not rendered but marked
``held``: the composite re-applies the previous frame's edit to them. The renderer keeps state
between chunks (the repeat detector), so it must see them in order.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import torch

from facepipe import defaults
from facepipe.composite import face_matte
from facepipe.composite.reblur import reblur_layer
from facepipe.face.extent import Box, face_box
from facepipe.face.model import load_model
from facepipe.face.topology import outer_boundary
from facepipe.io.reader import FrameChunk
from facepipe.pipeline.stage import FrameStage
from facepipe.render.geometry import EditGeometry
from facepipe.render.warp import apply_warp, warp_field
from facepipe.stages.appearance import appearance_for_shot

class AppearanceSource(Protocol):
    """Transferred appearance for one frame in the frame's edited geometry: ``(box, layer (3,h,w),
    alpha (1,h,w))`` over the box it touches, or None where nothing is transferred. ``pos`` is
    the frame's row in the shot arrays; ``dst`` (N,2) the edited mesh at the render scale;
    ``warped`` (3,H,W) the warped frame."""

    def __call__(self, warped: torch.Tensor, pos: int, dst: torch.Tensor) -> tuple[Box, torch.Tensor, torch.Tensor] | None: ...


class RenderedFace(NamedTuple):
    """One frame's new face: face (3,H,W) the whole frame with the face re-rendered; matte
    (1,H,W) 0..1 where it replaces the plate; centre (2,) px the edited mesh's mean (the matte
    stabiliser follows it)."""

    face: torch.Tensor
    matte: torch.Tensor
    centre: torch.Tensor


@dataclass
class RenderedChunk:
    """What the render stage hands the composite.

    plate: the decoded chunk (frames (T,3,H,W)); faces: per frame a Future of its
    :class:`RenderedFace`, None where the frame is not rendered (not edited, or held);
    held: (T,) bool frames that repeat their predecessor and take its edit; restart: (T,) bool
    rendered frames after an edit pause (the matte's history restarts there).
    """

    plate: FrameChunk
    faces: list[Future | None]
    held: np.ndarray
    restart: np.ndarray


class RenderStats:
    """What the renderer did, for the edit report (updated from the worker threads)."""

    def __init__(self):
        self.frames = self.edited = self.scaled_down = self.repaired = 0
        self.mouth_stretched = self.transferred = self.held = 0
        self.min_edit_scale = 1.0
        self._lock = threading.Lock()

    def count_face(self, fld, transferred: bool) -> None:
        with self._lock:
            self.min_edit_scale = min(self.min_edit_scale, fld.edit_scale)
            self.scaled_down += fld.edit_scale < 1.0
            self.repaired += fld.repaired > 0
            self.mouth_stretched += fld.mouth_filled
            self.transferred += transferred

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


class FaceRenderer:
    """The render stage's transform: :class:`~facepipe.io.reader.FrameChunk` ->
    :class:`RenderedChunk`.

    geometry: the shot's source and edited meshes; triangles: (F,3) of the mesh; velocity: (T,2)
    face motion px/frame at full resolution per shot row; scale: the render scale (frames decoded
    at that scale); appearance: transferred appearance or None (warp only); shutter: degrees of
    the motion blur re-applied to transferred appearance; work_px: face size in pixels of the
    grid the warp is built on; submit: runs per-frame work (:meth:`RunContext.submit`).
    """

    def __init__(self, geometry: EditGeometry, triangles: np.ndarray, velocity: np.ndarray, scale: float,
                 appearance: AppearanceSource | None, shutter: float, work_px: float, submit):  # fmt: skip
        self.geometry = geometry
        self.triangles = torch.as_tensor(np.asarray(triangles, np.int64))
        outline = outer_boundary(np.asarray(triangles))
        # of the source and the edited mesh, concatenated as in _render_face
        self.outlines = (outline, outline + geometry.model.n_vertices)
        self.velocity = np.nan_to_num(np.asarray(velocity, np.float32)) * scale
        self.scale = scale
        self.appearance = appearance
        self.shutter = shutter
        self.work_px = work_px
        self.submit = submit
        self.stats = RenderStats()
        self.repeats = RepeatDetector()
        #: What the appearance transfer chose (regions, donors), for the edit report.
        self.appearance_report: dict = {}

    def __call__(self, chunk: FrameChunk) -> RenderedChunk:
        frames = chunk.frames
        T = frames.shape[0]
        self.stats.frames += T
        meshes = self.geometry.meshes(chunk.indices, self.scale)
        dev = frames.device
        tris = self.triangles.to(dev)
        faces: list[Future | None] = [None] * T
        held, restart = np.zeros(T, bool), np.zeros(T, bool)
        paused = False
        for t in range(T):
            src = torch.from_numpy(meshes.src[t]).to(dev) if meshes.edit[t] else None
            repeat = self.repeats(frames[t], int(chunk.indices[t]), src)
            if src is None:
                paused = True
            elif repeat:
                held[t] = True
            else:
                faces[t] = self.submit(self._render_face, frames[t], meshes, t, tris)
                restart[t], paused = paused, False
        self.stats.edited += int(held.sum()) + sum(f is not None for f in faces)
        self.stats.held += int(held.sum())
        return RenderedChunk(chunk, faces, held, restart)

    def _render_face(self, frame: torch.Tensor, meshes, t: int, tris: torch.Tensor) -> RenderedFace:
        """Row ``t`` of the chunk's ``meshes`` rendered on ``frame`` (3,H,W). Touches no renderer
        state but the (locked) statistics, so frames can render in parallel."""
        H, W = frame.shape[-2:]
        dev = frame.device
        src, dst, depth = (torch.from_numpy(m[t]).to(dev) for m in (meshes.src, meshes.dst, meshes.depth))
        fld = warp_field(src, dst, tris, (H, W), depth, work_px=self.work_px)
        face = apply_warp(frame[None], fld)[0]
        transferred = self._lay_appearance(face, int(meshes.positions[t]), dst)
        self.stats.count_face(fld, transferred)
        matte = face_matte(torch.cat([src, dst]), torch.cat([tris, tris + len(src)]), (H, W), outlines=self.outlines)
        return RenderedFace(face, matte, dst.mean(0))

    def _lay_appearance(self, face: torch.Tensor, pos: int, dst: torch.Tensor) -> bool:
        """Transferred appearance laid over the warped face (3,H,W) in place, re-blurred with
        the plate's motion; whether there was any."""
        got = None if self.appearance is None else self.appearance(face, pos, dst)
        if got is None:
            return False
        box, layer, alpha = got
        if self.shutter > 0:
            box, layer, alpha = reblur_layer(face, box, layer, alpha, self.velocity[pos], self.shutter)
        x0, y0, x1, y1 = box
        region = face[:, y0:y1, x0:x1]
        region.copy_(torch.lerp(region, layer.to(face.dtype), alpha.clamp(0, 1).to(face.dtype)))
        return True


@dataclass
class RenderStage(FrameStage):
    """Re-render the actor's face with the planned expression.

    Args:
        appearance_strength: 0..1 strength of appearance transferred from the actor's own
            frames (0 = the geometric warp only).
        actor_library: folder of other shots of the same actor to draw appearance from ("": none).
        face: the actor in the library's shots (``largest``, ``center`` or a track id).
        shutter: degrees, for the motion blur re-applied to transferred appearance.
        work_px: face size in pixels of the grid the warp is built on (preview: coarser).
    """

    name = "render"
    version = "1"
    frames_from = "decode"
    inputs = ("track", "fit3d", "plan")

    appearance_strength: float = defaults.APPEARANCE_STRENGTH
    actor_library: str = ""
    face: str = "largest"
    shutter: float = 180.0
    work_px: float = 96.0

    def open(self, ctx, inputs, scale) -> FaceRenderer:
        tracks, fit, plan = inputs["track"], inputs["fit3d"], inputs["plan"]
        model = load_model()
        geometry = EditGeometry(model, tracks.landmarks, fit, plan.target, plan.weight, fit.frame_index)
        appearance, report = None, {}
        if self.appearance_strength > 0 and fit.has_face:
            library = Path(self.actor_library) if self.actor_library else None
            appearance, report = appearance_for_shot(ctx, tracks, fit, plan, model, self.appearance_strength,
                                                     library, self.face, scale)  # fmt: skip
        renderer = FaceRenderer(geometry, model.triangles, tracks.velocity, scale, appearance, self.shutter,
                                self.work_px, ctx.submit)  # fmt: skip
        renderer.appearance_report = report
        return renderer
