"""The person-specific neural renderer (issue 15): its network, conditioning maps, training
samples, checkpoints and the edit-time refinement; end to end on the demo clip in a tiny config
(train a few steps, edit with it)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from facepipe import api
from facepipe.demo import make_demo_clip
from facepipe.errors import FacepipeError, WeightsMissingError
from facepipe.face import topology as tp
from facepipe.face.model import load_model
from facepipe.io.media import probe
from facepipe.io.reader import VideoReader
from facepipe.jobs.renderer import resolve_renderer
from facepipe.jobs.train_renderer import sheet_image
from facepipe.nn.face_renderer import FaceRendererNet
from facepipe.render.neural.checkpoint import load_renderer, save_renderer
from facepipe.render.neural.conditioning import (
    MAP_CHANNELS,
    MATTE,
    MOUTH,
    closed_triangles,
    crop_around,
    cut,
    mesh_maps,
    template_coordinates,
    to_crop,
)
from facepipe.render.neural.config import RendererConfig
from facepipe.render.neural.library import renderer_path
from facepipe.render.neural.refine import NeuralRefiner, RefinePair
from facepipe.render.neural.samples import collect_samples, far_references, warp_reference
from facepipe.render.neural.temporal import WINDOW
from facepipe.render.neural import train as train_module
from facepipe.render.neural.train import build_generator, mouth_crops, train_renderer

QUIET = {"progress": "off", "log": lambda m: None}
TINY = RendererConfig(size=32, width=8, levels=2, embed_dim=16, mouth_size=16, disc_width=8, batch=2, holdout=4)


@pytest.fixture(scope="module")
def model():
    return load_model()


def face_landmarks(model, au: np.ndarray, centre=(80.0, 70.0), scale=60.0) -> torch.Tensor:
    """(N,3) a frontal face of the rig with ``au`` at ``centre``, ``scale`` px per model unit."""
    v = model.shape(None, au[None])[0]
    xy = v[:, :2] * np.array([1.0, -1.0]) * scale + np.array(centre)
    return torch.from_numpy(np.concatenate([xy, -v[:, 2:] * scale], 1).astype(np.float32))


def synthetic_frames(model, n: int = 12, seed: int = 0):
    """``n`` (index, frame (3,140,160), landmarks, au) tuples: smooth random images, AUs varying."""
    rng = np.random.default_rng(seed)
    K = len(model.au_names)
    for i in range(n):
        au = np.zeros(K, np.float32)
        au[rng.integers(0, K, 3)] = rng.uniform(0.3, 1.0, 3)
        frame = torch.nn.functional.interpolate(torch.rand(1, 3, 14, 16, generator=torch.Generator().manual_seed(i)),
                                                size=(140, 160), mode="bilinear")[0]  # fmt: skip
        yield i, frame, face_landmarks(model, au), au


def refine_frames(refiner: NeuralRefiner, frames: list, landmarks: list, aus: list, source_au=None) -> None:
    """The render node's refinement of frames (3,H,W) in place, each shown as its own source with
    ``source_au`` (default: none) and edited to ``aus`` on the same mesh: each pair prepared, the
    generator on all of them (in the refiner's batches), each change pasted."""
    source_au = torch.zeros(len(aus[0])) if source_au is None else torch.as_tensor(source_au)
    pairs = [RefinePair(refiner.prepare(f, lm[:, :2], lm[:, 2], torch.from_numpy(au)),
                        refiner.prepare(f, lm[:, :2], lm[:, 2], source_au)) for f, lm, au in zip(frames, landmarks, aus)]
    for frame, pair, change in zip(frames, pairs, refiner.changes(pairs)):
        refiner.paste(frame, pair.edited, change)


@pytest.fixture(scope="module")
def samples(model):
    return collect_samples(synthetic_frames(model), template_coordinates(model.template), closed_triangles(model.triangles),
                           TINY.size, TINY.holdout)  # fmt: skip


def test_an_untrained_renderer_returns_its_warp_and_the_au_code_steers_it(one_torch_thread):
    net = FaceRendererNet(3 + MAP_CHANNELS, 5, width=8, levels=2, embed_dim=16)
    x = torch.rand(2, 3 + MAP_CHANNELS, 32, 32)
    au = torch.rand(2, 5)
    assert torch.equal(net(x, au), x[:, :3].clamp(0, 1))
    torch.nn.init.normal_(net.head.weight, std=0.1)
    assert not torch.allclose(net(x, au), net(x, au + 1), atol=1e-4)


def test_closed_triangles_cover_the_mouth_and_eye_openings(model):
    closed = closed_triangles(model.triangles)
    assert len(closed) == len(model.triangles) + sum(len(loop) - 2 for loop in (tp.LIP_INNER_LOOP, tp.EYE_LOOP_R, tp.EYE_LOOP_L))
    au = np.zeros(len(model.au_names), np.float32)
    au[[model.au_index(n) for n in model.au_names if n.startswith("AU26") or n.startswith("AU27")]] = 1.0  # jaw open
    lm = face_landmarks(model, au)
    v = to_crop(lm[:, :2], crop_around(lm), 64)
    maps, raster = mesh_maps(v, lm[:, 2], template_coordinates(model.template), closed, 64)
    assert maps.shape == (MAP_CHANNELS, 64, 64) and maps.min() >= 0 and maps.max() <= 1
    mouth = maps[MOUTH] > 0.5
    assert mouth.any(), "the open mouth has an opening"
    assert raster.mask[mouth].all() and (maps[MATTE][mouth] == 1).all(), "the closed mesh covers the opening"


def test_a_crop_is_the_image_resampled_around_the_face(model):
    lm = face_landmarks(model, np.zeros(len(model.au_names), np.float32))
    crop = crop_around(lm)
    ys, xs = torch.meshgrid(torch.arange(140.0), torch.arange(160.0), indexing="ij")
    image = torch.stack([xs / 160, ys / 140, torch.zeros_like(xs)])  # colour = position
    out = cut(image, crop, 40)
    back = to_crop(torch.stack([out[0] * 160, out[1] * 140], -1), crop, 40)  # where each crop pixel sampled
    grid = torch.stack(torch.meshgrid(torch.arange(40.0), torch.arange(40.0), indexing="xy"), -1)
    inside = (out[0] > 0) & (out[1] > 0)
    assert (back[inside] - grid[inside]).abs().max() < 0.05


def test_a_sample_warped_to_itself_is_its_own_crop_inside_the_matte(samples, model):
    tris = closed_triangles(model.triangles)
    own = warp_reference(samples, 0, 0, tris)
    m = samples.tri[0] >= 0
    crop = samples.crops[0].float() / 255
    assert (own[:, m] - crop[:, m]).abs().max() < 1e-4
    assert (own[:, ~m] == 0).all()
    assert not torch.allclose(warp_reference(samples, 0, 1, tris)[:, m], own[:, m])


def test_references_are_the_farthest_frames_in_au_space():
    au = torch.tensor([[0.0], [0.1], [0.9], [1.0]])
    refs = far_references(au, np.array([0, 1, 2, 3]), 0.5)
    assert set(refs[0]) == {2, 3} and set(refs[3]) == {0, 1}


def test_mouth_crops_are_squares_around_the_lips(samples):
    images = torch.zeros(1, 3, 32, 32)
    v = samples.vertices[:1]
    lips = v[0, list(tp.LIP_OUTER_LOOP)].mean(0).round().long()
    images[0, :, lips[1], lips[0]] = 1.0
    crops = mouth_crops(images, v, 16)
    assert crops.shape == (1, 3, 16, 16) and crops.max() > 0


def test_training_runs_saves_and_reloads(samples, model, tmp_path, one_torch_thread):
    tris = closed_triangles(model.triangles)
    logs = []
    net, report, rows = train_renderer(samples, TINY, tris, steps=3, device="cpu", log=logs.append, every=1)
    assert rows.shape[:3] == (report["val_frames"], 3, 3)
    assert report["steps"] == 3 and report["val_frames"] == int((~samples.train).sum()) > 0
    assert np.isfinite(list(report["final_losses"].values())).all()
    assert set(report["validation_after"]) == {"frames", "warp", "renderer"}
    path = save_renderer(tmp_path / "a.pt", TINY, net, model.au_names, "a", report)
    again, config, saved = load_renderer(path, model.au_names)
    x, au = torch.rand(1, 3 + MAP_CHANNELS, 32, 32), torch.rand(1, len(model.au_names))
    assert config == TINY and saved["steps"] == 3
    assert torch.equal(again(x, au), net(x, au))
    with pytest.raises(FacepipeError, match="another face rig"):
        load_renderer(path, model.au_names[:-1])
    with pytest.raises(FacepipeError, match="no such renderer"):
        load_renderer(tmp_path / "missing.pt", model.au_names)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16-scaled"])
def test_mixed_precision_training_steps_are_finite_and_learn(samples, model, dtype, monkeypatch, one_torch_thread):
    """``amp`` on the CPU: bf16 autocast (what a CPU and a recent GPU run); fp16 with its gradient
    scalers (what a GPU without bf16 runs) forced through the same CPU path."""
    monkeypatch.setattr(train_module, "amp_dtype", lambda device: dtype)
    config = replace(TINY, amp=True)
    net, report, _ = train_renderer(samples, config, closed_triangles(model.triangles), steps=3, device="cpu",
                                    log=lambda m: None)  # fmt: skip
    assert report["amp"] == str(dtype).removeprefix("torch.") and report["steps"] == 3
    assert np.isfinite(list(report["final_losses"].values())).all()
    x, au = torch.rand(2, 3 + MAP_CHANNELS, 32, 32), torch.rand(2, len(model.au_names))
    out = net(x, au)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert not torch.equal(out, x[:, :3].clamp(0, 1)), "an untrained renderer returns its warp: this one learnt"


def test_the_amp_default_and_checkpoints_from_before_it(model, tmp_path):
    assert RendererConfig.gpu().amp and not RendererConfig().amp
    assert train_module.amp_dtype("cpu") == torch.bfloat16
    net = build_generator(TINY, len(model.au_names))
    path = save_renderer(tmp_path / "old.pt", TINY, net, model.au_names, "old", {})
    data = torch.load(path, weights_only=True)
    del data["config"]["amp"]  # a checkpoint saved before the field
    torch.save(data, path)
    assert load_renderer(path, model.au_names)[1] == TINY


def test_the_refiner_changes_only_the_face_and_an_untrained_one_nothing(model, one_torch_thread):
    net = build_generator(TINY, len(model.au_names)).eval()
    refiner = NeuralRefiner(net, TINY, model.template, model.triangles)
    au = np.full(len(model.au_names), 0.5, np.float32)
    lm = face_landmarks(model, np.zeros_like(au))
    frame = torch.rand(3, 140, 160)
    same = frame.clone()
    refine_frames(refiner, [same], [lm], [au])
    assert torch.equal(same, frame), "an untrained renderer returns the warp: no change"
    torch.nn.init.normal_(net.head.weight, std=0.2)
    changed = frame.clone()
    refine_frames(refiner, [changed], [lm], [au])
    diff = (changed - frame).abs().amax(0) > 0
    assert diff.any()
    pad = crop_around(lm).side / TINY.size + 1  # the residual is upsampled from the crop's pixels
    x0, y0 = (lm[:, :2].amin(0) - pad).floor().long().tolist()
    x1, y1 = (lm[:, :2].amax(0) + pad).ceil().long().tolist()
    outside = torch.ones_like(diff)
    outside[y0:y1 + 1, x0:x1 + 1] = False
    assert not diff[outside].any(), "nothing changes beyond the mesh (and a crop pixel)"


def test_the_renderers_own_error_on_the_frame_is_not_pasted(model, one_torch_thread):
    """A renderer that changes the frame it is shown (here: a random head) changes it as much for
    the source as for an edit to the same AUs: nothing is pasted. Edited to other AUs, it is."""
    net = build_generator(TINY, len(model.au_names)).eval()
    torch.nn.init.normal_(net.head.weight, std=0.2)
    refiner = NeuralRefiner(net, TINY, model.template, model.triangles)
    au = np.full(len(model.au_names), 0.3, np.float32)
    lm = face_landmarks(model, au)
    frame = torch.rand(3, 140, 160)
    prepared = refiner.prepare(frame, lm[:, :2], lm[:, 2], torch.from_numpy(au))
    assert (refiner.render([prepared])[0] - prepared.inputs[:3]).abs().max() > 0.05, "the net does change the frame"
    kept = frame.clone()
    refine_frames(refiner, [kept], [lm], [au], source_au=au)
    assert (kept - frame).abs().max() < 1e-5
    edited = frame.clone()
    refine_frames(refiner, [edited], [lm], [au + 0.5], source_au=au)
    assert (edited - frame).abs().max() > 0.01


def test_batched_refinement_equals_frame_by_frame(model, one_torch_thread):
    """The render node refines a chunk's frames in batches: the same frames as one by one, up to
    float rounding (batches of 4 over 6 frames: a full and a partial batch)."""
    net = build_generator(TINY, len(model.au_names)).eval()
    torch.nn.init.normal_(net.head.weight, std=0.2)
    rng = np.random.default_rng(1)
    aus = [rng.uniform(0, 1, len(model.au_names)).astype(np.float32) for _ in range(6)]
    landmarks = [face_landmarks(model, au, centre=(70.0 + 4 * k, 66.0 + 2 * k), scale=50.0 + 3 * k) for k, au in enumerate(aus)]
    frames = [torch.rand(3, 140, 160, generator=torch.Generator().manual_seed(k)) for k in range(6)]
    refined = {}
    for batch in (1, 4):
        refiner = NeuralRefiner(net, TINY, model.template, model.triangles, batch=batch)
        refined[batch] = [f.clone() for f in frames]
        refine_frames(refiner, refined[batch], landmarks, aus)
    for one, batched, frame in zip(refined[1], refined[4], frames):
        assert not torch.equal(one, frame)
        assert (one - batched).abs().max() < 1e-5
    assert NeuralRefiner(net, TINY, model.template, model.triangles).batch == 4, "the CPU default"


def test_sheet_rows_become_one_image():
    rows = torch.rand(5, 3, 3, 8, 8)
    img = sheet_image(rows, n=4)
    assert img.shape == (32, 24, 3) and img.dtype == np.uint8


def test_which_renderer_an_edit_uses(tmp_path):
    ctx = SimpleNamespace(cache=SimpleNamespace(root=tmp_path / "work" / "abcdef0123456789xyz"),
                          media=SimpleNamespace(path="shot.mp4"), device="cpu")  # fmt: skip
    settings = SimpleNamespace(renderer="auto", actor="", actor_library=None, renderer_minutes=1.0, face="largest")
    assert resolve_renderer(ctx, settings, True) == ""
    settings.renderer = "neural"
    with pytest.raises(WeightsMissingError, match="train it first"):
        resolve_renderer(ctx, settings, False)
    own = renderer_path("shot-abcdef0123456789", None, tmp_path / "work")
    own.parent.mkdir(parents=True)
    own.write_bytes(b"x")
    settings.renderer = "auto"
    assert resolve_renderer(ctx, settings, False) == str(own)
    settings.renderer = "geometric"
    assert resolve_renderer(ctx, settings, False) == ""
    settings.actor, settings.actor_library = "jane", tmp_path
    settings.renderer = "auto"
    assert resolve_renderer(ctx, settings, False) == "", "another actor's renderer is not this shot's"
    with pytest.raises(FacepipeError, match="actor name"):
        renderer_path("../evil", None, tmp_path)


@pytest.fixture(scope="module")
def astro(tmp_path_factory, one_torch_thread):
    """The demo clip, its analysis in a work folder and a renderer trained on it (2 steps):
    (clip, work, the training report)."""
    tmp = tmp_path_factory.mktemp("astro")
    clip = make_demo_clip(tmp / "astro.mp4", seconds=0.6, size=192, audio=False)
    work = tmp / "work"
    return clip, work, api.train_renderer(clip, actor="astro", steps=2, size=32, width=8, workdir=work, **QUIET)


def test_train_on_a_clip_then_edit_with_the_renderer(astro, tmp_path, one_torch_thread):
    clip, work, report = astro
    ckpt = work / "renderers" / "astro.pt"
    assert report["checkpoint"] == str(ckpt) and ckpt.is_file() and ckpt.with_suffix(".sheet.png").is_file()
    with pytest.raises(FacepipeError, match="exists"):
        api.train_renderer(clip, actor="astro", steps=1, size=32, width=8, workdir=work, **QUIET)
    outs = {}
    for renderer in ("geometric", "auto"):
        outs[renderer] = api.edit(clip, emotion="surprised", out=tmp_path / f"{renderer}.mkv", codec="ffv1", appearance=0.0,
                                  renderer=renderer, actor="astro", workdir=work, **QUIET)  # fmt: skip
    assert outs["auto"].report["render"]["frames_refined"] == outs["auto"].frames_written
    assert outs["auto"].report["renderer"]["weights"] == str(ckpt)
    assert outs["geometric"].report["render"]["frames_refined"] == 0
    own = api.edit(clip, emotion="sad", out=tmp_path / "own.mkv", codec="ffv1", appearance=0.0, renderer="neural",
                   renderer_minutes=0.005, workdir=work, **QUIET)  # no renderer for the shot yet: trains one first
    weights = own.report["renderer"]["weights"]
    assert weights.startswith(str(work / "renderers" / "shot-")) and own.report["render"]["frames_refined"] > 0
    src = VideoReader(probe(clip)).read(range(probe(clip).frame_count)).numpy()
    a = VideoReader(probe(outs["auto"].output)).read(range(len(src))).numpy()
    assert not (np.abs(a - src).max(1) > 0)[:, :4, :].any(), "the frame's edge stays the plate's"


def test_the_refiner_leaves_the_lips_to_the_warp(model, one_torch_thread):
    net = build_generator(TINY, len(model.au_names)).eval()
    torch.nn.init.normal_(net.head.weight, std=0.2)
    au = np.zeros(len(model.au_names), np.float32)
    lm = face_landmarks(model, au)
    lips = lm[list(tp.LIP_OUTER_LOOP), :2].mean(0).round().long().tolist()  # (x, y) between the lips
    frame = torch.rand(3, 140, 160)
    for keep, changes in ((True, False), (False, True)):
        out = frame.clone()
        refine_frames(NeuralRefiner(net, TINY, model.template, model.triangles, keep_mouth=keep), [out], [lm], [au])
        assert bool((out[:, lips[1], lips[0]] != frame[:, lips[1], lips[0]]).any()) == changes


def test_the_render_node_refines_in_batches_and_only_the_face(astro, one_torch_thread):
    """The render node (two worker threads, as an edit on a CPU) gathers a chunk's warped faces
    and refines them in batches: the same faces and mattes as batches of one, every rendered
    frame recorded as refined, and nothing changed beyond the edited mesh's crop. A frame's face
    needs only the :data:`~facepipe.render.neural.temporal.WINDOW` frames before it (a farm chunk's
    context), and none before a cut."""
    from facepipe.io.reader import FrameChunk
    from facepipe.jobs.context import open_context
    from facepipe.jobs.edit import EditSettings, edit_stages
    from facepipe.pipeline.graph import Graph
    from facepipe.plan.request import parse_request

    clip, work, report = astro
    info = probe(clip)
    stages, _ = edit_stages(parse_request(emotions=["surprised"]), EditSettings(appearance_strength=0.0),
                            renderer_weights=report["checkpoint"])  # fmt: skip
    with open_context(info, work, "cpu", "off", 32, lambda m: None, threads=2) as ctx:
        graph = Graph(stages, ctx)
        node = graph.stage("render").open(ctx, {n: graph.get(n) for n in graph.stage("render").inputs}, 1.0)
        refiner = node.refiner
        torch.nn.init.normal_(refiner.generator.head.weight, std=0.2)  # a change large enough to see
        idx = np.arange(min(9, info.frame_count))
        frames = VideoReader(info).read(idx)

        def render(batch: int | None, with_refiner: bool = True, rows=slice(None)) -> list:
            node.refiner, node.last_edited, node.changes = (refiner if with_refiner else None), None, []
            refiner.batch = batch
            out = node(FrameChunk(idx[rows], np.zeros(len(idx[rows]), np.int64), frames[rows].clone()))
            return [None if f is None else f.result() for f in out.faces]

        one, batched = render(1), render(4)
        refined = node.stats.to_dict(idx)["frames_refined"]
        tail = render(1, rows=slice(-(WINDOW + 1), None))  # a chunk with just the context the last frame needs
        alone = render(1, rows=slice(-1, None))
        node.shot_cuts = idx[-1:]  # a cut just before the last frame
        cut = render(1)
        node.shot_cuts = np.zeros(0, np.int64)
        geometric = render(4, with_refiner=False)
    assert (tail[-1].face - one[-1].face).abs().max() < 1e-6, "a frame depends on the WINDOW frames before it only"
    assert (alone[-1].face - one[-1].face).abs().max() > 1e-4, "the frames before it do count"
    assert (cut[-1].face - alone[-1].face).abs().max() < 1e-6, "but not across a cut"
    rendered = [k for k, f in enumerate(batched) if f is not None]
    assert len(rendered) > 4 and refined == len(rendered), "a full and a partial batch, each frame recorded"
    meshes = node.geometry.meshes(idx, 1.0)
    for k in rendered:
        assert (one[k].face - batched[k].face).abs().max() < 1e-5
        assert torch.equal(one[k].matte, batched[k].matte)
        # both clamped: the paste clamps its square to 0..1, and the warp's bicubic detail may overshoot a little
        diff = (batched[k].face.clamp(0, 1) - geometric[k].face.clamp(0, 1)).abs().amax(0) > 1e-6
        assert diff.any(), "the renderer changed the face"
        dst = torch.from_numpy(meshes.dst[k])
        pad = crop_around(dst).side / refiner.config.size + 1  # the change is upsampled from the crop's pixels
        (x0, y0), (x1, y1) = (dst.amin(0) - pad).floor().long().tolist(), (dst.amax(0) + pad).ceil().long().tolist()
        outside = torch.ones_like(diff)
        outside[max(0, y0):y1 + 1, max(0, x0):x1 + 1] = False
        assert not diff[outside].any(), "nothing changes beyond the edited mesh (and a crop pixel)"
