"""A shot's glasses rims as one template in mesh coordinates (render.rim_template)."""

from __future__ import annotations

import math

import pytest
import torch

from facepipe.render.occluders import rim_alpha, zone_box
from test_occluders import glasses_face, rims
from synthetic_faces import face_mesh

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def rig():
    from facepipe.face.model import load_model

    return load_model()


def moved(src: torch.Tensor, shift: tuple[float, float], turn: float) -> torch.Tensor:
    """(468,2) src turned by ``turn`` radians about its centre and shifted (px): a head moving in the frame."""
    c, s = math.cos(turn), math.sin(turn)
    centre = src.mean(0)
    return (src - centre) @ torch.tensor([[c, s], [-s, c]]) + centre + torch.tensor(shift)


def test_the_template_follows_the_head_into_a_frame_it_was_not_made_of(rig):
    from facepipe.render.rim_template import build_rim_template

    base, depth, tris = face_mesh(rig, {})
    poses = [((-6.3, 2.4), 0.03), ((4.6, -3.2), -0.04), ((0.4, 5.1), 0.0)]
    srcs = [moved(base, *p) for p in poses]
    template = build_rim_template([glasses_face(s)[0] for s in srcs], srcs, torch.tensor(rig.template), tris)
    src = moved(base, (2.5, 1.5), 0.02)  # a pose between them
    box = zone_box(src, (400, 400))
    x0, y0, x1, y1 = box
    alpha = template.render(src, depth, box)[0] > 0.5
    core = rims(src, 0.5)[y0:y1, x0:x1]
    assert float((alpha & core).sum()) > 0.95 * float(core.sum()), "the template misses the rims"
    # where the frame's own detection would put them, give or take a pixel at the edge
    found = rim_alpha(glasses_face(src)[0], src, box)[0] > 0.5
    assert float((alpha & found).sum()) > 0.85 * float((alpha | found).sum())
