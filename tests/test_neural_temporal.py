"""The neural renderer's change held steady along the face mesh (render.neural.temporal)."""

from __future__ import annotations

import pytest
import torch

from facepipe.face.model import load_model
from facepipe.render.barycentric import interpolate, rasterize_barycentric
from facepipe.render.neural.conditioning import closed_triangles, crop_around, to_crop
from facepipe.render.neural.temporal import WINDOW, FrameChange, steady_change
from synthetic_faces import face_mesh

S = 64


@pytest.fixture(scope="module")
def face():
    """(vertices (N,2) crop px of a frontal rig face in its S px crop, as the refiner crops it;
    depth (N,) crop px; closed triangles)."""
    model = load_model()
    xy, depth, _ = face_mesh(model, {})
    crop = crop_around(xy)
    return to_crop(xy.float(), crop, S), depth.float() * S / crop.side, closed_triangles(model.triangles)


def test_a_change_that_moves_with_the_face_is_kept(face):
    """A change fixed to the face, seen on a mesh shifted by (3, -2) px a frame earlier, is
    carried back onto the face: the mean is the frame's own change."""
    v, depth, tris = face
    colour = torch.stack([v[:, 0] / S, v[:, 1] / S, torch.sin(v[:, 0] / 6)], 1) - 0.5  # smooth over the face
    earlier_v = v + torch.tensor([3.0, -2.0])
    now, before = (rasterize_barycentric(m, tris, (S, S), depth) for m in (v, earlier_v))
    change_now, change_before = interpolate(colour, tris, now), interpolate(colour, tris, before)
    steady = steady_change(change_now, now, tris, [FrameChange(0, earlier_v, change_before)])
    inside = torch.nn.functional.max_pool2d((~now.mask)[None, None].float(), 5, 1, 2)[0, 0] == 0
    assert inside.sum() > 500
    assert (steady - change_now)[:, inside].abs().max() < 0.03
    unaligned = (change_now + change_before) / 2  # what a mean in crop pixels would give
    assert (unaligned - change_now)[:, inside].abs().max() > 0.1


def test_frame_to_frame_noise_is_averaged_where_the_mesh_covers(face):
    v, depth, tris = face
    raster = rasterize_barycentric(v, tris, (S, S), depth)
    g = torch.Generator().manual_seed(0)
    changes = [torch.randn(3, S, S, generator=g) for _ in range(5)]
    steady = steady_change(changes[-1], raster, tris, [FrameChange(k, v, c) for k, c in enumerate(changes[:-1])])
    m = raster.mask
    assert torch.allclose(steady[:, m], torch.stack(changes).mean(0)[:, m], atol=1e-4)
    assert torch.equal(steady[:, ~m], changes[-1][:, ~m]), "beyond the mesh a frame keeps its own change"
    assert float(steady[:, m].var()) < 0.3 * float(changes[-1][:, m].var())
    assert torch.equal(steady_change(changes[-1], raster, tris, []), changes[-1])


def test_an_edit_with_a_renderer_starts_its_chunks_the_window_earlier():
    """A farm chunk's first frames need the WINDOW frames before them refined too."""
    from types import SimpleNamespace

    from facepipe.jobs.edit import EditSettings, context_frames, edit_stages
    from facepipe.plan.request import parse_request

    def context(weights: str) -> int:
        stages, _ = edit_stages(parse_request(emotions=["sad"]), EditSettings(), renderer_weights=weights)
        return context_frames(SimpleNamespace(stage={s.name: s for s in stages}.__getitem__))

    assert context("renderer.pt") == context("") + WINDOW
