"""The eye interior the edit uncovers: the iris stays a disc (render.eye_interior)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facepipe.composite.matte import polygon_mask
from facepipe.face import topology as topo
from facepipe.render.eye_interior import EYE_L, EYE_R, IRIS_ROWS, draw_eyes, fit_iris, shot_iris_sizes, tracked_iris_sizes
from facepipe.render.warp import apply_warp, region_backward, warp_field
from synthetic_faces import face_mesh

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = (400, 400)
SKIN, WHITE, IRIS = (0.80, 0.60, 0.50), (0.92, 0.90, 0.88), (0.30, 0.18, 0.10)


@pytest.fixture(scope="module")
def rig():
    from facepipe.face.model import load_model

    return load_model()


def eye_picture(src: torch.Tensor):
    """(3,H,W) skin, the right eye's opening white with an iris disc whose top the upper lid hides;
    the iris centre (2,) and radius."""
    loop = src[list(EYE_R.loop)]
    corners = src[list(EYE_R.anchor)]
    width = float((corners[0] - corners[1]).norm())
    radius = 0.21 * width
    centre = torch.stack([loop[:, 0].mean(), loop[:, 1].max() - radius - 2.0])  # resting on the lower lid
    img = torch.tensor(SKIN)[:, None, None].expand(3, *SIZE).clone()
    opening = polygon_mask(loop, SIZE)[0] > 0.5
    ys, xs = torch.meshgrid(torch.arange(SIZE[0]).float(), torch.arange(SIZE[1]).float(), indexing="ij")
    r = ((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2).sqrt()
    theta = torch.atan2(ys - centre[1], xs - centre[0])
    iris = torch.tensor(IRIS)[:, None, None] * (1.0 + 0.25 * torch.sin(12 * theta))  # radial fibres
    img = torch.where(opening, torch.tensor(WHITE)[:, None, None], img)
    img = torch.where(opening & (r < radius), iris, img)
    assert bool((opening & (r < radius)).any()) and not bool((opening & (r < radius) & (ys < centre[1] - radius + 2)).any()), \
        "the lid must hide the top of the disc"
    return img, centre, radius


def iris_outside_disc(img: torch.Tensor, opening: torch.Tensor, centre: torch.Tensor, radius: float) -> int:
    """How many dark (iris) pixels of img (3,H,W) inside the opening (H,W) bool lie more than a
    pixel outside the disc."""
    ys, xs = torch.meshgrid(torch.arange(SIZE[0]).float(), torch.arange(SIZE[1]).float(), indexing="ij")
    outside = ((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2).sqrt() > radius + 1.0
    return int((opening & outside & (img.mean(0) < 0.4)).sum())


def test_fit_iris_finds_a_disc_the_lids_cut():
    ys, xs = torch.meshgrid(torch.arange(30).float(), torch.arange(80).float(), indexing="ij")
    pts = torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)
    centre, radius = torch.tensor([43.0, 10.0]), 12.0  # both lids (rows 0 and 29) cut the disc
    dark = (pts - centre).norm(dim=1) < radius
    colours = torch.where(dark[:, None], torch.tensor(IRIS), torch.tensor(WHITE))
    iris = fit_iris(pts, colours, eye_width=60.0)
    assert iris is not None
    assert float((iris.centre - centre).norm()) < 1.5
    assert abs(iris.radius - radius) < 1.5
    # no contrast, no iris
    assert fit_iris(pts, torch.full_like(colours, 0.5), eye_width=60.0) is None


def test_a_raised_lid_keeps_the_iris_a_disc(rig):
    src, _, tris = face_mesh(rig, {})
    dst, depth, _ = face_mesh(rig, {"AU5": 3.0})
    frame, centre, radius = eye_picture(src)
    field = warp_field(src, dst, tris, SIZE, depth)
    assert field.fill["eye_r"] > 0, "the edit must open the eye beyond the source"
    warped = apply_warp(frame[None], field)[0]
    drawn = warped.clone()
    assert draw_eyes(drawn, frame, src, dst, field) >= 1
    ld = dst[list(EYE_R.loop)]
    opening = polygon_mask(ld, SIZE)[0] > 0.5
    # the disc moves with the eye's corners (AU5 moves them a little): where it lands
    moved = centre.clone()
    for _ in range(3):
        moved = moved + centre - region_backward(src, dst, EYE_R, moved[None])[0]
    # the warp stretches the iris the lid hid beyond the disc; drawn, it stays inside it
    stretched, kept = (iris_outside_disc(im, opening, moved, radius) for im in (warped, drawn))
    assert stretched > 20 and kept < 0.25 * stretched
    # nothing outside the edited opening changed
    assert not bool(((drawn != warped).any(0) & ~opening).any())


def test_eyes_that_do_not_open_are_not_touched(rig):
    src, _, tris = face_mesh(rig, {})
    dst, depth, _ = face_mesh(rig, {"AU12R": 1.0, "AU12L": 1.0})  # a smile: the eyes do not open
    frame, _, _ = eye_picture(src)
    field = warp_field(src, dst, tris, SIZE, depth)
    warped = apply_warp(frame[None], field)[0]
    drawn = warped.clone()
    assert draw_eyes(drawn, frame, src, dst, field) == 0
    assert torch.equal(drawn, warped)
    assert draw_eyes(drawn, frame, src[: topo.N_VERTICES - 1], dst[: topo.N_VERTICES - 1], field) == 0


def test_the_shot_iris_size_is_the_drawn_disc(rig):
    src, _, tris = face_mesh(rig, {})
    frame, _, radius = eye_picture(src)
    corners = src[list(EYE_R.anchor)]
    width = float((corners[0] - corners[1]).norm())
    sizes = shot_iris_sizes([frame, frame.clone()], [src, src])
    assert abs(sizes["eye_r"] - radius / width) < 0.01
    assert "eye_l" not in sizes  # the picture's left eye is bare skin: no iris to fit


def tracked_irises(centres: dict[str, torch.Tensor], radius: float) -> torch.Tensor:
    """(10,2) tracked iris points (centre, then 4 on the edge) per eye, in IRIS_ROWS order."""
    out = torch.full((10, 2), float("nan"))
    edge = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]) * radius
    for name, c in centres.items():
        out[IRIS_ROWS[name]] = torch.cat([c[None], c + edge])
    return out


def test_the_disc_is_drawn_at_the_tracked_iris_centre(rig):
    """With tracked irises the disc sits where the tracker puts it, whatever the pixels suggest."""
    src, _, tris = face_mesh(rig, {})
    dst, depth, _ = face_mesh(rig, {"AU5": 3.0})
    frame, centre, radius = eye_picture(src)
    field = warp_field(src, dst, tris, SIZE, depth)
    warped = apply_warp(frame[None], field)[0]
    width = float((src[EYE_R.anchor[0]] - src[EYE_R.anchor[1]]).norm())
    sizes = {"eye_r": radius / width, "eye_l": radius / width}
    ld = dst[list(EYE_R.loop)]
    opening = polygon_mask(ld, SIZE)[0] > 0.5
    dark = {}
    for dx in (0.0, 4.0):  # the true centre, then one 4 px to the right of it
        given = centre + torch.tensor([dx, 0.0])
        drawn = warped.clone()
        irises = tracked_irises({"eye_r": given, "eye_l": src[list(EYE_L.loop)].mean(0)}, radius)
        assert draw_eyes(drawn, frame, src, dst, field, sizes, irises) >= 1
        changed = (drawn != warped).any(0) & opening
        ys, xs = changed.nonzero(as_tuple=True)
        dark[dx] = float(xs.float().mean())
    # the drawn region follows the given centre: about 4 px further right
    assert 2.5 < dark[4.0] - dark[0.0] < 5.5
    # untracked (NaN) irises fall back to the disc fitted on the pixels
    drawn = warped.clone()
    assert draw_eyes(drawn, frame, src, dst, field, sizes, torch.full((10, 2), float("nan"))) >= 1


def test_the_tracked_iris_size_is_the_median_radius_over_eye_width():
    T = 5
    lm = np.zeros((T, 478, 3), np.float32)
    for eye, rows in ((EYE_R, topo.IRIS_R), (EYE_L, topo.IRIS_L)):
        lm[:, eye.anchor[0], 0], lm[:, eye.anchor[1], 0] = 0.0, 40.0  # 40 px wide eyes
        radii = np.array([8.0, 8.0, 8.4, 8.0, 30.0])  # one outlier frame
        lm[:, rows[0], :2] = 20.0
        for k, (dx, dy) in enumerate(((1, 0), (0, 1), (-1, 0), (0, -1))):
            lm[:, rows[1 + k], 0] = 20.0 + dx * radii
            lm[:, rows[1 + k], 1] = 20.0 + dy * radii
    lm[2] = np.nan  # no face in one frame
    sizes = tracked_iris_sizes(lm)
    assert sizes["eye_r"] == pytest.approx(8.0 / 40.0) and sizes["eye_l"] == pytest.approx(8.0 / 40.0)
    assert tracked_iris_sizes(lm[:, :468]) == {}  # a track without iris points
