"""The face model: topology, template, camera, and the locality of every AU blendshape."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from facepipe.face import topology as tp
from facepipe.face.model import load_model
from facepipe.face.rig import AU_NAMES, AU_SPECS

REQUIRED_AUS = ["AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12L", "AU12R", "AU14L", "AU14R",
                "AU15", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26", "AU27", "AU45L", "AU45R"]  # fmt: skip


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_rig_has_the_required_aus(model):
    assert set(REQUIRED_AUS) <= set(model.au_names)
    assert model.au_names == AU_NAMES
    assert model.au_deltas.shape == (len(AU_NAMES), tp.N_VERTICES, 3)
    assert np.isfinite(model.au_deltas).all()


def test_triangles_come_from_the_mediapipe_tessellation(model):
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    fresh = tp.triangles_from_edges(FACEMESH_TESSELATION)
    assert {tuple(sorted(t)) for t in model.triangles} == {tuple(t) for t in fresh}
    # Every tessellation edge is used, none by more than two faces (a manifold surface with
    # holes at the eyes and mouth).
    edges = tp.mesh_edges(model.triangles)
    assert {tuple(e) for e in edges} == {tuple(sorted(e)) for e in FACEMESH_TESSELATION}
    directed = np.concatenate([model.triangles[:, [0, 1]], model.triangles[:, [1, 2]], model.triangles[:, [2, 0]]])
    assert len({tuple(e) for e in directed}) == len(directed), "winding is not consistent"
    normals = tp.face_normals(model.template, model.triangles)
    assert (normals[:, 2] > 0).mean() > 0.8  # the face looks towards +Z


def test_template_is_symmetric_and_in_canonical_units(model):
    t = model.template
    assert np.linalg.norm(t[tp.EYE_OUTER_L] - t[tp.EYE_OUTER_R]) == pytest.approx(1.0, abs=1e-5)
    assert (model.mirror[model.mirror] == np.arange(len(t))).all()
    assert np.abs(t[model.mirror] * (-1, 1, 1) - t).max() < 1e-5
    assert t[tp.FOREHEAD, 1] > t[tp.NOSE_TIP, 1] > t[tp.CHIN, 1]  # Y up
    assert t[tp.NOSE_TIP, 2] > t[tp.EYE_OUTER_L, 2]  # Z out of the face
    assert t[tp.EYE_OUTER_L, 0] > 0 > t[tp.EYE_OUTER_R, 0]  # X to the subject's left
    assert model.rigid_weights[tp.NOSE_TIP] > model.rigid_weights[tp.LIP_INNER_LOWER]


def test_rotation_and_projection():
    import torch
    from scipy.spatial.transform import Rotation

    from facepipe.face.camera import (
        matrix_to_rotvec,
        project,
        rotvec_to_matrix,
        similarity_align,
    )

    rv = np.array([[0.0, 0.0, 0.0], [0.3, -0.2, 0.1], [1e-9, 0.0, 0.0]])
    r = rotvec_to_matrix(torch.tensor(rv, dtype=torch.float64)).numpy()
    assert np.allclose(r, Rotation.from_rotvec(rv).as_matrix(), atol=1e-9)
    assert np.allclose(matrix_to_rotvec(r), rv, atol=1e-9)

    v = torch.tensor(load_model().template[None].repeat(3, 0), dtype=torch.float64)
    px = project(v, torch.tensor(rv), torch.tensor([[100.0, 200.0, 0.0]] * 3, dtype=torch.float64),
                 torch.tensor([80.0, 90.0, 100.0], dtype=torch.float64))  # fmt: skip
    # Y up in the model is y down in the image.
    assert px[0, tp.FOREHEAD, 1] < px[0, tp.CHIN, 1]
    from facepipe.face.camera import image_to_camera

    rr, s, _ = similarity_align(v[0].numpy(), image_to_camera(px.numpy()))
    assert np.allclose(s, [80, 90, 100], rtol=1e-6)
    assert np.allclose(matrix_to_rotvec(rr), rv, atol=1e-6)


# Where each AU may act, in the canonical template (X to the subject's left, Y up, IOD units):
# (vertical zone, side). Zones: "upper" above the nose (brows, forehead), "eyes" around the eye
# openings, "mid" from the brows down to the upper lip (cheeks, nose, crow's feet), "lower"
# below the nose.
ZONES = {
    "AU1": ("upper", "both"), "AU2": ("upper", "both"), "AU4": ("upper", "both"), "AU5": ("eyes", "both"),
    "AU6": ("mid", "both"), "AU7": ("eyes", "both"), "AU9": ("mid", "both"), "AU10": ("lower", "both"),
    "AU12R": ("lower", "R"), "AU12L": ("lower", "L"), "AU14R": ("lower", "R"), "AU14L": ("lower", "L"),
    "AU15": ("lower", "both"), "AU17": ("lower", "both"), "AU18": ("lower", "both"), "AU20": ("lower", "both"),
    "AU22": ("lower", "both"), "AU23": ("lower", "both"), "AU24": ("lower", "both"), "AU25": ("lower", "both"),
    "AU26": ("lower", "both"), "AU27": ("lower", "both"), "AU30R": ("lower", "both"), "AU30L": ("lower", "both"),
    "AU34": ("lower", "both"), "AU45R": ("eyes", "R"), "AU45L": ("eyes", "L"),
}  # fmt: skip


def _zone_mask(t: np.ndarray, zone: str, side: str) -> np.ndarray:
    y_nose = t[tp.NOSE_TIP, 1]
    eye_y = t[[tp.EYE_OUTER_R, tp.EYE_OUTER_L], 1].mean()
    if zone == "upper":
        m = t[:, 1] > y_nose + 0.15
    elif zone == "eyes":
        m = np.abs(t[:, 1] - eye_y) < 0.3
    elif zone == "mid":
        m = (t[:, 1] < eye_y + 0.35) & (t[:, 1] > t[tp.LIP_INNER_UPPER, 1] - 0.1)
    else:
        m = t[:, 1] < y_nose + 0.1
    # One-sided AUs may reach a little past the midline (a mouth corner drags the middle of
    # the lips along).
    if side == "R":
        m &= t[:, 0] < 0.15
    elif side == "L":
        m &= t[:, 0] > -0.15
    return m


def test_every_au_has_a_documented_zone():
    assert set(ZONES) == set(AU_NAMES)
    assert [s.name for s in AU_SPECS] == list(AU_NAMES)


@pytest.mark.parametrize("name", AU_NAMES)
def test_changing_one_au_moves_only_its_region(model, name):
    """On a 'fitted' frame (identity offset, head pose, several AUs on), raising one AU moves
    exactly the vertices of its region, in image space too, and those lie where the AU acts."""
    import torch

    from facepipe.face.camera import project

    rng = np.random.default_rng(0)
    k = model.au_index(name)
    identity = model.template + 0.02 * rng.standard_normal(model.template.shape).astype(np.float32)
    au = rng.uniform(0.0, 0.5, len(model.au_names)).astype(np.float32)
    au2 = au.copy()
    au2[k] += 0.5
    pose = (torch.tensor([[0.1, -0.2, 0.05]]), torch.tensor([[256.0, 250.0, 0.0]]), torch.tensor([120.0]))
    before, after = (project(torch.from_numpy(model.shape(identity, a[None])), *pose)[0].numpy() for a in (au, au2))
    moved = np.linalg.norm(after - before, axis=-1) > 1e-4
    region = np.abs(model.au_deltas[k]).sum(-1) > 0
    assert moved.any()
    assert not (moved & ~region).any(), f"{name} moves vertices outside its region"
    zone = _zone_mask(model.template, *ZONES[name])
    strong = np.linalg.norm(model.au_deltas[k], axis=-1) > 0.1 * np.linalg.norm(model.au_deltas[k], axis=-1).max()
    assert not (strong & ~zone).any(), f"{name} acts outside the {ZONES[name]} zone"
    # Symmetric AUs act on both sides alike; one-sided ones on their own side.
    side = ZONES[name][1]
    x = model.template[:, 0]
    mag = np.linalg.norm(model.au_deltas[k], axis=-1)
    if side == "both":
        assert mag[x < -0.05].sum() == pytest.approx(mag[x > 0.05].sum(), rel=1e-3)
    else:
        own, other = (x < 0, x > 0) if side == "R" else (x > 0, x < 0)
        assert mag[own].sum() > 5 * mag[other].sum()


INNER_BROW_R = [107, 66, 55, 65]  # mediapipe: the subject's right inner brow
OUTER_BROW_R = [63, 53]


def test_inner_brow_rises_and_draws_in_when_au1_and_au4_combine(model):
    """FACS 1+4 (sad, fear): the inner brows rise and are drawn together while the outer brow
    lowers. Summed linearly, AU4's lowering would cancel AU1's raise."""

    def brow(**values):
        au = np.zeros(len(model.au_names), np.float32)
        for name, v in values.items():
            au[model.au_index(name)] = v
        moved = model.shape(None, au) - model.template
        return moved[INNER_BROW_R].mean(0), moved[OUTER_BROW_R].mean(0)

    inner_1, _ = brow(AU1=1.0)
    inner_4, _ = brow(AU4=1.0)
    inner_14, outer_14 = brow(AU1=1.0, AU4=1.0)
    assert inner_4[1] < 0 < inner_1[1]
    assert inner_14[1] > 0.9 * inner_1[1], "AU1 wins the inner brow's height in 1+4"
    assert inner_14[0] > inner_1[0], "AU4 still draws the (right) inner brow toward the midline"
    assert outer_14[1] < -0.01, "AU4 still lowers the outer brow"
    # At the sad prototype's intensities (1D + 4C) the raise is most of 1D's, not a fraction.
    inner_sad, _ = brow(AU1=0.8, AU4=0.6)
    assert inner_sad[1] > 0.75 * brow(AU1=0.8)[0][1]


def test_corrective_saturates_when_the_dominant_au_is_driven_above_one(model):
    """An edit's gain drives AU1 above 1 (sad: 1E x gain 2): the 1+4 corrective removes AU4's
    lowering where AU1 acts, all of it at AU1 >= 1 and never more (the product alone would lift
    the inner brow by AU4's own depth again at AU1 = 2)."""
    import torch

    from facepipe.face.model import blend

    def at(**values):
        au = np.zeros(len(model.au_names), np.float32)
        for name, v in values.items():
            au[model.au_index(name)] = v
        return au

    i, j = model.au_index("AU1"), model.au_index("AU4")
    lifted = model.shape(None, at(AU1=2.0, AU4=1.0)) - model.shape(None, at(AU1=2.0))
    expected = model.au_deltas[j] + 1.0 * model.combination_deltas[0]  # the corrective's weight: min(2, 1) x 1
    np.testing.assert_allclose(lifted, expected, atol=1e-6)
    assert lifted[INNER_BROW_R, 1].mean() <= 1e-4, "AU4 does not raise the inner brow"
    # within [0, 1] (every fit) the corrective is the plain product
    low = at(AU1=0.7, AU4=0.5)
    plain = model.template + np.tensordot(low, model.au_deltas, 1) + 0.7 * 0.5 * model.combination_deltas[0]
    np.testing.assert_allclose(model.shape(None, low), plain, atol=1e-6)
    both = np.stack([at(AU1=2.0, AU4=1.0), low])
    got = blend(torch.from_numpy(model.template), torch.from_numpy(both), torch.from_numpy(model.au_deltas),
                torch.from_numpy(model.combination_pairs), torch.from_numpy(model.combination_deltas))
    np.testing.assert_allclose(got.numpy(), model.shape(None, both), atol=1e-5)
    assert tuple(model.combination_pairs[0]) == (i, j)


def test_corrective_shapes_match_between_numpy_and_torch(model):
    import torch

    from facepipe.face.model import blend

    assert len(model.combination_pairs), "the shipped rig carries its corrective shapes"
    au = np.random.default_rng(1).uniform(0, 1, (3, len(model.au_names))).astype(np.float32)
    expected = model.shape(None, au)
    got = blend(torch.from_numpy(model.template), torch.from_numpy(au), torch.from_numpy(model.au_deltas),
                torch.from_numpy(model.combination_pairs), torch.from_numpy(model.combination_deltas))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)


def test_rig_saves_and_loads_its_corrective_shapes(model, tmp_path):
    path = tmp_path / "rig.npz"
    model.save(path)
    again = load_model(path)
    np.testing.assert_array_equal(again.combination_pairs, model.combination_pairs)
    np.testing.assert_array_equal(again.combination_deltas, model.combination_deltas)
    # A rig saved before correctives existed loads with none, and is purely linear.
    old = tmp_path / "old_rig.npz"
    np.savez(old, **{k: v for k, v in np.load(path).items() if not k.startswith("combination_")})
    bare = load_model(old)
    assert len(bare.combination_pairs) == 0
    au = np.full(len(model.au_names), 0.5, np.float32)
    linear = model.template + np.tensordot(au, model.au_deltas, axes=(0, 0))
    np.testing.assert_allclose(bare.shape(None, au), linear, atol=1e-6)


SHAPE_BYTES = """
import sys
import numpy as np
from facepipe.face.model import load_model
m = load_model()
au = np.random.default_rng(0).random((15, len(m.au_names)), dtype=np.float32)
sys.stdout.buffer.write(m.shape(m.template, au).tobytes())
"""


def test_shapes_are_the_same_bits_whatever_the_blas_thread_count():
    # A farm worker runs BLAS on 1 thread, a workstation on all cores; through BLAS the blend's sums
    # differed with the thread count (OpenBLAS on AMD EPYC: one pixel of a farm chunk 1 code value off).
    out = []
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        out.append(subprocess.run([sys.executable, "-c", SHAPE_BYTES], env=env, capture_output=True, check=True).stdout)
    assert len(out[0]) == 15 * 468 * 3 * 4 and out[0] == out[1]
