"""The edited mesh of the render stage: per-AU edit gains, the forehead following the brows,
the lip gap kept (facepipe.render.geometry)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from facepipe.face import topology as tp
from facepipe.face.camera import project
from facepipe.face.model import load_model
from facepipe.render.geometry import EDIT_GAIN, EditGeometry, drawn_aus, edit_gains, edit_shapes, forehead_follow


@pytest.fixture(scope="module")
def model():
    return load_model()


def au_row(model, **values) -> np.ndarray:
    au = np.zeros(len(model.au_names), np.float32)
    for name, v in values.items():
        au[model.au_index(name)] = v
    return au


def frontal_shot(model, source_au: np.ndarray, T: int = 2):
    """A fit-like shot: the template face, frontal, 120 px per IOD; landmarks = its projection."""
    rot, tr, sc = np.zeros((T, 3), np.float32), np.tile([[256.0, 256.0, 0.0]], (T, 1)).astype(np.float32), np.full(T, 120.0, np.float32)
    au = np.tile(source_au, (T, 1))
    fit = SimpleNamespace(rotation=rot, translation=tr, scale=sc, identity=model.template.copy(), au=au)
    v = torch.from_numpy(model.shape(model.template, au))
    lm = project(v, torch.from_numpy(rot), torch.from_numpy(tr), torch.from_numpy(sc)).numpy()
    return fit, lm


def test_gains_are_per_facs_number_and_default_to_one(model):
    g = edit_gains(model.au_names, {12: 1.5, 5: 4.0})
    assert g[model.au_index("AU12L")] == g[model.au_index("AU12R")] == pytest.approx(1.5)
    assert g[model.au_index("AU5")] == pytest.approx(4.0) and g[model.au_index("AU25")] == 1.0
    shipped = edit_gains(model.au_names)
    for n, v in EDIT_GAIN.items():
        assert shipped[model.au_index(f"AU{n}" if f"AU{n}" in model.au_names else f"AU{n}L")] == pytest.approx(v)
    # speech AUs are never amplified: the plan keeps them, and so must the gain table
    assert not set(EDIT_GAIN) & {17, 18, 22, 23, 24, 25, 26, 27, 28}
    assert all(1.0 <= v <= 6.0 for v in EDIT_GAIN.values())


def test_edited_mesh_draws_the_planned_change_times_its_gain(model):
    src_au = au_row(model, AU12L=0.2, AU25=0.3)
    fit, lm = frontal_shot(model, src_au)
    target = np.tile(au_row(model, AU12L=0.8, AU25=0.3), (2, 1))
    geo = EditGeometry(model, lm, fit, target, np.ones(2, np.float32), np.arange(2), gain=edit_gains(model.au_names, {12: 1.5}))
    m = geo.meshes(np.arange(2))
    drawn = au_row(model, AU12L=0.2 + 1.5 * 0.6, AU25=0.3)  # the change 0.6 drawn at 1.5x
    expected = project(torch.from_numpy(model.shape(model.template, np.tile(drawn, (2, 1)))),
                       *(torch.from_numpy(a) for a in (fit.rotation, fit.translation, fit.scale))).numpy()
    corner = tp.MOUTH_CORNER_L
    np.testing.assert_allclose(m.dst[:, corner], expected[:, corner, :2], atol=1e-3)
    np.testing.assert_allclose(m.src[:, corner], lm[:, corner, :2], atol=1e-4)
    plain = EditGeometry(model, lm, fit, target, np.ones(2, np.float32), np.arange(2), gain=np.ones(len(model.au_names)))
    d_gain = np.linalg.norm(m.dst[0, corner] - m.src[0, corner])
    d_plain = np.linalg.norm(plain.meshes(np.arange(2)).dst[0, corner] - m.src[0, corner])
    assert d_gain == pytest.approx(1.5 * d_plain, rel=0.05)


def test_a_relaxed_au_is_drawn_down_to_the_rest_pose_never_past_it():
    """Gain on a relaxation: a full brow raise (AU1 1.0) relaxed to 0 by "happy" with gain 2 must
    be drawn at 0, not at -1 (a frown); a partial relaxation keeps its gain."""
    source = np.array([[1.0, 0.5, 0.2, 0.0]], np.float32)
    target = np.array([[0.0, 0.4, 0.6, 0.0]], np.float32)
    got = drawn_aus(source, target, np.array([2.0, 2.0, 2.0, 2.0], np.float32))
    np.testing.assert_allclose(got, [[0.0, 0.3, 1.0, 0.0]], atol=1e-6)
    assert np.array_equal(drawn_aus(source, target, np.ones(4, np.float32)), target)


def test_forehead_follows_the_brows_and_fades_to_the_mesh_top(model):
    follow = forehead_follow(model.template)
    top = int(np.argmax(model.template[:, 1]))
    assert tp.FOREHEAD in follow.vertices and 151 in follow.vertices
    assert follow.weight[list(follow.vertices).index(top)] == pytest.approx(0.0, abs=0.02)
    brow = set(tp.BROW_UPPER_R + tp.BROW_UPPER_L)
    assert set(follow.anchors.ravel()) <= brow and not set(follow.vertices) & brow
    np.testing.assert_allclose(follow.mix.sum(1), 1.0, atol=1e-6)
    y = model.template[follow.vertices, 1]
    order = np.argsort(y)
    assert np.all(np.diff(follow.weight[order][y[order] > 0.7]) <= 0.15), "weights fall towards the top"
    # a brow raise: the rig barely moves the forehead; following, its lower rows rise with the brow
    change = model.shape(None, au_row(model, AU1=2.0, AU2=1.8)) - model.template
    moved = follow.apply(change)
    row = [151, 108, 337]
    assert change[row, 1].mean() < 0.4 * change[[107, 336], 1].mean()
    assert moved[row, 1].mean() > 0.4 * moved[[107, 336], 1].mean()
    assert moved[tp.FOREHEAD, 1] == pytest.approx(change[tp.FOREHEAD, 1], abs=2e-3)
    others = np.setdiff1d(np.arange(model.n_vertices), follow.vertices)
    np.testing.assert_array_equal(moved[others], change[others])
    # what the render stage draws: the forehead moves up with the brows there too
    fit, lm = frontal_shot(model, au_row(model))
    target = np.tile(au_row(model, AU1=1.0, AU2=1.0), (2, 1))
    m = EditGeometry(model, lm, fit, target, np.ones(2, np.float32), np.arange(2)).meshes(np.arange(2))
    up = m.src[0, :, 1] - m.dst[0, :, 1]  # pixels, y down
    assert up[151] > 0.4 * up[107] > 0


def test_the_lid_raise_opens_the_eye_at_both_lids(model):
    cols, shapes = edit_shapes(model)
    au5 = list(cols).index(model.au_index("AU5"))
    lower = list(tp.LOWER_LID_R + tp.LOWER_LID_L)
    assert shapes[au5, lower, 1].min() < -0.015 and np.all(shapes[au5, lower, 1] <= 0)
    far = np.linalg.norm(model.template - model.template[tp.MOUTH_CORNER_R], axis=1) < 0.3
    assert not shapes[au5, far].any(), "the lower-lid drop stays around the eyes"
    # drawn: the upper lid rises (the rig), the lower lid drops (the edit-only part)
    fit, lm = frontal_shot(model, au_row(model))
    target = np.tile(au_row(model, AU5=0.6), (2, 1))
    m = EditGeometry(model, lm, fit, target, np.ones(2, np.float32), np.arange(2)).meshes(np.arange(2))
    up_mid, lo_mid = tp.UPPER_LID_R[3], tp.LOWER_LID_R[3]
    rise = m.src[0, up_mid, 1] - m.dst[0, up_mid, 1]  # pixels, y down
    drop = m.dst[0, lo_mid, 1] - m.src[0, lo_mid, 1]
    assert rise > 1.0 and drop > 1.0
    # no AU5 change, no drop: a smile's mesh is what the rig alone draws
    smile = np.tile(au_row(model, AU12L=1.0, AU12R=1.0), (2, 1))
    s_m = EditGeometry(model, lm, fit, smile, np.ones(2, np.float32), np.arange(2), gain=np.ones(len(model.au_names)))
    expected = project(torch.from_numpy(model.shape(model.template, smile)),
                       *(torch.from_numpy(a) for a in (fit.rotation, fit.translation, fit.scale))).numpy()
    np.testing.assert_allclose(s_m.meshes(np.arange(2)).dst[0, lo_mid], expected[0, lo_mid, :2], atol=1e-3)


def eye_opening(mesh: np.ndarray) -> float:
    """Mean of both eyes' middle lid distance, px, of a (N,2) mesh in pixels."""
    return float(np.mean([mesh[lo, 1] - mesh[up, 1] for up, lo in ((tp.UPPER_LID_R[3], tp.LOWER_LID_R[3]),
                                                                    (tp.UPPER_LID_L[3], tp.LOWER_LID_L[3]))]))


def test_a_smile_narrows_the_eye(model):
    """The rig's AU6 drops the eye corners and leaves the upper lid, so drawn alone it opened the
    eye; real grins narrow it (tracked), and so does the drawn AU6 with the edit-only part."""
    fit, lm = frontal_shot(model, au_row(model))
    target = np.tile(au_row(model, AU6=1.0), (2, 1))
    ones = np.ones(2, np.float32)
    drawn = EditGeometry(model, lm, fit, target, ones, np.arange(2)).meshes(np.arange(2))
    src_open, dst_open = eye_opening(drawn.src[0]), eye_opening(drawn.dst[0])
    assert dst_open < 0.95 * src_open
    rig_only = EditGeometry(model, lm, fit, target, ones, np.arange(2))
    rig_only.shape_cols, rig_only.shapes = np.zeros(0, np.int64), None
    assert eye_opening(rig_only.meshes(np.arange(2)).dst[0]) > src_open
    # the part added to the rig's stays on the eyes
    cols, shapes = edit_shapes(model)
    au6 = shapes[list(cols).index(model.au_index("AU6"))]
    far = np.linalg.norm(model.template - model.template[tp.MOUTH_CORNER_R], axis=1) < 0.5
    assert not au6[far].any()
    upper, lower = list(tp.UPPER_LID_R + tp.UPPER_LID_L), list(tp.LOWER_LID_R + tp.LOWER_LID_L)
    assert np.abs(au6[lower, 1]).max() < 0.1 * np.abs(au6[upper, 1]).max()  # the rig's lower lid stays the rig's
