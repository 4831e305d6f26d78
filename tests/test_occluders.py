"""Glasses rims held out of the warp (render.occluders)."""

from __future__ import annotations

import pytest
import torch

from facepipe.composite.matte import polygon_mask
from facepipe.face import topology as topo
from facepipe.render import occluders
from facepipe.render.occluders import EyeAxes, bridge_evidence, erase_rims, hold_rims, paint_over_rims, shot_has_rims
from facepipe.render.rim_template import build_rim_template
from facepipe.render.warp import EYE_L, EYE_R, apply_warp, warp_field
from synthetic_faces import face_mesh

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = (400, 400)
SKIN, WHITE, BROW, RIM = (0.80, 0.60, 0.50), (0.92, 0.90, 0.88), (0.25, 0.18, 0.12), (0.15, 0.15, 0.18)


@pytest.fixture(scope="module")
def rig():
    from facepipe.face.model import load_model

    return load_model()


def bare_face(src: torch.Tensor) -> torch.Tensor:
    """(3,H,W) skin with a little seeded texture, white eye openings and dark brows under src (468,2)."""
    g = torch.Generator().manual_seed(0)
    img = torch.tensor(SKIN)[:, None, None] + 0.02 * torch.randn(1, *SIZE, generator=g)
    for eye in (EYE_R, EYE_L):
        img = torch.where(polygon_mask(src[list(eye.loop)], SIZE) > 0.5, torch.tensor(WHITE)[:, None, None], img)
    for upper, lower in ((topo.BROW_UPPER_R, occluders.BROW_LOWER_R), (topo.BROW_UPPER_L, occluders.BROW_LOWER_L)):
        brow = polygon_mask(src[list(upper) + list(lower)[::-1]], SIZE) > 0.5
        img = torch.where(brow, torch.tensor(BROW)[:, None, None], img)
    return img.clamp(0, 1)


def rims(src: torch.Tensor, half: float = 1.0) -> torch.Tensor:
    """(H,W) bool: glasses under src (468,2): an elliptical rim (``2 half`` px thick) around each
    eye, between its brow and the cheek, and a bar across the nose bridge."""
    axes = EyeAxes(src)
    ys, xs = torch.meshgrid(torch.arange(SIZE[0]).float(), torch.arange(SIZE[1]).float(), indexing="ij")
    pts = torch.stack([xs, ys], -1)
    out = torch.zeros(SIZE, dtype=torch.bool)
    a, b = 0.85 * axes.width, 0.7 * axes.width
    for c in axes.centres:
        rel = pts - (c + 0.05 * axes.width * axes.v)  # lenses sit a little below the eyes' centres
        r = (((rel @ axes.u) / a) ** 2 + ((rel @ axes.v) / b) ** 2).sqrt()
        out |= (r - 1).abs() * min(a, b) < half
    inner = axes.centres.mean(0) - 0.15 * axes.width * axes.v
    along, across = (pts - inner) @ axes.u, (pts - inner) @ axes.v
    gap = float((axes.centres[1] - axes.centres[0]).norm()) / 2 - a  # from lens to lens
    out |= (along.abs() < gap + 1) & (across.abs() < half)
    return out


def glasses_face(src: torch.Tensor, shift: tuple[float, float] = (0.0, 0.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """(3,H,W) :func:`bare_face` wearing :func:`rims` (anti-aliased), moved ``shift`` (x, y) px
    off their place on the face, and the rims' core (H,W) bool."""
    at = src + torch.tensor(shift)
    soft = sum(rims(at, h).float() for h in (0.5, 1.0, 1.5)) / 3  # a 1-3 px line, graded at its edges
    img = torch.lerp(bare_face(src), torch.tensor(RIM)[:, None, None], soft[None])
    return img, rims(at, 0.5)


def lay_rims(face, frame, rims, field) -> bool:
    """The render stage's two rim layers (no appearance transfer between them); whether rims were held."""
    held = paint_over_rims(face, frame, rims, field)
    if held is not None:
        hold_rims(face, frame, held, field.box)
    return held is not None


def brow_raise(rig):
    src, _, tris = face_mesh(rig, {})
    dst, depth, _ = face_mesh(rig, {"AU1": 1.0, "AU2": 1.0})
    return src, dst, depth, tris


def held_rims(rig, frame, src, depth, tris, field) -> torch.Tensor:
    """(1,h,w) the rims of ``frame`` over ``field``'s box, through a template made of it alone."""
    template = build_rim_template([frame], [src], torch.tensor(rig.template), tris)
    return template.render(src, depth, field.box)


def test_raised_brows_leave_the_rims_where_the_source_shows_them(rig):
    src, dst, depth, tris = brow_raise(rig)
    frame, core = glasses_face(src)
    field = warp_field(src, dst, tris, SIZE, depth)
    warped = apply_warp(frame[None], field)[0]
    held = warped.clone()
    assert lay_rims(held, frame, held_rims(rig, frame, src, depth, tris, field), field)
    moved = field.full(SIZE).abs().amax(0) > 0.5
    on_rim = core & moved
    assert int(on_rim.sum()) > 100, "the edit must move the rims"
    err_warp = (warped - frame).abs().amax(0)[on_rim].mean()
    err_held = (held - frame).abs().amax(0)[on_rim].mean()
    assert err_warp > 0.1 and err_held < 0.01, (float(err_warp), float(err_held))
    # the warp's copy of the rim, carried up with the skin, is painted over: no rim-coloured
    # (dark and bluish, unlike the brows) pixels are left away from the source's rim
    def rim_coloured(img):
        return (img.mean(0) < 0.4) & (img[2] > img[0]) & ~rims(src, 2.5) & moved

    assert int(rim_coloured(warped).sum()) > 100
    ghost = rim_coloured(held)
    assert int(ghost.sum()) < 0.05 * int(on_rim.sum()), int(ghost.sum())
    # the brows change as much as the warp alone changed them (the hold-out leaves them out)
    brow = polygon_mask(src[list(topo.BROW_UPPER_R) + list(occluders.BROW_LOWER_R)[::-1]], SIZE)[0] > 0.5
    change_warp, change_held = ((img - frame).abs().amax(0)[brow].mean() for img in (warped, held))
    assert change_held > 0.95 * change_warp, (float(change_held), float(change_warp))


def test_a_face_without_glasses_is_left_bit_for_bit(rig):
    src, dst, depth, tris = brow_raise(rig)
    frame = bare_face(src)
    assert bridge_evidence(frame, src) < occluders.FRAME_BRIDGE
    assert not shot_has_rims([bridge_evidence(frame, src)] * 4)
    field = warp_field(src, dst, tris, SIZE, depth)
    warped = apply_warp(frame[None], field)[0]
    held = warped.clone()
    assert not lay_rims(held, frame, torch.zeros(1, *field.flow.shape[1:]), field)
    assert torch.equal(held, warped)


def test_nothing_outside_the_warped_pixels_is_touched(rig):
    src, dst, depth, tris = brow_raise(rig)
    frame, _ = glasses_face(src)
    assert bridge_evidence(frame, src) >= occluders.SHOT_BRIDGE
    field = warp_field(src, dst, tris, SIZE, depth)
    warped = apply_warp(frame[None], field)[0]
    held = warped.clone()
    assert lay_rims(held, frame, held_rims(rig, frame, src, depth, tris, field), field)
    still = field.full(SIZE).eq(0).all(0)  # outside the box, and inside it where the flow is 0
    x0, y0, x1, y1 = field.box
    assert bool(still[:y0].all()) and bool(still[:, x1:].all())
    assert torch.equal(held[:, still], warped[:, still])
    # no edit, no change
    identity = warp_field(src, src, tris, SIZE, depth)
    assert not lay_rims(warped.clone(), frame, torch.ones(1, *SIZE), identity)


def test_shot_decision_needs_several_frames_with_a_bridge():
    strong, weak = occluders.SHOT_BRIDGE, 0.0
    assert shot_has_rims([strong, weak, weak, weak])  # a quarter: glasses put on late in the shot
    assert not shot_has_rims([strong] + [weak] * 7)
    assert not shot_has_rims([])


@pytest.mark.parametrize("shift", [(0.0, 0.0), (6.0, 2.0)])
def test_donor_frames_lose_their_rims_wherever_they_sit_on_the_face(rig, shift):
    # the appearance transfer carries a donor frame's skin onto other frames through the mesh; the
    # rims stand off the face and slide over it as the head turns, so they are found in the donor
    # itself (a template's place is off by the slide) and filled, or they came out as a ghost rim
    src, _, _ = face_mesh(rig, {})
    frame, core = glasses_face(src, shift)
    bare = bare_face(src)
    (erased,) = erase_rims([frame], [src])
    before, after = ((img - bare).abs().amax(0)[core].mean() for img in (frame, erased))
    assert before > 0.4 and after < 0.08, (float(before), float(after))
    away = ~rims(src + torch.tensor(shift), 8.0)  # the mask's grown, feathered edge
    assert float((erased - frame).abs().amax(0)[away].max()) < 0.02  # the skin, eyes and brows stay
    # a bare face's frames are handed back untouched
    (kept,) = erase_rims([bare], [src])
    assert kept is bare
