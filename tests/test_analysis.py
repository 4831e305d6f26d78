"""Expression analysis: face alignment, mouth/face measurements, the expression stage, reports,
and ``facepipe analyze`` on real footage (the grin of lp_d0_grin.mp4 reads as happy)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from facepipe.analysis import align, regions, report
from facepipe.analysis.expression import CLASSES, EmotionCurves, classifier_class

SHARED_CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"
GRIN = "lp_d0_grin.mp4"
GRIN_FRAMES = (25, 65)  # the wide grin (neutral before ~17 and after ~68)




# ---- alignment ------------------------------------------------------------------------------------


def test_alignment_puts_the_eyes_where_asked_and_levels_them():
    eyes = np.array([[100.0, 220.0], [180.0, 160.0]])  # tilted eye line, subject's right eye first
    m = align.alignment_matrix(eyes, 64, eye_dist=0.33, eye_y=0.27)
    mapped = (m[:, :2] @ eyes.T).T + m[:, 2]
    assert np.allclose(mapped[:, 1], mapped[0, 1])  # level
    assert np.isclose(mapped[1, 0] - mapped[0, 0], 0.33 * 64)
    assert np.isclose(mapped.mean(0)[0], 31.5) and np.isclose(mapped[0, 1], 0.27 * 64 - 0.5)
    assert np.isnan(align.alignment_matrix(np.full((2, 2), np.nan))).all()


def test_align_face_samples_the_right_pixels():
    # Two bright dots at the eye centres of a large image land on the crop's eye positions.
    img = np.zeros((900, 1200), np.float32)
    eyes = np.array([[500.0, 400.0], [700.0, 400.0]])
    for x, y in eyes:
        img[int(y) - 6 : int(y) + 7, int(x) - 6 : int(x) + 7] = 1.0
    crop = align.align_face(img, eyes, 64, 0.33, 0.27)
    assert crop.shape == (64, 64) and crop.dtype == np.float32
    ys, xs = np.unravel_index(np.argsort(crop.ravel())[-2:], crop.shape)
    assert set(np.round(xs).tolist()) <= {21, 22, 41, 42} and abs(ys.mean() - (0.27 * 64 - 0.5)) <= 1.0
    assert align.align_face(img, np.full((2, 2), np.nan)) is None


def test_eye_centres_on_mesh_and_ibug_points():
    rng = np.random.default_rng(0)
    mesh = rng.uniform(0, 100, (3, 478, 3))
    c = align.eye_centres(mesh)
    assert c.shape == (3, 2, 2)
    from facepipe.tracking.schemes import MESH_RIGHT_EYE

    assert np.allclose(c[:, 0], mesh[:, list(MESH_RIGHT_EYE), :2].mean(1))
    ibug = rng.uniform(0, 100, (68, 2))
    assert np.allclose(align.eye_centres(ibug, "ibug-68")[1], ibug[42:48].mean(0))


def test_align_faces_marks_frames_without_a_face():
    frames = np.random.default_rng(1).random((2, 3, 120, 160)).astype(np.float32)
    lms = np.full((2, 478, 3), np.nan, np.float32)
    from facepipe.tracking.schemes import MESH_LEFT_EYE, MESH_RIGHT_EYE

    lms[0, :, :] = 60.0
    lms[0, list(MESH_RIGHT_EYE), 0], lms[0, list(MESH_LEFT_EYE), 0] = 60.0, 100.0
    crops, valid = align.align_faces(frames, lms)
    assert crops.shape == (2, 1, 64, 64) and valid.tolist() == [True, False]
    assert 0 <= crops.min() and crops.max() <= 1 and not crops[1].any()


# ---- regions --------------------------------------------------------------------------------------


def _mesh_face(gap: float, iod: float = 100.0) -> np.ndarray:
    p = np.zeros((478, 3), np.float32)
    p[:, 0], p[:, 1] = 200.0, 200.0
    p[33, 0], p[263, 0] = 200 - iod / 2, 200 + iod / 2
    for up, lo in regions.MESH_LIP_GAP_PAIRS:
        p[up, 1], p[lo, 1] = 300.0, 300.0 + gap
    return p


def test_mouth_opening_is_lip_gap_over_face_size():
    lms = np.stack([_mesh_face(0.0), _mesh_face(30.0), _mesh_face(30.0, iod=50.0)])
    lms = np.concatenate([lms, np.full((1, 478, 3), np.nan, np.float32)])
    m = regions.mouth_opening(lms)
    assert np.allclose(m[:3], [0.0, 0.3, 0.6]) and np.isnan(m[3])


def test_hull_mask_grows_and_shrinks():
    pts = np.array([[50, 50], [150, 50], [150, 150], [50, 150]], np.float64)
    full = regions.hull_mask(pts, 200, 200)
    assert 100 * 100 <= full.sum() <= 102 * 102
    assert not regions.hull_mask(np.full((4, 2), np.nan), 200, 200).any()


def test_classifier_class_maps_request_names():
    assert classifier_class("surprised") == "surprise" and classifier_class("Happy") == "happy"
    assert classifier_class("contempt") is None
    with pytest.raises(ValueError, match="unknown emotion"):
        classifier_class("smug")


# ---- reports --------------------------------------------------------------------------------------


def _fake_result(t: int = 6, with_fit: bool = True):
    from facepipe.tracking.tracks import FaceTracks

    lms = np.stack([_mesh_face(5.0 * i) for i in range(t)])
    lms[2] = np.nan
    tracks = FaceTracks(
        frame_index=np.arange(t),
        landmarks=lms,
        landmarks_raw=lms.copy(),
        confidence=np.where(np.isfinite(lms[:, 0, 0]), 0.9, 0.0).astype(np.float32),
        pose=np.zeros((t, 3), np.float32),
        flags=np.where(np.isfinite(lms[:, 0, 0]), 0, 1).astype(np.int32),
        box=np.tile(np.array([100, 100, 300, 320], np.float32), (t, 1)),
        width=400,
        height=400,
    )
    probs = np.tile(np.eye(7, dtype=np.float32)[CLASSES.index("happy")] * 0.9 + 0.1 / 7, (t, 1))
    probs[2] = np.nan
    em = EmotionCurves(frame_index=np.arange(t), probs=probs, valid=np.isfinite(probs[:, 0]).astype(np.uint8))
    fit = None
    if with_fit:
        names = ["AU1", "AU12R", "AU12L", "AU26"]
        au = np.tile(np.array([0.1, 0.8, 0.6, 0.2], np.float32), (t, 1))
        fit = SimpleNamespace(
            au=au, au_names=names, valid=np.array([1, 1, 0, 1, 1, 1], np.uint8), residual=np.full(t, 0.01, np.float32)
        )
    info = SimpleNamespace(fps=Fraction(25), frame_count=t, width=400, height=400, path="x.mp4")
    return SimpleNamespace(
        clip=Path("x.mp4"),
        info=info,
        tracks=tracks,
        emotions=em,
        fit=fit,
        au_note="" if with_fit else "the 3D face fit (fit3d stage) is not available in this build",
    )


def test_records_follow_the_issue_schema_with_bilateral_aus():
    doc = report.document(_fake_result())
    assert doc["fps"] == "25" and doc["au_source"] == "fit3d" and "AU12" in doc["au_names"]
    f0, f2 = doc["frames"][0], doc["frames"][2]
    assert set(f0) >= {"index", "face", "confidence", "residual_iod", "au", "emotion", "pose"}
    assert f0["face"] is True and np.isclose(f0["au"]["AU12"], 0.7) and f0["dominant"] == "happy"
    assert set(f0["emotion"]) == set(CLASSES) and set(f0["pose"]) == {"yaw", "pitch", "roll"}
    # no face / not fitted: nulls, never made-up numbers
    assert f2["face"] is False and f2["emotion"] is None and f2["au"] is None and f2["pose"] is None
    assert "NO_FACE" in f2["flags"]
    json.dumps(doc, allow_nan=False)


def test_missing_aus_are_said_not_faked(tmp_path):
    doc = report.document(_fake_result(with_fit=False))
    assert doc["au_source"] is None and "not available" in doc["au_missing"]
    assert all(r["au"] is None for r in doc["frames"]) and doc["au_names"] == []
    csv_text = report.write_csv(doc, tmp_path / "a.csv").read_text().splitlines()
    assert csv_text[0].startswith("frame,time_s,face,confidence") and "P_happy" in csv_text[0]
    assert len(csv_text) == 1 + len(doc["frames"])
    png = report.write_plot(doc, tmp_path / "a.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


# ---- real footage -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grin_analysis(tmp_path_factory, fer_weights):
    if not (SHARED_CLIPS / GRIN).is_file():
        pytest.skip(f"shared footage not found at {SHARED_CLIPS / GRIN}")
    from facepipe.jobs.analyze import analyze

    out = tmp_path_factory.mktemp("grin")
    result = analyze(
        SHARED_CLIPS / GRIN,
        out_dir=out / "out",
        au=False,
        samples=6,
        workdir=out / "work",
        progress="off",
        log=lambda m: None,
    )
    return result


@pytest.mark.footage
def test_happy_peaks_inside_the_grin(grin_analysis):
    em = grin_analysis.emotions
    happy = em.probs[:, CLASSES.index("happy")]
    lo, hi = GRIN_FRAMES
    assert em.valid.all()
    assert lo <= int(np.nanargmax(happy)) <= hi
    assert np.nanmean(happy[lo : hi + 1]) > 0.7
    assert np.nanmax(np.r_[happy[:12], happy[72:]]) < 0.2  # neutral before and after
    dominant = em.dominant()
    assert sum(d == "happy" for d in dominant[lo : hi + 1]) >= 0.9 * (hi - lo + 1)


@pytest.mark.footage
def test_analyze_writes_json_csv_plot_and_sheet(grin_analysis):
    outs = grin_analysis.outputs
    assert set(outs) == {"json", "csv", "plot", "sheet"}
    doc = json.loads(outs["json"].read_text())
    assert doc["fps"] == "25" and len(doc["frames"]) == 78 and doc["au_missing"]
    assert doc["frames"][40]["dominant"] == "happy" and doc["frames"][40]["pose"]["yaw"] is not None
    for kind in ("plot", "sheet"):
        assert outs[kind].read_bytes()[:4] == b"\x89PNG"


@pytest.mark.footage
@pytest.mark.slow
def test_au12_and_happy_rise_together_on_the_grin(tmp_path, fer_weights):
    """With the 3D fit: AU12 (lip corner puller) is high exactly where the classifier says happy."""
    if not (SHARED_CLIPS / GRIN).is_file():
        pytest.skip(f"shared footage not found at {SHARED_CLIPS / GRIN}")
    from facepipe.jobs.analyze import run_analysis
    from facepipe.analysis.report import au_table

    res = run_analysis(SHARED_CLIPS / GRIN, workdir=tmp_path, progress="off", log=lambda m: None)
    if res.fit is None:
        pytest.skip(f"AU fit unavailable: {res.au_note}")
    au, names = au_table(res.fit.au, list(res.fit.au_names))
    au12 = au[:, names.index("AU12")]
    happy = res.emotions.probs[:, CLASSES.index("happy")]
    lo, hi = GRIN_FRAMES
    assert au12[lo : hi + 1].mean() > 0.4 > au12[:12].mean()
    assert np.corrcoef(au12, happy)[0, 1] > 0.8


def test_analyze_command_reports_a_user_error_in_one_line(tmp_path):
    from click.testing import CliRunner

    from facepipe.cli.analyze import analyze_command

    res = CliRunner().invoke(analyze_command, [str(tmp_path / "missing.mp4"), "--out-dir", str(tmp_path / "o")])
    assert res.exit_code != 0 and "error" in res.output and "Traceback" not in res.output
