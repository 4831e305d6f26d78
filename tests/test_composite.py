"""Compositing: mesh mattes, region masks, matte stabilisation, blend, colour/grain match, re-blur."""

from __future__ import annotations

import math

import pytest
import torch

from facepipe.composite.blend import composite, laplacian_blend, match_color, match_grain
from facepipe.composite.matte import (
    MatteStabilizer,
    face_matte,
    polygon_mask,
    rasterize_triangles,
    region_masks,
)
from facepipe.composite.reblur import face_velocity, motion_kernels, reblur
from facepipe.face.extent import bbox_scale

H, W = 96, 128


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def disc_mesh(cx=64.0, cy=48.0, r=30.0, n=24):
    """A fan of triangles approximating a disc: vertex 0 the centre, 1..n the rim."""
    a = torch.arange(n) * 2 * math.pi / n
    rim = torch.stack([cx + r * torch.cos(a), cy + r * torch.sin(a)], 1)
    verts = torch.cat([torch.tensor([[cx, cy]]), rim])
    tris = torch.stack([torch.zeros(n, dtype=torch.long), torch.arange(1, n + 1), torch.arange(1, n + 1) % n + 1], 1)
    return verts, tris


def smooth_plate(n=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    base = torch.stack([0.2 + 0.5 * x, 0.3 + 0.4 * y, 0.5 - 0.2 * x * y])
    return (base[None] + 0.01 * torch.randn(n, 3, H, W, generator=g)).clamp(0, 1)


# ------------------------------------------------------------------ mattes


def test_rasterize_covers_triangles_and_nothing_else():
    v, t = disc_mesh()
    cover = rasterize_triangles(v, t, (H, W))
    assert cover.shape == (1, H, W) and set(cover.unique().tolist()) <= {0.0, 1.0}
    # every pixel centre well inside the polygon is covered, nothing outside the circle is
    yy, xx = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    d = ((xx - 64) ** 2 + (yy - 48) ** 2).sqrt()
    assert bool((cover[0][d < 28.5] == 1).all()) and bool((cover[0][d > 30.01] == 0).all())
    area = 0.5 * 24 * 30 * 30 * math.sin(2 * math.pi / 24)
    assert abs(float(cover.sum()) - area) < 0.05 * area
    # winding does not matter; the fan equals the filled rim polygon up to edge pixels
    assert torch.equal(rasterize_triangles(v, t.flip(1), (H, W)), cover)
    poly = polygon_mask(v[1:], (H, W))
    assert float((poly != cover).sum()) < 0.05 * area


def test_rasterize_clips_to_the_image():
    v = torch.tensor([[-50.0, -50.0], [200.0, -50.0], [-50.0, 200.0]])  # hypotenuse x + y = 150
    cover = rasterize_triangles(v, torch.tensor([[0, 1, 2]]), (H, W))
    assert cover[0, 0, 0] == 1 and cover[0, H - 1, 0] == 1 and cover[0, H - 1, W - 1] == 0


def test_face_matte_is_soft_inside_and_zero_outside():
    v, t = disc_mesh()
    m = face_matte(v, t, (H, W), erode=0.05, feather=0.15)
    cover = rasterize_triangles(v, t, (H, W))
    assert m.shape == (1, H, W) and float(m.min()) >= 0 and float(m.max()) <= 1
    assert bool((m[cover == 0] == 0).all())
    assert m[0, 48, 64] == 1.0
    s = bbox_scale(v)  # 60 px: erode 3 px, feather 9 px
    row = m[0, 48]
    assert row[64 + 30 - 2] == 0  # within the erosion band
    assert 0 < row[64 + 30 - 8] < 1  # in the feather
    assert row[64 + 30 - int(0.22 * s) - 2] > 0.95
    big = face_matte(v * 4, t, (4 * H, 4 * W), erode=0.05, feather=0.15)  # computed at reduced resolution
    assert bool((big[rasterize_triangles(v * 4, t, (4 * H, 4 * W)) == 0] == 0).all())
    small = torch.nn.functional.avg_pool2d(big[None], 4)[0]
    assert float((small - m).abs().mean()) < 0.02


def test_region_masks_from_vertex_loops():
    v, _ = disc_mesh()
    rim = list(range(1, 25))
    masks = region_masks(v, {"mouth": rim[6:18], "eyes": [rim[0:6], rim[18:24]]}, (H, W))
    assert set(masks) == {"mouth", "eyes"}
    assert masks["mouth"].shape == (1, H, W) and masks["mouth"].sum() > 50
    assert masks["mouth"][0, 5, 5] == 0
    grown = region_masks(v, {"mouth": rim[6:18]}, (H, W), grow_px=2, feather_px=1.0)["mouth"]
    assert grown.sum() > masks["mouth"].sum()


def test_matte_stabilizer_follows_motion_and_stays_inside():
    v, t = disc_mesh(r=20)
    shifts = [0.0, 0.0, 3.0, 6.0, 6.0]
    mattes = torch.stack([face_matte(v + torch.tensor([s, 0.0]), t, (H, W)) for s in shifts])
    centers = torch.tensor([[64 + s, 48.0] for s in shifts])
    out = MatteStabilizer(0.6, window=3)(mattes, centers)
    assert torch.equal(out[0], mattes[0]) and torch.allclose(out[1], mattes[1])
    assert bool((out[mattes == 0] == 0).all())  # never outside the current frame's matte
    assert float((out[3] - mattes[3]).abs().max()) < 0.2  # motion-compensated: little lag
    st = MatteStabilizer(0.6, window=3)
    chunked = torch.cat([st(mattes[:2], centers[:2]), st(mattes[2:], centers[2:])])
    assert torch.equal(chunked, out)
    # finite memory: a run that starts window - 1 frames early gives the same last frames
    late = MatteStabilizer(0.6, window=3)(mattes[2:], centers[2:])
    assert torch.equal(late[2:], out[4:])


# ------------------------------------------------------------------ blend


@pytest.fixture(scope="module")
def scene():
    v, t = disc_mesh(r=36)
    matte = face_matte(v, t, (H, W), erode=0.03, feather=0.15)[None].repeat(2, 1, 1, 1)
    plate = smooth_plate(2)
    layer = (plate * 0.9 + torch.tensor([0.12, -0.05, 0.08]).view(1, 3, 1, 1)).clamp(0, 1)
    layer[:, :, :5] = 7.0  # garbage far outside the matte must not leak
    return plate, layer, matte


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_blend_outside_is_bit_identical(scene, dtype):
    plate, layer, matte = scene
    plate = plate.to(dtype)
    for out in (laplacian_blend(layer, plate, matte), composite(layer, plate, matte, seed=3)):
        assert out.dtype == dtype
        outside = (matte == 0).expand_as(plate)
        assert torch.equal(out[outside], plate[outside])


def test_blend_inside_is_the_layer_and_has_no_seam(scene):
    plate, layer, matte = scene
    out = laplacian_blend(layer, plate, matte)
    c = (slice(None), slice(None), slice(45, 52), slice(61, 68))  # deep inside: every level's matte is 1
    assert float((out[c] - layer[c]).abs().max()) < 1e-5
    hard = torch.where(matte > 0.5, layer, plate)

    def max_step(x):
        d = x - plate  # the plate's own gradients are not the seam
        return max(float(d.diff(dim=-1).abs().max()), float(d.diff(dim=-2).abs().max()))

    assert max_step(hard) > 0.1  # a hard paste has a visible edge ...
    assert max_step(out) < 0.35 * max_step(hard)  # ... the blend spreads it out


def test_blend_shows_a_feature_moved_near_the_matte_edge_in_full():
    # a dark bar (a brow) raised by 6 px just inside the matte's opaque edge, where the coarse
    # pyramid levels do not reach: the output must show it where the layer has it, in full
    Hs, Ws = 192, 256
    verts, tris = disc_mesh(cx=128.0, cy=96.0, r=80.0, n=48)
    matte = face_matte(verts, tris, (Hs, Ws))[None]
    top = int((matte[0, 0, :, 128] >= 1).nonzero()[0])  # first opaque row above the centre
    plate = torch.full((1, 3, Hs, Ws), 0.7)
    layer = plate.clone()
    cols = slice(108, 148)
    plate[..., top + 12 : top + 18, cols] = 0.2
    layer[..., top + 6 : top + 12, cols] = 0.2
    out = laplacian_blend(layer, plate, matte)
    new, old = out[..., top + 7 : top + 11, cols], out[..., top + 13 : top + 17, cols]
    assert float((new - 0.2).abs().max()) < 0.02  # the raised bar is as dark as in the layer
    assert float((old - 0.7).abs().max()) < 0.02  # and no ghost is left where it was


def test_color_match_moves_layer_toward_plate(scene):
    plate, layer, matte = scene
    inside = matte > 0
    fixed = match_color(layer, plate, matte)

    def mean_err(x):  # per image and channel, mean over the matte's support
        return float(((x - plate) * inside).sum((2, 3)).div(inside.sum((2, 3))).abs().mean())

    assert mean_err(fixed) < 0.25 * mean_err(layer)


def test_grain_match_adds_seeded_noise_inside_only(scene):
    plate, _, matte = scene
    g = torch.Generator().manual_seed(5)
    noisy_plate = plate + 0.03 * torch.randn(plate.shape, generator=g)
    clean = plate.clone()
    a = match_grain(clean, noisy_plate, matte, seed=7, frame_indices=[10, 11])
    b = match_grain(clean, noisy_plate, matte, seed=7, frame_indices=[10, 11])
    c = match_grain(clean[1:], noisy_plate[1:], matte[1:], seed=7, frame_indices=[11])
    assert torch.equal(a, b) and torch.equal(a[1:], c)
    added = (a - clean)[(matte >= 1).expand_as(a)]
    assert 0.02 < float(added.std()) < 0.04
    assert bool(((a - clean)[(matte == 0).expand_as(a)] == 0).all())


# ------------------------------------------------------------------ re-blur


def stripes(vertical: bool):
    y, x = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    s = 0.5 + 0.5 * torch.sin(2 * math.pi * (x if vertical else y) / 6)
    return s.expand(1, 3, H, W).clone()


def test_reblur_zero_velocity_is_identity():
    v, t = disc_mesh()
    matte = face_matte(v, t, (H, W))[None]
    img = torch.rand(1, 3, H, W)
    assert torch.equal(reblur(img, matte, torch.zeros(1, 2)), img)
    assert torch.equal(reblur(img, matte, torch.tensor([[0.02, 0.0]])), img)


def test_reblur_blurs_along_the_velocity_only():
    v, t = disc_mesh()
    matte = face_matte(v, t, (H, W))[None]
    vel = torch.tensor([[8.0, 0.0]])  # 4 px smear at 180 degrees
    inside = (matte > 0).expand(1, 3, H, W)
    across = stripes(vertical=True)  # varies along x: must be smoothed
    out = reblur(across, matte, vel)
    assert float(out[inside].std()) < 0.5 * float(across[inside].std())
    assert torch.equal(out[~inside], across[~inside])
    along = stripes(vertical=False)  # varies along y only: a horizontal blur leaves it alone
    out = reblur(along, matte, vel)
    assert float((out - along).abs().max()) < 1e-5
    k = motion_kernels(torch.tensor([[4.0, 0.0], [0.0, 3.0]]))
    assert torch.allclose(k.sum((1, 2, 3)), torch.ones(2))
    c = k.shape[-1] // 2
    assert float(k[0, 0].sum(1)[c]) == pytest.approx(1.0) and float(k[1, 0].sum(0)[c]) == pytest.approx(1.0)
    # shutter: 360 degrees smears twice as far as 180
    w180 = reblur(across, matte, torch.tensor([[3.0, 0.0]]), shutter=180)
    w360 = reblur(across, matte, torch.tensor([[3.0, 0.0]]), shutter=360)
    assert float(w360[inside].std()) < float(w180[inside].std())


def test_face_velocity_central_differences():
    p = torch.tensor([[0.0, 0.0], [2.0, 1.0], [6.0, 2.0]])
    assert torch.equal(face_velocity(p), torch.tensor([[2.0, 1.0], [3.0, 1.0], [4.0, 1.0]]))


# ------------------------------------------------------------------ filters


def test_support_box_is_the_bounding_box_of_the_positive_pixels():
    from facepipe.composite.filters import support_box

    g = torch.Generator().manual_seed(3)
    m = torch.zeros(2, 1, H, W)
    m[0, :, 20:31, 40:45] = torch.rand(11, 5, generator=g) + 0.1
    m[1, :, 25, 70] = 0.5
    m[1, :, 60, 50] = -1.0  # not > 0: outside the support
    assert support_box(m) == (20, 31, 40, 71)
    assert support_box(m, margin=30, align=8) == (0, 61, 8, 101)
    assert support_box(torch.zeros(1, 1, H, W)) is None
    assert support_box(torch.zeros(0, 1, H, W)) is None


@pytest.mark.parametrize("radius", [1, 4])
def test_erode_and_window_extreme_match_max_pooling(radius):
    import torch.nn.functional as F

    from facepipe.composite.filters import erode, window_extreme

    x = torch.rand(1, 2, 37, 30, generator=torch.Generator().manual_seed(4))
    k = 2 * radius + 1
    pad = F.pad(x, (radius,) * 4, mode="replicate")
    rows = -F.max_pool2d(-pad, (1, k), stride=1)  # erosion as it was: max pooling of the negation
    assert torch.equal(erode(x, radius), -F.max_pool2d(-rows, (k, 1), stride=1))
    assert torch.equal(window_extreme(x, 5, -2, torch.maximum, 2), F.max_pool2d(x, (5, 1), stride=(2, 1)))
    assert torch.equal(window_extreme(x, 5, -1, torch.maximum, 2), F.max_pool2d(x, (1, 5), stride=(1, 2)))
