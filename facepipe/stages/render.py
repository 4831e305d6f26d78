"""The render stage of the synthesis pass: decoded frames in, each edited frame's new face out.

Per frame the edit changes (:class:`~facepipe.render.geometry.FrameMeshes`):

1. warp: the actor's own pixels move from the source mesh to the edited mesh
   (:func:`facepipe.render.warp.warp_field`, fold-free, rigid mouth interior and eyes); where
   the edited lids open beyond the source's, the iris is kept a disc and the stretch beyond it
   made sclera (:mod:`facepipe.render.eye_interior`);
2. appearance (optional): donor regions from the actor's own frames, their glasses rims erased,
   are laid over the warped face (:mod:`facepipe.stages.appearance`), with the plate's motion
   blur re-applied to them (``shutter``: the design's reblur step). Glasses rims, rigid with the
   head, are held out of the warp and the transfer where the source shows them
   (:mod:`facepipe.render.occluders`: the warp's copy painted over before the transfer, the
   source's rims laid after it);
3. neural refinement (optional): the actor's trained renderer adds what the warp cannot carry
   (:class:`~facepipe.render.neural.refine.NeuralRefiner`, issue 15);
4. the face's matte from the source and edited meshes.

Steps 1-4 of a frame touch no shared state, so frames render on the run's worker threads
(:meth:`RunContext.submit`); the output chunk carries one Future per rendered frame, which the
composite stage resolves in frame order while later frames still render. With a neural
renderer, step 3 is split: each frame's crop for the generator is prepared with steps 1-2 on
the workers (two crops: the edited face and the source frame), the generator runs once per group
of at most the refiner's ``batch`` crops of the chunk (a GPU needs batches; on CUDA ``submit``
runs at once, which would feed it one crop at a time), and each frame's paste of the change and
step 4 go back to the workers. Frames that repeat their predecessor (pulled-down footage: the
``repeats`` stage) are not rendered but marked ``held``: the composite re-applies the previous
frame's edit to them. The renderer remembers whether the frame before a chunk was edited and
the neural renderer's last changes, so it must see the chunks in order.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import torch

from facepipe import defaults
from facepipe.composite import face_matte
from facepipe.composite.reblur import reblur_layer
from facepipe.face.extent import Box
from facepipe.face.model import load_model
from facepipe.face.topology import N_VERTICES, outer_boundary
from facepipe.io.reader import FrameChunk
from facepipe.pipeline.stage import FrameStage
from facepipe.render.eye_interior import draw_eyes, shot_iris_sizes, tracked_iris_sizes
from facepipe.render.geometry import EditGeometry
from facepipe.render.neural.refine import NeuralRefiner, RefinePair
from facepipe.render.neural.temporal import WINDOW, FrameChange, steady_change
from facepipe.render.occluders import FRAME_BRIDGE, bridge_evidence, hold_rims, paint_over_rims, shot_has_rims
from facepipe.render.rim_template import RimTemplate, build_rim_template
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


class FrameRecord(NamedTuple):
    """What the renderer did to one frame: held (took its predecessor's edit), the warp's
    edit_scale (1 = in full), repaired (the warp needed local relaxation), mouth_stretched (the
    edited mouth opens beyond the source's), transferred (appearance was laid), refined (the
    neural renderer refined it), eyes_drawn (how many eyes' uncovered interior was drawn),
    rims_held (glasses rims were held out of the warp)."""

    held: bool
    edit_scale: float = 1.0
    repaired: bool = False
    mouth_stretched: bool = False
    transferred: bool = False
    refined: bool = False
    eyes_drawn: int = 0
    rims_held: bool = False


class WarpedFace(NamedTuple):
    """One frame after steps 1-2: face (3,H,W) the whole frame warped, with its eyes, rims and
    appearance; src, dst (N,2) px the source and edited meshes; record: what was done to it
    (``refined`` not yet set); prepared: the neural renderer's inputs for it, None without one."""

    face: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    record: FrameRecord
    prepared: RefinePair | None


class RenderStats:
    """What the renderer did, frame by frame (recorded from the worker threads), for the edit
    report of the frames it writes (a farm chunk also renders context frames it does not)."""

    def __init__(self):
        self.frames: dict[int, FrameRecord] = {}  # source index -> record, for edited frames
        self._lock = threading.Lock()

    def record(self, index: int, record: FrameRecord) -> None:
        with self._lock:
            self.frames[index] = record

    def to_dict(self, indices) -> dict:
        """Counts over source frames ``indices``."""
        recs = [self.frames[i] for i in map(int, indices) if i in self.frames]
        return {
            "frames": len(indices),
            "edited": len(recs),
            "min_edit_scale": round(min((r.edit_scale for r in recs), default=1.0), 3),
            "frames_scaled_down": sum(r.edit_scale < 1.0 for r in recs),
            "frames_repaired": sum(r.repaired for r in recs),
            "frames_mouth_stretched": sum(r.mouth_stretched for r in recs),
            "frames_transferred": sum(r.transferred for r in recs),
            "frames_refined": sum(r.refined for r in recs),
            "frames_eyes_drawn": sum(r.eyes_drawn > 0 for r in recs),
            "frames_rims_held": sum(r.rims_held for r in recs),
            "frames_held": sum(r.held for r in recs),
        }


class FaceRenderer:
    """The render stage's transform: :class:`~facepipe.io.reader.FrameChunk` ->
    :class:`RenderedChunk`.

    geometry: the shot's source and edited meshes; triangles: (F,3) of the mesh; velocity: (T,2)
    face motion px/frame at full resolution per shot row; repeats: source frame index -> whether
    it repeats the frame before; scale: the render scale (frames decoded at that scale);
    appearance: transferred appearance or None (warp only); shutter: degrees of the motion blur
    re-applied to transferred appearance; work_px: face size in pixels of the grid the warp is
    built on; submit: runs per-frame work (:meth:`RunContext.submit`); refiner: the actor's
    neural renderer or None (geometric only); rims: the shot's glasses rims, held out of the
    warp (:mod:`facepipe.render.rim_template`), or None (no glasses); iris_sizes: the shot's iris
    radius per eye in eye widths (:func:`facepipe.render.eye_interior.tracked_iris_sizes`);
    shot_cuts: source frame indices that start a new shot (the neural renderer's change is not
    carried across them).
    """

    def __init__(self, geometry: EditGeometry, triangles: np.ndarray, velocity: np.ndarray, repeats: dict[int, bool],
                 scale: float, appearance: AppearanceSource | None, shutter: float, work_px: float, submit,
                 refiner: NeuralRefiner | None = None, rims: RimTemplate | None = None,
                 iris_sizes: dict[str, float] | None = None, shot_cuts=()):  # fmt: skip
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
        self.refiner = refiner
        self.rims = rims
        self.iris_sizes = iris_sizes or {}
        self.shot_cuts = np.asarray(shot_cuts, np.int64)
        self.stats = RenderStats()
        self.repeats = repeats
        self.last_edited: int | None = None  # source index of the last frame seen, if it was edited
        self.changes: list[FrameChange] = []  # the neural renderer's last changes, for steady_change
        #: What the appearance transfer chose (regions, donors), for the edit report.
        self.appearance_report: dict = {}

    def __call__(self, chunk: FrameChunk) -> RenderedChunk:
        frames = chunk.frames
        T = frames.shape[0]
        meshes = self.geometry.meshes(chunk.indices, self.scale)
        dev = frames.device
        tris = self.triangles.to(dev)
        faces: list[Future | None] = [None] * T
        held, restart = np.zeros(T, bool), np.zeros(T, bool)
        warping: list[tuple[int, int, Future]] = []  # (row, source index, Future of its WarpedFace) to refine
        for t, index in enumerate(chunk.indices.tolist()):
            if not meshes.edit[t]:
                self.last_edited = None
                continue
            follows = self.last_edited == index - 1  # the frame before was edited in this stream
            if self.repeats.get(index, False) and follows:
                held[t] = True  # a repeat takes the edit of the frame before
                self.stats.record(index, FrameRecord(held=True))
            else:
                if self.refiner is None:
                    faces[t] = self.submit(self._render_face, frames[t], meshes, t, tris, index)
                else:
                    warping.append((t, index, self.submit(self._warp_face, frames[t], meshes, t, tris)))
                restart[t] = not follows  # the matte's history starts again after a pause or a gap
            self.last_edited = index
        if warping:
            self._refine(warping, faces, tris)
        return RenderedChunk(chunk, faces, held, restart)

    def _render_face(self, frame: torch.Tensor, meshes, t: int, tris: torch.Tensor, index: int) -> RenderedFace:
        """Row ``t`` of the chunk's ``meshes`` (source frame ``index``) rendered on ``frame``
        (3,H,W) without a neural renderer. Touches no renderer state but the (locked)
        statistics, so frames can render in parallel."""
        return self._finish_face(self._warp_face(frame, meshes, t, tris), index, tris)

    def _warp_face(self, frame: torch.Tensor, meshes, t: int, tris: torch.Tensor) -> WarpedFace:
        """Steps 1-2 of row ``t`` of the chunk's ``meshes`` on ``frame`` (3,H,W), and the neural
        renderer's input when there is one. Touches no renderer state (worker threads)."""
        H, W = frame.shape[-2:]
        dev = frame.device
        src, dst, depth = (torch.from_numpy(m[t]).to(dev) for m in (meshes.src, meshes.dst, meshes.depth))
        fld = warp_field(src, dst, tris, (H, W), depth, work_px=self.work_px)
        face = apply_warp(frame[None], fld)[0]
        eyes_drawn = draw_eyes(face, frame, src, dst, fld, self.iris_sizes, torch.from_numpy(meshes.irises[t]).to(dev))
        held = None if self.rims is None else paint_over_rims(face, frame, self.rims.render(src, depth, fld.box), fld)
        transferred = self._lay_appearance(face, int(meshes.positions[t]), dst)
        if held is not None:  # after the transfer: the rims are in front of the (rimless) skin it lays
            hold_rims(face, frame, held, fld.box)
        rims_held = held is not None
        prepared = None if self.refiner is None else RefinePair(
            self.refiner.prepare(face, dst, depth, torch.from_numpy(meshes.au[t])),
            self.refiner.prepare(frame, src, torch.from_numpy(meshes.source_depth[t]), torch.from_numpy(meshes.source_au[t])))
        record = FrameRecord(False, fld.edit_scale, fld.repaired > 0, bool(fld.mouth_filled), transferred, False,
                             eyes_drawn, rims_held)  # fmt: skip
        return WarpedFace(face, src, dst, record, prepared)

    def _refine(self, warping: list[tuple[int, int, Future]], faces: list, tris: torch.Tensor) -> None:
        """Step 3 for the frames ``warping`` ((row, source index, Future of its :class:`WarpedFace`),
        in frame order): one generator call per group of at most the refiner's ``batch`` crops,
        made as soon as the group is warped (later groups still warp on the workers); each
        frame's change is kept for the frames after it (:data:`~facepipe.render.neural.temporal.WINDOW`)
        and its paste and matte are submitted as its Future in ``faces``."""
        step = max(1, self.refiner.batch // 2)  # two crops a frame
        for s in range(0, len(warping), step):
            group = warping[s:s + step]
            warped = [future.result() for _, _, future in group]
            changes = self.refiner.changes([w.prepared for w in warped])
            for (t, index, _), w, change in zip(group, warped, changes):
                shot_start = max([index - WINDOW, *self.shot_cuts[self.shot_cuts <= index].tolist()])
                earlier = [c for c in self.changes if shot_start <= c.index < index]
                faces[t] = self.submit(self._finish_face, w, index, tris, (change, earlier))
                self.changes = [*earlier, FrameChange(index, w.prepared.edited.vertices, change)]

    def _finish_face(self, warped: WarpedFace, index: int, tris: torch.Tensor,
                     refined: tuple[torch.Tensor, list[FrameChange]] | None = None) -> RenderedFace:  # fmt: skip
        """Source frame ``index`` finished: the neural renderer's change, if ``refined`` (its change
        (3,S,S), the earlier frames' changes), held steady and pasted on its warped face; its
        record kept, its matte made (step 4). Touches no renderer state but the (locked)
        statistics (worker threads)."""
        face, src, dst = warped.face, warped.src, warped.dst
        if refined is not None:
            change, earlier = refined
            edited = warped.prepared.edited
            self.refiner.paste(face, edited, steady_change(change, edited.raster, self.refiner.triangles, earlier))
        self.stats.record(index, warped.record._replace(refined=refined is not None))
        matte = face_matte(torch.cat([src, dst]), torch.cat([tris, tris + len(src)]), tuple(face.shape[-2:]),
                           outlines=self.outlines)
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
        renderer_weights: the actor's neural renderer checkpoint ("": geometric only).
        frames_from: the plate the face is rendered on: ``decode``, or ``deblur`` to deliver
            the deblur node's restored faces.
    """

    name = "render"
    # 2: repeated frames from the repeats stage; 3: the lower lid drops with AU5 (EDIT_SHAPES);
    # 4: the interior of eyes opened wider than the source is drawn (render.eye_interior);
    # 5: glasses rims are held out of the warp (render.occluders);
    # 6: the rims come from one template per shot in mesh coordinates (render.rim_template), not
    #    from each frame, and leave the brows to the warp; 7: one iris size per eye and shot;
    # 8: the iris is drawn at the tracker's iris centre, its size the tracked one (per eye and shot)
    # 9: appearance donors' glasses rims are erased, and the source's rims are laid over the transfer;
    # 10: a drawn AU6 narrows the eye (render.geometry.EDIT_SHAPES: the upper lid follows the corners)
    # 11: the neural renderer's change is held steady over the frames before (render.neural.temporal)
    # 12: the neural renderer's change less its own error on the source frame (render.neural.refine)
    # 13: ... and not carried across a shot cut
    version = "13"
    inputs = ("track", "fit3d", "plan", "repeats")

    appearance_strength: float = defaults.APPEARANCE_STRENGTH
    actor_library: str = ""
    face: str = "largest"
    shutter: float = 180.0
    work_px: float = 96.0
    renderer_weights: str = ""
    frames_from: str = "decode"

    def open(self, ctx, inputs, scale) -> FaceRenderer:
        tracks, fit, plan, repeats = (inputs[name] for name in self.inputs)
        model = load_model()
        geometry = EditGeometry(model, tracks.landmarks, fit, plan.target, plan.weight, fit.frame_index)
        appearance, report = None, {}
        if self.appearance_strength > 0 and fit.has_face:
            library = Path(self.actor_library) if self.actor_library else None
            appearance, report = appearance_for_shot(ctx, tracks, fit, plan, model, self.appearance_strength,
                                                     library, self.face, scale)  # fmt: skip
        repeated = dict(zip(repeats.frame_index.tolist(), (repeats.repeat > 0).tolist()))
        refiner = None
        if self.renderer_weights and fit.has_face:
            from facepipe.render.neural.checkpoint import load_renderer  # lazy: diffusers takes 1 s to import

            generator, config, _ = load_renderer(self.renderer_weights, model.au_names, ctx.device)
            refiner = NeuralRefiner(generator, config, model.template, model.triangles)
        rims, iris_sizes = None, {}
        if fit.has_face:
            frames, srcs = _shot_samples(ctx, geometry, fit.frame_index, scale)
            rims = _rim_template(frames, srcs, geometry, model)
            if model.n_vertices == N_VERTICES:
                iris_sizes = tracked_iris_sizes(tracks.landmarks) or shot_iris_sizes(frames, srcs)
        renderer = FaceRenderer(geometry, model.triangles, tracks.velocity, repeated, scale, appearance, self.shutter,
                                self.work_px, ctx.submit, refiner, rims, iris_sizes, tracks.shot_cuts)  # fmt: skip
        renderer.appearance_report = report
        return renderer


#: Frames of a shot, evenly spaced over its tracked frames, that the renderer studies before it
#: renders: whether the actor wears glasses and where their rims are, and (tracks without iris
#: points) the size of the irises.
SHOT_SAMPLES = 8


def _shot_samples(ctx, geometry: EditGeometry, frame_index: np.ndarray, scale: float) -> tuple[list, list]:
    """:data:`SHOT_SAMPLES` of the shot's tracked frames spread over the whole shot, whatever range
    is edited (a farm chunk decides as the whole shot does): their frames (3,H,W) and source
    meshes (N,2) at the render scale."""
    frame_index = np.asarray(frame_index)
    if len(frame_index) == 0:
        return [], []
    picks = np.unique(frame_index[np.linspace(0, len(frame_index) - 1, min(SHOT_SAMPLES, len(frame_index))).round().astype(int)])
    meshes = geometry.meshes(picks, scale)
    frames, srcs = [], []
    for chunk in ctx.reader.chunks(picks, chunk_size=None, scale=scale, read_ahead=0):
        for frame, index in zip(chunk.frames, chunk.indices.tolist()):
            src = torch.from_numpy(meshes.src[int(np.searchsorted(picks, index))]).to(ctx.device)
            if float(src.std()) > 0:  # untracked frames have no mesh (zeros)
                frames.append(frame.to(ctx.device))
                srcs.append(src)
    return frames, srcs


def _rim_template(frames: list, srcs: list, geometry: EditGeometry, model) -> RimTemplate | None:
    """The shot's glasses rims (:func:`facepipe.render.rim_template.build_rim_template`) from its
    sampled frames (3,H,W) and source meshes (N,2), or None where it wears none
    (:func:`facepipe.render.occluders.shot_has_rims`). The template is made of the sampled
    frames that show the glasses' bridge (:data:`~facepipe.render.occluders.FRAME_BRIDGE`)."""
    if model.n_vertices != N_VERTICES:  # the rims are found on FaceMesh's topology
        return None
    evidence = [bridge_evidence(frame, src) for frame, src in zip(frames, srcs)]
    if not shot_has_rims(evidence):
        return None
    bridged = [k for k, e in enumerate(evidence) if e >= FRAME_BRIDGE]
    return build_rim_template([frames[k] for k in bridged], [srcs[k] for k in bridged],
                              torch.from_numpy(np.asarray(geometry.fit.identity, np.float32)), model.triangles)  # fmt: skip
