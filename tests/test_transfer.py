"""Appearance transfer: regions, donor choice (Viterbi, hold, cross-fade, speech lock, fallback)
and the per-frame transfer render."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from facepipe.composite.matte import polygon_mask, rasterize_triangles
from facepipe.face import topology as topo
from facepipe.face.facs import SPEECH_AUS, columns_of
from facepipe.face.regions import TransferRegion, facemesh_regions
from facepipe.render.barycentric import rasterize_barycentric
from facepipe.render.donors import DonorImage, DonorPool, crop_box, cut_donor, landmark_speed
from facepipe.render.transfer import render_transfer
from facepipe.render.transfer_plan import TransferConfig, TransferPlan, plan_transfer, viterbi_hold

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def rig():
    from facepipe.face.model import load_model

    return load_model()


@pytest.fixture(scope="module")
def regions(rig):
    return facemesh_regions(rig)


def col(rig, name):
    return rig.au_names.index(name)


def aus(rig, n=1, **values):
    """(n,K) AU rows with the given values (AU12=0.8 sets both sides of a split AU)."""
    out = np.zeros((n, len(rig.au_names)), np.float32)
    for name, v in values.items():
        for k, full in enumerate(rig.au_names):
            if full == name or full in (name + "L", name + "R"):
                out[:, k] = v
    return out


def library_pool(rig, rows, rotation=None):
    """A pool of library donors (clip 1) with the given AU rows (M,K)."""
    rows = np.asarray(rows, np.float32)
    m = len(rows)
    rot = np.zeros((m, 3), np.float32) if rotation is None else np.asarray(rotation, np.float32)
    return DonorPool(rows, rot, np.ones(m, bool), np.ones(m, np.int64), np.arange(m))


def plan(rig, regions, pool, source, target, weight=None, rotation=None, frame_rows=None, **cfg):
    T = len(source)
    rotation = np.zeros((T, 3), np.float32) if rotation is None else rotation
    weight = np.ones(T, np.float32) if weight is None else weight
    fr = np.full(T, -1) if frame_rows is None else frame_rows
    return plan_transfer(pool, source, target, rotation, weight, rig.au_names, fr, TransferConfig(**cfg), regions)


def runs(seq):
    return [len(list(g)) for _, g in itertools.groupby(seq.tolist())]


# ----------------------------------------------------------------------------- regions


def test_facemesh_regions_avoid_eye_openings_and_lid_margins(rig, regions):
    assert [r.name for r in regions] == ["mouth", "cheeks", "eyes", "brows"]
    mesh = {tuple(sorted(t)) for t in rig.triangles.tolist()}
    lids = set(topo.EYE_LOOP_R) | set(topo.EYE_LOOP_L)
    upper = set(topo.UPPER_LID_R) | set(topo.UPPER_LID_L)
    for r in regions:
        assert len(r.triangles) > 20
        base = r.triangles[(r.triangles < 468).all(1)]
        assert all(tuple(sorted(t)) in mesh for t in base.tolist()), r.name  # real mesh faces
        assert not lids & set(r.vertex_ids.tolist()), r.name  # never a lid margin
    mouth = regions[0]
    assert mouth.speech_locked and not any(r.speech_locked for r in regions[1:])
    fan = mouth.triangles[(mouth.triangles == 468).any(1)]
    assert len(fan) == len(mouth.extra_vertices[0]) and mouth.interior.sum() == len(fan)  # interior fan
    eyes = regions[2]
    v = rig.template
    # the eye region is skin below the eye corners or lateral of them, never the upper lid
    assert not upper & set(eyes.vertex_ids.tolist())
    assert (v[eyes.vertex_ids, 1] <= v[topo.EYE_OUTER_R, 1] + 0.121).all()
    # the lips belong to the mouth only
    assert 13 in mouth.vertex_ids and 13 not in regions[1].vertex_ids


# ----------------------------------------------------------------------------- Viterbi


def brute_force(unary, switch, hold):
    T, S = unary.shape
    best = math.inf
    for seq in itertools.product(range(S), repeat=T):
        r = runs(np.array(seq))
        if any(n < hold for n in r[:-1]):
            continue
        c = sum(unary[t, s] for t, s in enumerate(seq)) + switch * (len(r) - 1)
        if c < best - 1e-9:
            best = c
    return best


@pytest.mark.parametrize("hold", [1, 2, 3])
def test_viterbi_finds_the_lowest_cost_sequence(hold):
    g = torch.Generator().manual_seed(hold)
    for _ in range(4):
        u = torch.rand(7, 3, generator=g)
        u[torch.rand(7, 3, generator=g) < 0.15] = math.inf
        u[:, 2] = u[:, 2].nan_to_num(posinf=0.9)  # one state is always allowed
        u[:, 2] = torch.where(torch.isinf(u[:, 2]), torch.tensor(0.9), u[:, 2])
        seq = viterbi_hold(u, 0.3, hold)
        r = runs(seq)
        assert all(n >= hold for n in r[:-1])
        cost = float(u[torch.arange(7), seq].sum()) + 0.3 * (len(r) - 1)
        assert cost == pytest.approx(brute_force(u.numpy(), 0.3, hold), abs=1e-5)


def test_viterbi_switches_less_with_higher_switch_cost_and_holds():
    g = torch.Generator().manual_seed(0)
    u = torch.rand(200, 6, generator=g)
    counts = []
    for cost in (0.0, 0.3, 1.0, 5.0):
        seq = viterbi_hold(u, cost, 1)
        counts.append(len(runs(seq)) - 1)
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    seq = viterbi_hold(u, 0.0, 5)
    assert min(runs(seq)[:-1]) >= 5
    # without a switch cost and hold, the per-frame minimum
    assert torch.equal(viterbi_hold(u, 0.0, 1), u.argmin(1))


# ----------------------------------------------------------------------------- donor choice


def test_crossfade_between_donors_is_smooth(rig, regions):
    T = 40
    source = aus(rig, T)
    target = np.concatenate([aus(rig, 20, AU12=0.8, AU6=0.8), aus(rig, 20, AU12=0.4, AU6=0.4)])
    pool = library_pool(rig, np.concatenate([aus(rig, 1, AU12=0.8, AU6=0.8), aus(rig, 1, AU12=0.4, AU6=0.4)]))
    p = plan(rig, regions[1:2], pool, source, target, crossfade=6, min_hold=4, switch_cost=0.05)
    a, b, m = p.donor_a[0], p.donor_b[0], p.mix[0]
    assert a[0] == 0 and a[-1] == 1
    fade = np.nonzero(b >= 0)[0]
    assert len(fade) == 6 and (np.diff(fade) == 1).all()
    # donor 0 no longer beats the current frame after frame 20: the fade happens before the switch
    assert fade[-1] == 19 and (a[fade] == 0).all() and (b[fade] == 1).all()
    assert ((m[fade] > 0) & (m[fade] < 1)).all() and (np.diff(m[fade]) > 0).all()
    assert (m[b < 0] == 0).all()
    share1 = np.where(a == 1, 1.0, 0.0) + np.where(b == 1, m, 0.0)  # donor 1's share of the layer
    share0 = np.where(a == 0, 1.0 - m, 0.0)
    assert np.allclose(share0 + share1, 1.0)
    assert np.abs(np.diff(share1)).max() <= 1.5 / 7 + 1e-6  # no jump (smoothstep over 7 steps)
    assert (p.alpha[0] == 1).all()
    assert p.report()["cheeks"]["donors"] == [(1, 0), (1, 1)]


def test_a_change_that_cannot_cross_fade_dips_alpha(rig, regions):
    T = 40
    source = aus(rig, T)
    target = np.concatenate([aus(rig, 20, AU12=0.8), aus(rig, 20, AU6=0.8)])
    # each donor is better than the current frame on one side of frame 20 only
    pool = library_pool(rig, np.concatenate([aus(rig, 1, AU12=0.8), aus(rig, 1, AU6=0.8)]))
    p = plan(rig, regions[1:2], pool, source, target, crossfade=6, min_hold=4)
    assert p.donor_a[0, 0] == 0 and p.donor_a[0, -1] == 1 and (p.donor_b[0] == -1).all()
    assert p.report()["cheeks"]["hard_cuts"] == 1
    al = p.alpha[0]
    assert al[19] < 0.05 and al[20] < 0.05 and al[0] == 1 and al[-1] == 1  # no pop at the cut
    assert np.abs(np.diff(al)).max() < 0.35


def test_min_hold_and_switch_cost_on_a_noisy_plan(rig, regions):
    g = np.random.default_rng(0)
    T, M = 60, 8
    source = aus(rig, T)
    target = aus(rig, T, AU12=0.8, AU6=0.8)
    rows = aus(rig, M)
    rows[:, [col(rig, "AU12L"), col(rig, "AU12R"), col(rig, "AU6")]] = 0.6 + 0.2 * g.random((M, 1))
    target[:, col(rig, "AU6")] += 0.15 * g.standard_normal(T).astype(np.float32)  # noisy: best donor flickers
    pool = library_pool(rig, rows)
    switches = []
    for cost in (0.0, 0.05, 1.0):
        p = plan(rig, regions[1:2], pool, source, target, switch_cost=cost, min_hold=5, crossfade=0)
        seq = p.donor_a[0]
        assert min(runs(seq)[:-1], default=99) >= 5
        switches.append(p.report()["cheeks"]["switches"])
    assert switches[0] > switches[1] >= switches[2] == 0


def test_mouth_respects_speech_and_cheeks_do_not_need_to(rig, regions):
    T = 30
    source = aus(rig, T)
    source[:, col(rig, "AU25")] = np.linspace(0.0, 0.6, T)  # the actor talks: the mouth opens
    target = source.copy()
    target[:, [col(rig, "AU12L"), col(rig, "AU12R"), col(rig, "AU6")]] = 0.8
    rows = []
    for open_ in np.linspace(0.0, 0.6, 7):
        rows.append(aus(rig, 1, AU12=0.8, AU6=0.8, AU25=open_)[0])
    rows.append(aus(rig, 1, AU12=0.8, AU6=0.8, AU25=0.0, AU18=0.5)[0])  # smiling, but a pucker
    pool = library_pool(rig, rows)
    p = plan(rig, regions[:2], pool, source, target, speech_tol=0.1, min_hold=1, crossfade=2)
    s25 = source[:, col(rig, "AU25")]
    for t in range(T):
        for d in (p.donor_a[0, t], p.donor_b[0, t]):
            if d >= 0:
                diff = np.abs(pool.au[d] - source[t])[columns_of(SPEECH_AUS, rig.au_names)]
                assert diff.max() <= 0.1 + 1e-6, (t, d, s25[t])
    assert p.report()["mouth"]["frames_transferred"] > 0
    # the cheeks carry no speech: a donor with the mouth open far more than the source's is fine
    wide = [t for t in range(T) if p.donor_a[1, t] >= 0 and abs(pool.au[p.donor_a[1, t], col(rig, "AU25")] - s25[t]) > 0.1]
    assert wide


def test_cheeks_keep_the_actors_own_cheek_puff(rig, regions):
    T = 10
    source = aus(rig, T, AU34=0.5)  # the actor puffs the cheeks; the plan leaves AU34 alone
    target = aus(rig, T, AU12=0.8, AU6=0.8, AU34=0.5)
    pool = library_pool(rig, [aus(rig, 1, AU12=0.8, AU6=0.8)[0], aus(rig, 1, AU12=0.6, AU6=0.6, AU34=0.45)[0]])
    p = plan(rig, regions[:2], pool, source, target, min_hold=1)
    assert (p.donor_a[1] == 1).all()
    assert not (p.donor_a == 0).any()


def test_a_frame_never_picks_itself(rig, regions):
    T = 20
    source = aus(rig, T)
    target = aus(rig, T, AU12=0.8, AU6=0.8)
    # the pool is the shot, but its AUs say every frame already smiles (a different fit):
    # without the rule every frame's best donor would be itself
    pool = DonorPool.from_fit(aus(rig, T, AU12=0.8, AU6=0.8), np.zeros((T, 3)))
    pool.au[::2] *= 0.9  # the even frames are slightly worse donors
    p = plan(rig, regions, pool, source, target, frame_rows=np.arange(T), min_hold=1, switch_cost=0.0)
    assert (p.alpha[1] > 0).all()
    assert (p.donor_a != np.arange(T)[None]).all()
    # frame_rows default: the pool's clip-0 rows are exactly the shot's frames
    p2 = plan_transfer(pool, source, target, np.zeros((T, 3)), np.ones(T), rig.au_names,
                          config=TransferConfig(min_hold=1, switch_cost=0.0), regions=regions)
    assert np.array_equal(p2.donor_a, p.donor_a)


def test_fallback_where_nothing_is_close_and_the_report_counts_it(rig, regions):
    T = 30
    source = aus(rig, T)
    target = aus(rig, T, AU12=0.8, AU6=0.8)
    target[:10] = source[:10]  # nothing planned on the first 10 frames
    rot = np.zeros((2, 3), np.float32)
    rot[1, 1] = math.radians(35)  # the best donor, but the head is turned too far
    pool = library_pool(rig, [aus(rig, 1, AU12=0.1)[0], aus(rig, 1, AU12=0.8, AU6=0.8)[0]], rot)
    weight = np.r_[np.zeros(10), np.ones(20)].astype(np.float32)
    p = plan(rig, regions, pool, source, target, weight=weight, min_hold=1)
    rep = p.report()
    assert (p.donor_a != 1).all()  # the turned donor is never used
    # eyes: AU6 only matters there, the AU12 donor is not better than the current frame
    assert rep["eyes"]["frames_transferred"] == 0 and rep["eyes"]["frames_fallback"] == 20
    assert "pose" in rep["eyes"]["reason"]
    assert (p.alpha[:, :10] == 0).all() and not p.fallback[:, :10].any()
    assert rep["brows"] == {"frames_transferred": 0, "frames_fallback": 0, "donors": [], "switches": 0,
                            "hard_cuts": 0, "reason": "the plan does not change this region"}
    # a pool with nothing better: every region falls back on every planned frame
    p = plan(rig, regions, library_pool(rig, aus(rig, 3)), source, target, weight=weight)
    assert (p.alpha == 0).all() and (p.donor_a == -1).all() and len(p.rows_used()) == 0
    assert p.report()["cheeks"]["frames_fallback"] == 20
    assert "no donor nearer" in p.report()["cheeks"]["reason"]


def test_alpha_follows_plan_weight_and_strength(rig, regions):
    T = 40
    source = aus(rig, T)
    target = aus(rig, T, AU12=0.8, AU6=0.8)
    weight = np.clip(np.sin(np.linspace(0, 2 * np.pi, T)), 0, 1).astype(np.float32)  # 0 on half the frames
    target = source + weight[:, None] * (target - source)
    pool = library_pool(rig, aus(rig, 2, AU12=0.8, AU6=0.8))
    full = plan(rig, regions, pool, source, target, weight=weight, min_hold=1)
    half = plan(rig, regions, pool, source, target, weight=weight, min_hold=1, strength=0.5)
    none = plan(rig, regions, pool, source, target, weight=weight, min_hold=1, strength=0.0)
    assert (full.alpha[:, weight == 0] == 0).all()
    assert full.alpha[1].max() > 0.5
    assert np.allclose(half.alpha, 0.5 * full.alpha, atol=1e-6)
    assert (none.alpha == 0).all() and (none.donor_a == -1).all()
    assert (full.alpha <= weight[None] + 1e-6).all()
    # alpha has no jumps: it eases in and out inside each donor span
    assert np.abs(np.diff(full.alpha[1])).max() < 0.35
    assert set(full.rows_used().tolist()) <= {0, 1} and len(full.rows_used())


def test_eyes_never_take_a_blinking_donor(rig, regions):
    T = 12
    source = aus(rig, T)
    target = aus(rig, T, AU6=0.8)
    pool = library_pool(rig, [aus(rig, 1, AU6=0.8, AU45=0.9)[0], aus(rig, 1, AU6=0.5)[0]])
    p = plan(rig, regions, pool, source, target, min_hold=1)
    assert (p.donor_a[2][p.alpha[2] > 0] == 1).all() and (p.alpha[2] > 0).any()


# ----------------------------------------------------------------------------- rendering


def face(rig, scale=60.0, centre=(80.0, 80.0)):
    v = torch.tensor(rig.template)
    return torch.stack([centre[0] + scale * v[:, 0], centre[1] - scale * v[:, 1]], 1)


def texture(h, w, shift=(0.0, 0.0), gain=1.0):
    """(3,h,w) smooth analytic texture sampled at (x - shift)."""
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    x, y = x - shift[0], y - shift[1]
    img = torch.stack([
        0.5 + 0.2 * torch.sin(x / 3.0) * torch.cos(y / 4.0),
        0.45 + 0.15 * torch.cos(x / 5.0 + y / 3.5),
        0.4 + 0.1 * torch.sin(y / 2.5) + 0.002 * x,
    ])
    return img * gain


def one_frame_plan(regions, alpha=1.0, a=0, b=-1, mix=0.0):
    R = len(regions)
    return TransferPlan(
        regions=[r.name for r in regions],
        donor_a=np.full((R, 1), a, np.int64), donor_b=np.full((R, 1), b, np.int64),
        mix=np.full((R, 1), mix, np.float32), alpha=np.full((R, 1), alpha, np.float32),
        fallback=np.zeros((R, 1), bool), pool_clip=np.zeros(2, np.int64), pool_frame=np.arange(2),
    )


def covered(regions, dst, size):
    out = torch.zeros(1, *size)
    for r in regions:
        out = torch.maximum(out, rasterize_triangles(r.extend(dst), torch.as_tensor(r.triangles), size))
    return out > 0


def test_render_reproduces_a_shifted_donor_in_the_current_geometry(rig, regions):
    H = W = 160
    dst = face(rig)
    frame = texture(H, W)
    donor_full = texture(H, W, shift=(5.0, 3.0))  # the same face, 5 px right and 3 px down
    donors = {0: cut_donor(donor_full, dst + torch.tensor([5.0, 3.0]), margin=0.1)}
    assert donors[0].offset != (0, 0) and donors[0].image.shape[-1] < W  # a crop with an offset
    p = one_frame_plan(regions)
    layer, alpha = render_transfer(frame, dst, donors, p, 0, regions)
    assert layer.shape == (3, H, W) and alpha.shape == (1, H, W)
    inside = alpha[0] > 0
    assert inside.sum() > 2000
    assert (layer - frame).abs()[:, inside].max() < 0.03  # the donor's pattern, in the current place
    assert torch.equal(layer[:, ~inside], frame[:, ~inside])
    # alpha: 0 outside the regions, never inside the eye openings, 1 well inside
    cover = covered(regions, dst, (H, W))[0]
    assert (alpha[0][~cover] == 0).all()
    for loop in (topo.EYE_LOOP_R, topo.EYE_LOOP_L):
        assert (alpha[0][polygon_mask(dst[list(loop)], (H, W))[0] > 0] == 0).all()
    assert alpha.max() == 1.0
    # the same with a whole-frame donor (no offset) and a cross-fade of the two
    donors[1] = DonorImage(donor_full, dst + torch.tensor([5.0, 3.0]))
    layer2, alpha2 = render_transfer(frame, dst, donors, one_frame_plan(regions, b=1, mix=0.4), 0, regions)
    assert torch.allclose(alpha2, alpha) and (layer2 - frame).abs()[:, inside].max() < 0.03


def test_render_is_a_real_transfer_and_the_gain_keeps_the_current_shading(rig, regions):
    H = W = 160
    dst = face(rig)
    frame = texture(H, W)
    # the donor is darker (another lighting) and has a fine pattern the current frame lacks
    y, x = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    fine = 0.08 * torch.sign(torch.sin(x * 1.3 + y * 0.7))
    donor = 0.7 * (frame + fine)
    donors = {0: DonorImage(donor, dst)}
    cheeks = [r for r in regions if r.name == "cheeks"]
    layer, alpha = render_transfer(frame, dst, donors, one_frame_plan(cheeks), 0, cheeks)
    inside = alpha[0] > 0.99
    assert inside.sum() > 500
    err = (layer - frame)[:, inside]
    assert abs(float(err.mean())) < 0.01  # the brightness stays the current frame's
    # ... while the donor's fine pattern comes along
    corr = torch.corrcoef(torch.stack([err.reshape(-1), fine.expand(3, -1, -1)[:, inside].reshape(-1)]))[0, 1]
    assert corr > 0.9
    # weaker plan alpha scales the layer's alpha
    _, half = render_transfer(frame, dst, donors, one_frame_plan(cheeks, alpha=0.5), 0, cheeks)
    assert torch.allclose(half, 0.5 * alpha, atol=1e-6)
    # a region with plan alpha 0 needs no donor and renders nothing
    layer0, alpha0 = render_transfer(frame, dst, {}, one_frame_plan(cheeks, alpha=0.0), 0, cheeks)
    assert (alpha0 == 0).all() and torch.equal(layer0, frame)


def test_mouth_interior_comes_from_the_donor(rig, regions):
    H = W = 160
    base = rig.template.copy()
    open_ = base + 1.0 * rig.au_deltas[col(rig, "AU25")] + 0.6 * rig.au_deltas[col(rig, "AU26")]
    v = torch.tensor(open_)
    dst = torch.stack([80 + 60 * v[:, 0], 80 - 60 * v[:, 1]], 1)
    frame = torch.full((3, H, W), 0.1)  # a dark mouth, no teeth
    donor = torch.full((3, H, W), 0.6)
    gap = polygon_mask(dst[list(topo.LIP_INNER_LOOP)], (H, W))[0] > 0
    donor[:, gap] = 0.95  # teeth inside the donor's inner-lip loop
    mouth = [r for r in regions if r.name == "mouth"]
    layer, alpha = render_transfer(frame, dst, {0: DonorImage(donor, dst)}, one_frame_plan(mouth), 0, mouth)
    core = torch.nn.functional.max_pool2d((~gap).float()[None, None], 5, 1, 2)[0, 0] == 0  # well inside the gap
    assert core.sum() > 20
    assert (alpha[0][core] > 0.5).all()
    assert (layer[:, core] > layer[:, gap.logical_not() & (alpha[0] > 0.5)].mean() + 0.1).all()  # bright teeth


def test_rows_used_and_crop_box(rig):
    p = TransferPlan(
        regions=["a", "b"],
        donor_a=np.array([[3, 3, 5, -1], [7, 7, -1, -1]]), donor_b=np.array([[-1, 5, -1, -1], [9, -1, -1, -1]]),
        mix=np.array([[0, 0.5, 0, 0], [0.0, 0, 0, 0]], np.float32), alpha=np.array([[1, 1, 1, 0], [0.5, 0.5, 0, 0]], np.float32),
        fallback=np.zeros((2, 4), bool), pool_clip=np.zeros(10, np.int64), pool_frame=np.arange(10),
    )
    assert p.rows_used().tolist() == [3, 5, 7]  # row 9 has mix 0: not needed
    assert p.rows_at(1).tolist() == [3, 5, 7] and p.rows_at(3).tolist() == []
    dst = face(rig)
    x0, y0, x1, y1 = crop_box(dst, (160, 160), 0.1)
    assert x0 <= float(dst[:, 0].min()) - 1 and x1 >= float(dst[:, 0].max()) + 1
    assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 160


def test_eye_openings_stay_the_current_frame_even_for_a_region_over_them(rig):
    # a custom region that (wrongly) covers an eye: a fan over the lid loop around its centre
    loop = list(topo.EYE_LOOP_R)
    fan = np.array([(loop[i], loop[(i + 1) % len(loop)], 468) for i in range(len(loop))])
    bad = TransferRegion("over_eye", fan, ("AU6",), (1.0,), extra_vertices=(tuple(loop),))
    H = W = 160
    dst = face(rig, scale=80.0)
    frame = texture(H, W)
    _, alpha = render_transfer(frame, dst, {0: DonorImage(1 - frame, dst)}, one_frame_plan([bad]), 0, [bad])
    eye = polygon_mask(dst[loop], (H, W))[0] > 0
    assert eye.sum() > 50 and (alpha[0][eye] == 0).all()


def test_fast_moving_donors_are_avoided(rig, regions):
    T = 10
    source = aus(rig, T)
    target = aus(rig, T, AU12=0.8, AU6=0.8)
    # landmark speed: a face sliding 3 px/frame with an IOD of 100 px moves 0.03 IOD/frame
    lm = np.stack([face(rig, scale=100.0).numpy() + [3.0 * t, 0.0] for t in range(4)])
    assert np.allclose(landmark_speed(lm), 0.03, atol=1e-4)
    speed = np.zeros((2, 468), np.float32)
    speed[0] = 0.03  # the perfect donor is caught mid-motion (blurred), the other one is still
    pool = library_pool(rig, [aus(rig, 1, AU12=0.8, AU6=0.8)[0], aus(rig, 1, AU12=0.7, AU6=0.7)[0]])
    pool.speed = speed
    p = plan(rig, regions[1:2], pool, source, target, min_hold=1)
    assert (p.donor_a[0] == 1).all()
    pool.speed[0] = 0.2  # beyond max_speed: never, even if nothing else
    pool.speed[1] = 0.2
    assert (plan(rig, regions[1:2], pool, source, target, min_hold=1).alpha == 0).all()
    assert DonorPool.concat([pool, pool]).speed.shape == (4, 468)


def test_render_can_reblur_the_layer_like_the_plate(rig, regions):
    H = W = 160
    dst = face(rig)
    frame = texture(H, W)
    x = torch.arange(W, dtype=torch.float32)
    donors = {0: DonorImage(frame + 0.1 * torch.sign(torch.sin(1.3 * x)), dst)}  # fine vertical stripes
    cheeks = [r for r in regions if r.name == "cheeks"]
    sharp, a1 = render_transfer(frame, dst, donors, one_frame_plan(cheeks), 0, cheeks)
    blurred, a2 = render_transfer(frame, dst, donors, one_frame_plan(cheeks), 0, cheeks, velocity=(8.0, 0.0))
    assert torch.equal(a1, a2)
    inside = (a1[0] > 0.99)[:, 1:] & (a1[0] > 0.99)[:, :-1]

    def dx(im):
        return (im[:, :, 1:] - im[:, :, :-1]).abs()[:, inside].mean()

    assert dx(blurred) < 0.5 * dx(sharp)


def test_depth_hides_the_far_cheek_behind_the_nose(rig, regions):
    yaw = math.radians(35)
    v = torch.tensor(rig.template)
    x = v[:, 0] * math.cos(yaw) + v[:, 2] * math.sin(yaw)
    z = -v[:, 0] * math.sin(yaw) + v[:, 2] * math.cos(yaw)
    H = W = 160
    dst = torch.stack([80 + 60 * x, 80 - 60 * v[:, 1]], 1)
    depth = -60 * z  # smaller = nearer
    tris = torch.as_tensor(rig.triangles)
    front = rasterize_barycentric(dst, tris, (H, W), depth).tri
    t = rig.template
    dorsum = torch.as_tensor(((np.abs(t[rig.triangles, 0]) < 0.1).all(1)) & (t[rig.triangles, 2].min(1) > 0.15))
    on_nose = (front >= 0) & dorsum[front.clamp_min(0)]
    frame = texture(H, W)
    donors = {0: DonorImage(1 - frame, dst)}
    cheeks = [r for r in regions if r.name == "cheeks"]
    _, flat = render_transfer(frame, dst, donors, one_frame_plan(cheeks), 0, cheeks)
    _, hidden = render_transfer(frame, dst, donors, one_frame_plan(cheeks), 0, cheeks, depth=depth)
    assert (flat[0][on_nose] > 0).sum() > 10  # without depth the far cheek is drawn over the nose
    assert (hidden[0][on_nose] == 0).all()
    assert (hidden > 0).sum() > 0.5 * (flat > 0).sum()  # the visible cheeks still transfer
