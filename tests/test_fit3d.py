"""Fitting the face model to landmarks: recovery on synthetic shots, robustness, determinism,
the fit3d stage and the exports. No footage needed (see test_fit3d_footage.py for real clips)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from facepipe.face.fit import FitConfig, fit_shot
from facepipe.face.model import load_model

T = 48
W, H = 512, 480


def synthetic_shot(model, seed: int = 0):
    """Landmarks (T,478,3) px rendered from known parameters, plus those parameters."""
    import torch

    from facepipe.face.camera import project

    rng = np.random.default_rng(seed)
    t = np.arange(T)
    au = np.zeros((T, len(model.au_names)), np.float32)

    def bump(centre, width):
        return np.exp(-0.5 * ((t - centre) / width) ** 2)

    au[:, model.au_index("AU12R")] = au[:, model.au_index("AU12L")] = 0.8 * bump(14, 5)
    au[:, model.au_index("AU26")] = 0.7 * bump(34, 4)
    au[:, model.au_index("AU45L")] = au[:, model.au_index("AU45R")] = bump(24, 1.2)
    au[:, model.au_index("AU1")] = 0.6 * bump(40, 4)
    identity = (model.template + 0.015 * rng.standard_normal((model.n_vertices, 3))).astype(np.float32)
    rot = np.stack([0.1 * np.sin(t / 9), 0.25 * np.sin(t / 13), 0.05 * np.cos(t / 7)], 1)
    trans = np.stack([W / 2 + 10 * np.sin(t / 10), H / 2 + 5 * np.cos(t / 8), np.zeros(T)], 1)
    scale = 150 + 10 * np.sin(t / 15)
    verts = torch.from_numpy(model.shape(identity, au))
    lm = project(verts, *(torch.tensor(a, dtype=torch.float32) for a in (rot, trans, scale))).numpy()
    lm = lm + rng.normal(0, 0.3, lm.shape).astype(np.float32)  # sub-pixel tracker noise
    lm = np.concatenate([lm, lm[:, :10]], 1)  # 478 points, as with refine_landmarks (irises unused)
    return lm.astype(np.float32), np.ones(T, np.float32), {"au": au, "rot": rot, "scale": scale}


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def shot(model):
    return synthetic_shot(model)


@pytest.fixture(scope="module")
def fitted(model, shot):
    lm, conf, _ = shot
    return fit_shot(lm, conf, (W, H), model)


def test_fit_recovers_a_synthetic_shot(model, shot, fitted):
    _, _, truth = shot
    assert np.nanmedian(fitted.residual) < 0.01
    for name in ("AU12R", "AU26", "AU45L", "AU1"):
        k = model.au_index(name)
        r = np.corrcoef(fitted.au[:, k], truth["au"][:, k])[0, 1]
        assert r > 0.9, (name, r)
        assert fitted.au[:, k].max() > 0.5 * truth["au"][:, k].max()
    idle = [k for k, n in enumerate(model.au_names) if truth["au"][:, k].max() == 0]
    assert np.percentile(fitted.au[:, idle], 95) < 0.15
    assert np.abs(fitted.scale - truth["scale"]).max() / truth["scale"].mean() < 0.05
    assert np.abs(fitted.rotation - truth["rot"]).max() < 0.08


def test_fit_shapes_and_bounds(model, fitted):
    k = len(model.au_names)
    assert fitted.identity.shape == (468, 3)
    assert fitted.rotation.shape == (T, 3) and fitted.translation.shape == (T, 3) and fitted.scale.shape == (T,)
    assert fitted.au.shape == (T, k) and fitted.au_names == list(model.au_names)
    assert fitted.au.min() >= 0 and fitted.au.max() <= 1
    assert fitted.residual.shape == (T,) and fitted.valid.all()
    assert fitted.image_vertices(model, [3]).shape == (1, 468, 3)


def test_fit_is_deterministic(model, shot, fitted):
    lm, conf, _ = shot
    again = fit_shot(lm, conf, (W, H), model)
    for f in ("identity", "rotation", "translation", "scale", "au", "residual"):
        assert np.array_equal(getattr(again, f), getattr(fitted, f)), f


def test_bad_frames_get_no_weight_and_interpolated_parameters(model, shot):
    lm, conf, _ = shot
    lm = lm.copy()
    conf = conf.copy()
    lm[20:23] = np.nan  # no face
    lm[30, :100] += 60.0  # garbage landmarks, but flagged by low confidence
    conf[30] = 0.1
    fit = fit_shot(lm, conf, (W, H), model, FitConfig(iterations=150))
    assert not fit.valid[20:23].any() and not fit.valid[30] and fit.valid[19]
    assert np.isnan(fit.residual[[20, 21, 22, 30]]).all()
    assert np.isfinite(fit.au).all() and np.isfinite(fit.rotation).all()
    # Interpolated between the neighbours.
    for p in (fit.rotation, fit.translation, fit.scale, fit.au):
        mid = 0.5 * (p[19] + p[23])
        assert np.allclose(p[21], mid, atol=1e-4)
    assert np.nanmedian(fit.residual) < 0.01


def test_no_usable_frame_is_an_error(model, shot):
    lm, conf, _ = shot
    with pytest.raises(ValueError, match="no frame"):
        fit_shot(lm, np.zeros_like(conf), (W, H), model)


def test_cuts_stop_temporal_smoothing(model, shot):
    lm, conf, _ = shot
    lm = lm.copy()
    lm[24:, :, 0] += 120.0  # the second shot frames the actor elsewhere
    fit = fit_shot(lm, conf, (W, H), model, FitConfig(iterations=150), cuts=[24])
    assert np.nanmax(fit.residual) < 0.02  # no smearing of the jump across the cut


def test_stage_fits_tracks_and_the_artifact_round_trips(model, shot, tmp_path):
    from facepipe.pipeline.progress import SilentProgress
    from facepipe.face.shot import FaceFit
    from facepipe.stages.fit3d import Fit3DStage
    from facepipe.tracking.tracks import FaceTracks, Flag

    lm, conf, _ = shot
    flags = np.zeros(T, np.int32)
    flags[5] = int(Flag.PROFILE)
    tracks = FaceTracks(frame_index=np.arange(100, 100 + T), landmarks=lm, confidence=conf, flags=flags,
                        shot_cuts=np.zeros(0, np.int64), width=W, height=H)  # fmt: skip
    ctx = SimpleNamespace(device="cpu", progress=lambda total, desc: SilentProgress(), log=print)
    stage = Fit3DStage(iterations=120)
    fit = stage.run(ctx, {"track": tracks})
    assert isinstance(fit, FaceFit)
    assert not fit.valid[5] and fit.valid[4]  # the tracker's unusable frame is not fitted
    assert list(fit.frame_index[:2]) == [100, 101]
    assert "rig" in stage.params() and len(stage.params()["rig"]) == 16
    fit.save(tmp_path / "fit")
    back = FaceFit.load(tmp_path / "fit")
    assert back.au_names == fit.au_names and back.image_size == [W, H]
    assert np.array_equal(back.au, fit.au) and np.array_equal(back.valid, fit.valid)
    assert np.array_equal(back.residual, fit.residual, equal_nan=True)


def test_stage_refuses_68_point_tracks():
    from facepipe.errors import FacepipeError
    from facepipe.stages.fit3d import Fit3DStage
    from facepipe.tracking.tracks import FaceTracks

    tracks = FaceTracks(frame_index=np.arange(3), landmarks=np.zeros((3, 68, 3), np.float32),
                        confidence=np.ones(3, np.float32), flags=np.zeros(3, np.int32), width=64, height=64)  # fmt: skip
    with pytest.raises(FacepipeError, match="468-point"):
        Fit3DStage().run(SimpleNamespace(device="cpu"), {"track": tracks})
