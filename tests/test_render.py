"""Geometric re-render: barycentric rasteriser, backward warp field, regions, fold-over limiter."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from facepipe.composite.matte import polygon_mask, rasterize_triangles
from facepipe.render import (
    FACEMESH_REGIONS,
    WarpField,
    apply_warp,
    interpolate,
    jacobian_det,
    limit_foldover,
    rasterize_barycentric,
    warp_field,
    warp_frames,
)
from facepipe.render.warp import MOUTH

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def rig():
    from facepipe.face.model import load_model

    return load_model()


def face_mesh(rig, scale=120.0, centre=(256.0, 256.0), au=None):
    """The canonical 468-vertex face (optionally with AU deltas {name: value}) projected
    frontally: (N,2) pixels, (N,) depth (smaller = nearer), (F,3) triangles."""
    v = rig.template.copy()
    for name, val in (au or {}).items():
        v = v + val * rig.au_deltas[rig.au_index(name)]
    v = torch.tensor(v)
    xy = torch.stack([centre[0] + scale * v[:, 0], centre[1] - scale * v[:, 1]], 1)
    return xy, -scale * v[:, 2], torch.tensor(rig.triangles)


def grid_mesh(n=9, step=12.0, origin=(60.0, 60.0)):
    """An n x n vertex grid, two triangles per cell: (n*n,2) pixels, (2(n-1)^2,3)."""
    ys, xs = torch.meshgrid(torch.arange(n, dtype=torch.float32), torch.arange(n, dtype=torch.float32), indexing="ij")
    verts = torch.stack([origin[0] + step * xs.reshape(-1), origin[1] + step * ys.reshape(-1)], 1)
    tris = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j, (i + 1) * n + j + 1
            tris += [(a, b, d), (a, d, c)]
    return verts, torch.tensor(tris)


def smooth_image(h, w, shift=(0.0, 0.0)):
    """(1,3,h,w) smooth analytic picture sampled at (x - shift)."""
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    x, y = x - shift[0], y - shift[1]
    return torch.stack([0.5 + 0.3 * torch.sin(x / 6.0), 0.5 + 0.3 * torch.cos(y / 7.0), 0.5 + 0.2 * torch.sin((x + y) / 9.0)])[None]


# ----------------------------------------------------------------------------- rasteriser


def test_barycentric_reproduces_positions_and_matches_matte_coverage(rig):
    xy, depth, tris = face_mesh(rig, scale=40.0, centre=(50.0, 50.0))
    r = rasterize_barycentric(xy, tris, (100, 100), depth)
    assert torch.equal(r.mask, rasterize_triangles(xy, tris, (100, 100))[0] > 0)
    m = r.mask
    assert torch.allclose(r.bary[m].sum(-1), torch.ones(int(m.sum())), atol=1e-5)
    assert bool((r.bary[m] >= 0).all()) and bool((r.bary[~m] == 0).all())
    pos = interpolate(xy, tris, r)
    yy, xx = torch.meshgrid(torch.arange(100.0), torch.arange(100.0), indexing="ij")
    assert float((pos[0][m] - xx[m]).abs().max()) < 1e-3
    assert float((pos[1][m] - yy[m]).abs().max()) < 1e-3
    assert bool((pos[:, ~m] == 0).all())


def test_zbuffer_nearest_triangle_wins():
    verts = torch.tensor([[2.0, 2.0], [17.0, 2.0], [2.0, 17.0], [3.0, 3.0], [18.0, 3.0], [3.0, 18.0]])
    tris = torch.tensor([[0, 1, 2], [3, 4, 5]])
    near_first = rasterize_barycentric(verts, tris, (20, 20), torch.tensor([0.0, 0, 0, 1, 1, 1]))
    near_second = rasterize_barycentric(verts, tris, (20, 20), torch.tensor([1.0, 1, 1, 0, 0, 0]))
    both = (near_first.tri >= 0) & (near_second.tri >= 0)
    overlap = both & (rasterize_triangles(verts[:3], tris[:1], (20, 20))[0] > 0)
    overlap &= rasterize_triangles(verts, tris[1:], (20, 20))[0] > 0
    assert int(overlap.sum()) > 50
    assert bool((near_first.tri[overlap] == 0).all()) and bool((near_second.tri[overlap] == 1).all())
    # a tilted plane: depth is interpolated, so the triangles cross along a line
    tilt = rasterize_barycentric(verts, tris, (20, 20), torch.tensor([0.0, 10, 0, 5, 5, 5]))
    assert set(tilt.tri[overlap].unique().tolist()) == {0, 1}


# ----------------------------------------------------------------------------- warp


def test_zero_edit_is_identity_bit_for_bit(rig):
    xy, depth, tris = face_mesh(rig)
    field = warp_field(xy, xy.clone(), tris, (512, 512), depth)
    assert field.is_identity and field.fill == {"mouth": 0.0, "eye_r": 0.0, "eye_l": 0.0}
    frames = torch.rand(2, 3, 512, 512)
    assert torch.equal(apply_warp(frames, field), frames)
    frames8 = (frames * 255).to(torch.uint8)
    out, fields = warp_frames(frames8, xy[None].repeat(2, 1, 1), xy[None].repeat(2, 1, 1), tris)
    assert torch.equal(out, frames8) and len(fields) == 2


def test_translation_moves_face_pixels_and_leaves_the_rest_exact(rig):
    H = W = 320
    xy, depth, tris = face_mesh(rig, scale=70.0, centre=(160.0, 160.0))
    t = (3.3, -2.1)
    field = warp_field(xy, xy + torch.tensor(t), tris, (H, W), depth)
    assert field.edit_scale == 1.0 and max(field.fill.values()) == 0.0
    frame = smooth_image(H, W)
    out = apply_warp(frame, field)
    # untouched outside the box, bit for bit; and the box is bounded by the margin
    x0, y0, x1, y1 = field.box
    outside = torch.ones(H, W, dtype=torch.bool)
    outside[y0:y1, x0:x1] = False
    assert int(outside.sum()) > 0.3 * H * W
    assert torch.equal(out[..., outside], frame[..., outside])
    still = (field.full((H, W)) == 0).all(0)
    assert torch.equal(out[..., still], frame[..., still])
    # inside the face (away from its outline), the picture moved by t: find the shift by search
    face = rasterize_triangles(xy, tris, (H, W))[0] > 0
    face = face & (torch.nn.functional.avg_pool2d(face[None, None].float(), 9, 1, 4)[0, 0] > 0.999)
    best, best_err = None, float("inf")
    for dx in np.arange(t[0] - 1.0, t[0] + 1.01, 0.1):
        for dy in np.arange(t[1] - 1.0, t[1] + 1.01, 0.1):
            err = float(((out - smooth_image(H, W, (dx, dy)))[..., face] ** 2).mean())
            if err < best_err:
                best, best_err = (dx, dy), err
    assert abs(best[0] - t[0]) < 0.5 and abs(best[1] - t[1]) < 0.5, best
    assert best_err < 1e-4
    # the field itself: exactly the translation on the mesh
    fl = field.full((H, W))
    assert float((fl[0][face] + t[0]).abs().max()) < 0.05 and float((fl[1][face] + t[1]).abs().max()) < 0.05


def test_large_edit_folds_without_limiter_and_not_with_it():
    verts, tris = grid_mesh()
    dst = verts.clone()
    col = (torch.arange(len(verts)) % 9 == 4) & (torch.arange(len(verts)) // 9).gt(1) & (torch.arange(len(verts)) // 9).lt(7)
    dst[col, 0] += 22.0  # past the next column (12 px away): triangles flip
    free = warp_field(verts, dst, tris, (200, 200), limit=False)
    assert float(jacobian_det(free.flow).min()) < 0
    lim = warp_field(verts, dst, tris, (200, 200))
    assert float(jacobian_det(lim.flow).min()) > 0
    assert lim.smoothed > 0 or lim.edit_scale < 1.0
    assert float(lim.flow.abs().max()) > 5.0  # the edit was limited, not dropped
    # the limiter alone: no guarded triangle flips afterwards
    out, _, _ = limit_foldover(verts, dst, tris)
    e1, e2 = out[tris[:, 1]] - out[tris[:, 0]], out[tris[:, 2]] - out[tris[:, 0]]
    assert bool((e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0] > 0).all())


def test_turned_head_edit_keeps_strength_and_does_not_fold(rig):
    """A head turned 45 degrees: silhouette triangles fold behind their neighbours (z-buffer), the
    field is relaxed locally, and the edit is not scaled down."""
    yaw = 0.8
    rot = torch.tensor([[np.cos(yaw), 0.0, np.sin(yaw)], [0.0, 1.0, 0.0], [-np.sin(yaw), 0.0, np.cos(yaw)]], dtype=torch.float32)

    def posed(au):
        v = torch.tensor(rig.template.copy())
        for name, val in au.items():
            v = v + val * torch.tensor(rig.au_deltas[rig.au_index(name)])
        v = v @ rot.T
        return torch.stack([160 + 100 * v[:, 0], 160 - 100 * v[:, 1]], 1), -100 * v[:, 2]

    base = {"AU26": 0.4, "AU25": 0.5}
    src, _ = posed(base)
    dst, depth = posed({**base, "AU12R": 1.0, "AU12L": 1.0, "AU6": 1.0})
    field = warp_field(src, dst, torch.tensor(rig.triangles), (320, 320), depth)
    assert field.edit_scale == 1.0
    assert float(jacobian_det(field.flow).min()) > 0


def _checker_period(img: torch.Tensor, axis: int) -> float:
    """Mean period (pixels) of a 0.1/0.9 checkerboard patch (h,w) along ``axis``: from the first to
    the last crossing of 0.5 (sub-pixel, linear) of each line."""
    a = (img if axis == 1 else img.T).numpy() - 0.5
    periods = []
    for line in a:
        i = np.nonzero(np.sign(line[:-1]) != np.sign(line[1:]))[0]
        if len(i) < 3:
            continue
        pos = i + line[i] / (line[i] - line[i + 1])
        periods.append(2.0 * (pos[-1] - pos[0]) / (len(pos) - 1))
    return float(np.mean(periods))


def test_mouth_interior_stays_rigid_when_lips_stretch(rig):
    H = W = 400
    src, depth, tris = face_mesh(rig, scale=160.0, centre=(200.0, 150.0), au={"AU26": 0.8, "AU25": 0.8})
    loop = list(MOUTH.loop)
    c = src[loop].mean(0)
    half = float(src[loop][:, 0].max() - src[loop][:, 0].min()) / 2
    # stretch the lips horizontally by 1.3 about the mouth centre, fading out over the cheeks
    r = (((src - c) / torch.tensor([1.5 * half, 0.9 * half])) ** 2).sum(1).sqrt()
    w = ((2.0 - r) / 1.0).clamp(0, 1)
    w = w * w * (3 - 2 * w)
    dst = src.clone()
    dst[:, 0] = src[:, 0] + 0.3 * (src[:, 0] - c[0]) * w
    # picture: smooth skin, a 4 px checkerboard (period 8) inside the source mouth
    frame = smooth_image(H, W)
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    checker = 0.1 + 0.8 * (((xx // 4) + (yy // 4)) % 2).float()
    inside = polygon_mask(src[loop], (H, W))[0] > 0
    frame[0, :, inside] = checker[inside]
    rigid = warp_field(src, dst, tris, (H, W), depth)
    assert rigid.edit_scale == 1.0
    assert rigid.fill["mouth"] > 0  # wider than the source: the corners are filled
    out = apply_warp(frame, rigid)
    soft = apply_warp(frame, warp_field(src, dst, tris, (H, W), depth, regions=()))
    cd = dst[loop].mean(0)
    cx, cy = round(float(cd[0])), round(float(cd[1]))
    patch = (slice(cy - 6, cy + 6), slice(cx - 20, cx + 20))
    p_rigid = _checker_period(out[0, 1][patch], 1)
    p_soft = _checker_period(soft[0, 1][patch], 1)
    assert abs(p_rigid - 8.0) < 0.6, p_rigid
    assert p_soft > 9.0, p_soft  # without the region the teeth would stretch with the lips
    assert abs(_checker_period(out[0, 1][cy - 8 : cy + 8, cx - 6 : cx + 6], 0) - 8.0) < 0.6


def test_mouth_opened_beyond_source_is_filled_and_flagged(rig):
    src, _, tris = face_mesh(rig, au={"AU26": 0.2})
    dst, depth_d, _ = face_mesh(rig, au={"AU26": 1.0, "AU25": 1.0})
    field = warp_field(src, dst, tris, (512, 512), depth_d)
    assert field.mouth_filled and "mouth" in field.filled()
    assert float(jacobian_det(field.flow).min()) > 0
    # closing the mouth a little: the source covers it, nothing to fill
    closer, depth_c, _ = face_mesh(rig, au={"AU26": 0.1})
    assert not warp_field(src, closer, tris, (512, 512), depth_c).mouth_filled


def test_apply_warp_per_frame_fields_and_dtypes(rig):
    xy, depth, tris = face_mesh(rig, scale=50.0, centre=(64.0, 64.0))
    moved = warp_field(xy, xy + torch.tensor([2.0, 0.0]), tris, (128, 128), depth)
    ident = WarpField((0, 0, 0, 0), torch.zeros(2, 0, 0))
    frames = torch.rand(2, 3, 128, 128)
    out = apply_warp(frames, [ident, moved])
    assert torch.equal(out[0], frames[0]) and not torch.equal(out[1], frames[1])
    frames8 = (frames * 255).round().to(torch.uint8)
    out8 = apply_warp(frames8, [ident, moved])
    assert out8.dtype == torch.uint8 and torch.equal(out8[0], frames8[0])
    # integer frames: sampled in float32, then rounded and clamped to the type's range
    want = apply_warp(frames8.float(), [ident, moved])[1].clamp(0, 255)
    assert float((out8[1].float() - want).abs().max()) <= 0.5 + 1e-4
    with pytest.raises(ValueError):
        apply_warp(frames, [moved])


def test_regions_are_facemesh_holes(rig):
    """The default regions' loops are boundary loops of the mesh (holes), not covered by it."""
    tris = rig.triangles
    edges = {}
    for t in tris:
        for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])):
            k = (min(a, b), max(a, b))
            edges[k] = edges.get(k, 0) + 1
    for region in FACEMESH_REGIONS:
        loop = region.loop
        for a, b in zip(loop, loop[1:] + loop[:1]):
            assert edges.get((min(a, b), max(a, b))) == 1, (region.name, a, b)


def test_warp_speed_512(rig, capsys):
    """Per-frame time of field + application at 512x512 (face ~190 px). Printed, not asserted."""
    src, _, tris = face_mesh(rig, au={"AU26": 0.4, "AU25": 0.5})
    dst, depth_d, _ = face_mesh(rig, au={"AU26": 0.4, "AU25": 0.5, "AU12R": 1.0, "AU12L": 1.0, "AU6": 1.0})
    frame = torch.rand(1, 3, 512, 512)
    apply_warp(frame, warp_field(src, dst, tris, (512, 512), depth_d))  # warm-up
    n = 3
    t0 = time.perf_counter()
    for _ in range(n):
        field = warp_field(src, dst, tris, (512, 512), depth_d)
    t1 = time.perf_counter()
    for _ in range(n):
        apply_warp(frame, field)
    t2 = time.perf_counter()
    with capsys.disabled():
        print(f"\nwarp 512x512: field {1000 * (t1 - t0) / n:.1f} ms + apply {1000 * (t2 - t1) / n:.1f} ms per frame")


def test_bicubic_detail_is_given_back_where_the_warp_moves_by_fractions(rig):
    import torch.nn.functional as F

    from facepipe.composite.filters import gaussian_blur
    from facepipe.render.warp import restore_cubic_detail

    H = W = 200
    xy, depth, tris = face_mesh(rig, scale=60.0, centre=(100.0, 100.0))
    g = torch.Generator().manual_seed(3)
    texture = gaussian_blur(torch.rand(1, 3, H, W, generator=g), 0.7)  # fine, camera-like detail
    field = warp_field(xy, xy + torch.tensor((0.5, 0.5)), tris, (H, W), depth)
    face = rasterize_triangles(xy, tris, (H, W))[0] > 0
    face &= (field.full((H, W)).abs() - 0.5).abs().amax(0) < 0.01  # moved by half a pixel both ways

    def laplacian_var(img):
        lap = F.conv2d(img.mean(1, keepdim=True), torch.tensor([[[[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]]]), padding=1)
        return float(lap[0, 0][face].var())

    ys, xs = torch.meshgrid(torch.arange(H) - 0.5, torch.arange(W) - 0.5, indexing="ij")
    grid = torch.stack([xs / (W - 1) * 2 - 1, ys / (H - 1) * 2 - 1], -1)[None]
    plain = F.grid_sample(texture, grid, mode="bicubic", padding_mode="border", align_corners=True)
    assert int(face.sum()) > 2000
    assert laplacian_var(plain) < 0.75 * laplacian_var(texture)  # Keys at half a pixel: a low-pass
    ratio = laplacian_var(apply_warp(texture, field)) / laplacian_var(texture)
    assert 0.85 < ratio < 1.15, ratio
    # whole-pixel positions are left exactly as sampled
    s = torch.rand(3, 20, 30, generator=g)
    whole = torch.arange(30.0)[None, :].expand(20, 30), torch.arange(20.0)[:, None].expand(20, 30)
    assert torch.equal(restore_cubic_detail(s, *whole), s)


def test_detail_is_given_back_where_the_warp_magnifies():
    import torch.nn.functional as F

    from facepipe.composite.filters import gaussian_blur
    from facepipe.render.warp import WarpField

    H = W = 160
    g = torch.Generator().manual_seed(5)
    texture = gaussian_blur(torch.rand(1, 3, H, W, generator=g), 0.7)
    ys = torch.arange(H, dtype=torch.float32)[:, None].expand(H, W)
    magnify = 1.2  # output row y shows source row 80 + (y - 80) / 1.2: raised-brow skin
    flow = torch.stack([torch.zeros(H, W), 80.0 + (ys - 80.0) / magnify - ys])

    def laplacian_var(img, rows):
        lap = F.conv2d(img.mean(1, keepdim=True), torch.tensor([[[[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]]]), padding=1)
        return float(lap[0, 0, rows, 20:-20].var())

    plain = F.grid_sample(texture, torch.stack([torch.zeros(H, W) + torch.linspace(-1, 1, W), (ys + flow[1]) / (H - 1) * 2 - 1], -1)[None],
                          mode="bicubic", align_corners=True)  # fmt: skip
    source = laplacian_var(texture, slice(55, 105))
    assert laplacian_var(plain, slice(50, 110)) < 0.75 * source  # magnified: softer
    ratio = laplacian_var(apply_warp(texture, WarpField((0, 0, W, H), flow)), slice(50, 110)) / source
    assert 0.85 < ratio < 1.15, ratio
