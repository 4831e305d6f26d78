"""The fit on real footage: residuals, and AU curves that mean what they say.

Frame ranges were read off contact sheets of the clips (see facepipe/face/AUS.md). Landmarks
come from mediapipe FaceMesh via a private helper and are cached under /tmp between runs.
Skipped when ``../shared/data`` is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from facepipe.face import topology as tp

pytestmark = pytest.mark.footage

_FITS: dict = {}


# Frames used per clip: whole clips, but at most 200 frames (about 2 s of fitting each).
MAX_FRAMES = 200


def fit_clip(clips_dir, stem: str):
    """(fit, landmarks) of the first MAX_FRAMES frames of a clip, fitted once per session."""
    if stem not in _FITS:
        from facepipe.face.mesh_landmarks import clip_landmarks
        from facepipe.face.fit import fit_shot
        from facepipe.io.media import probe

        frames = np.arange(min(MAX_FRAMES, probe(str(clips_dir / f"{stem}.mp4")).frame_count))
        lm, conf, size = clip_landmarks(str(clips_dir / f"{stem}.mp4"), frames)
        _FITS[stem] = (fit_shot(lm, conf, size), lm)
    return _FITS[stem]


def lip_gap(lm: np.ndarray) -> np.ndarray:
    """(T,) inner-lip opening / inter-ocular distance, measured on the landmarks."""
    iod = np.linalg.norm(lm[:, tp.EYE_OUTER_L] - lm[:, tp.EYE_OUTER_R], axis=-1)
    return np.linalg.norm(lm[:, tp.LIP_INNER_UPPER] - lm[:, tp.LIP_INNER_LOWER], axis=-1) / iod


def au(fit, name: str) -> np.ndarray:
    return fit.au[:, fit.au_names.index(name)]


@pytest.mark.parametrize("stem", ["lp_d0_grin", "lp_d7_blink_brow", "lp_d18_yawn", "hdtf_edmarkey_talk"])
def test_median_residual_below_two_percent_of_iod(shared_clips, stem):
    fit, _ = fit_clip(shared_clips, stem)
    assert fit.valid.all()
    assert np.nanmedian(fit.residual) < 0.02
    assert np.nanpercentile(fit.residual, 95) < 0.03


def test_grin_shows_as_au12_and_au6(shared_clips):
    fit, _ = fit_clip(shared_clips, "lp_d0_grin")
    grin, rest = slice(28, 62), np.r_[0:12, 70:78]
    for name in ("AU12L", "AU12R", "AU6"):
        a = au(fit, name)
        assert np.median(a[grin]) > 0.5, name
        assert a[rest].max() < 0.2, name


@pytest.mark.parametrize(
    "stem", ["hdtf_aoc_talk", "hdtf_edmarkey_talk", "lp_d3_talk_glasses", "lp_d13_portrait_phone"]
)
def test_mouth_opening_aus_follow_the_lip_gap(shared_clips, stem):
    from facepipe.face.model import load_model

    fit, lm = fit_clip(shared_clips, stem)
    model = load_model()
    # The lip gap each opening AU makes at intensity 1, from the rig itself.
    gain = {n: float(np.linalg.norm(model.au_deltas[model.au_index(n), tp.LIP_INNER_UPPER]
                                    - model.au_deltas[model.au_index(n), tp.LIP_INNER_LOWER]))
            for n in ("AU25", "AU26", "AU27")}  # fmt: skip
    opening = sum(g * au(fit, n) for n, g in gain.items())
    assert np.corrcoef(opening, lip_gap(lm))[0, 1] > 0.9


def test_blink_shows_as_au45(shared_clips):
    fit, _ = fit_clip(shared_clips, "lp_d7_blink_brow")
    blink, closed, open_ = slice(3, 8), slice(70, 83), np.r_[10:21, 60:67, 88:95]
    for name in ("AU45L", "AU45R"):
        a = au(fit, name)
        assert a[blink].max() > 0.5, name  # a quick blink: the lids half way down at 30 fps
        assert a[closed].min() > 0.8, name  # eyes held shut
        assert a[open_].max() < 0.25, name


def test_brow_raise_shows_as_au1_and_au2(shared_clips):
    fit, _ = fit_clip(shared_clips, "lp_d7_blink_brow")
    raised, rest = slice(132, 157), slice(10, 21)
    for name in ("AU1", "AU2"):
        a = au(fit, name)
        assert np.median(a[raised]) > 0.5, name
        assert np.median(a[rest]) < 0.2, name


@pytest.mark.slow
def test_track_then_fit3d_through_the_runner(shared_clips):
    from facepipe.io.media import probe
    from facepipe.pipeline.context import RunContext
    from facepipe.pipeline.graph import Graph
    from facepipe.stages.decode import DecodeStage
    from facepipe.stages.deblur import DeblurStage
    from facepipe.stages.fit3d import Fit3DStage
    from facepipe.stages.track import TrackStage

    ctx = RunContext(media=probe(str(shared_clips / "lp_d0_grin.mp4")), cache=None, progress_mode="off")
    fit = Graph([DecodeStage(), DeblurStage(), TrackStage(), Fit3DStage()], ctx).get("fit3d")
    assert fit.valid.all() and np.nanmedian(fit.residual) < 0.02
    assert list(fit.frame_index) == list(range(78))
    assert au(fit, "AU12L")[28:62].mean() > 0.5 and au(fit, "AU12L")[:12].max() < 0.2
