"""The evaluation harness: each measure on synthetic numbers, then whole evaluations of a
pass-through edit and of deliberately broken ones (frames shifted by 5, face blurred)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facepipe.analysis.expression import CLASSES
from facepipe.evaluation import measures as ms

SHARED_CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"
TALK = "dpe_d_256_noaudio.mp4"  # 256x256 talking head: small, so tracking is quick
TALK_FRAMES = "0-59"




# ---- measures on synthetic numbers -------------------------------------------------------------------


def _onehot(cls: str, t: int, p: float = 0.8) -> np.ndarray:
    out = np.full((t, 7), (1 - p) / 6)
    out[:, CLASSES.index(cls)] = p
    return out


def test_emotion_stats_show_the_target_and_the_distributions():
    before = _onehot("neutral", 10)
    after = np.concatenate([_onehot("happy", 6), _onehot("sad", 4)])
    s = ms.emotion_stats(before, after, "happy")
    assert s["frames"] == 10 and np.isclose(s["mean_after"], 0.6 * 0.8 + 0.4 * 0.2 / 6, atol=1e-3)
    assert s["rose"] == 0.6 and s["top_share_before"] == 0.0 and s["top_share_after"] == 0.6
    assert s["top_before"]["neutral"] == 1.0 and s["top_after"] == {
        **{c: 0.0 for c in CLASSES},
        "happy": 0.6,
        "sad": 0.4,
    }
    assert s["mean_change"]["sad"] > 0  # the side effect is visible, not hidden in one number
    nan_row = after.copy()
    nan_row[0] = np.nan
    assert ms.emotion_stats(before, nan_row, "happy")["frames"] == 9
    assert ms.emotion_stats(before, after, None)["mean_after"] is None


def test_au_fidelity_is_measured_over_planned_change():
    t = 20
    src = np.zeros((t, 3))
    plan = np.zeros((t, 3))
    plan[:, 0] = np.linspace(0, 0.8, t)  # AU A planned up
    edited = src.copy()
    edited[:, 0] = 0.5 * plan[:, 0]  # half of it happened
    edited[:, 2] = 0.1  # an AU the plan leaves alone drifted
    r = ms.au_fidelity(src, edited, plan, ["A", "B", "C"])
    assert list(r["per_au"]) == ["A"] and np.isclose(r["per_au"]["A"]["ratio"], 0.5)
    assert np.isclose(r["overall"], 0.5) and np.isclose(r["unplanned_drift"], 0.05)
    assert ms.au_fidelity(src, src, src, ["A", "B", "C"])["overall"] is None  # nothing planned


def test_speech_correlation_finds_a_time_shift():
    t = np.arange(120)
    rng = np.random.default_rng(0)
    mouth = np.convolve(rng.random(130), np.ones(4) / 4, "same")[:120]
    shifted = np.r_[mouth[5:], np.repeat(mouth[-1], 5)]
    same = ms.speech_correlation(mouth, mouth + 0.001 * np.sin(t))
    late = ms.speech_correlation(mouth, shifted)
    assert same["corr"] > 0.99 and same["best_lag"] == 0
    assert late["corr"] < 0.6 and late["best_lag"] == -5 and late["corr_at_best_lag"] > 0.95
    assert np.isnan(ms.pearson([1, 2], [1, 2])) and np.isnan(ms.pearson(np.ones(5), np.arange(5)))


def test_pixel_measures():
    import cv2

    rng = np.random.default_rng(0)
    img = rng.random((64, 64)).astype(np.float32)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    sharp = ms.laplacian_variance(img, mask)
    assert ms.laplacian_variance(cv2.GaussianBlur(img, (0, 0), 2), mask) < 0.1 * sharp
    assert np.isnan(ms.laplacian_variance(img, np.zeros_like(mask)))
    assert ms.mean_abs_change(img, img + 0.25, mask) == pytest.approx(0.25)
    a = rng.random((3, 64, 64))
    assert ms.psnr_from_sse(*ms.masked_sse(a, a, mask)) == ms.PSNR_CAP
    sse, n = ms.masked_sse(a, a + 0.01, ~mask)
    assert n == 3 * (~mask).sum() and ms.psnr_from_sse(sse, n) == pytest.approx(40.0)
    assert ms.psnr_from_sse(0.0, 0) is None
    assert ms.ratio([2.0, np.nan], [1.0, 5.0]) == 2.0 and ms.ratio([1.0], [np.nan]) is None


def _moving_face(t: int = 12, h: int = 160, w: int = 200, step=(1.3, 0.7)):
    """A textured plate translating by ``step`` px per frame, and an elliptic "face" region that
    moves with it: frames (T,3,H,W) float32 0..1, regions (T,H,W) bool, face centres (T,2) x,y."""
    import cv2

    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.random((2 * h, 2 * w, 3)).astype(np.float32), (0, 0), 3)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    yy, xx = np.mgrid[0:h, 0:w]
    frames, regions, centres = [], [], []
    for k in range(t):
        dx, dy = step[0] * k, step[1] * k
        m = np.float32([[1, 0, 20 + dx], [0, 1, 15 + dy]])  # frame pixel x shows texture x + 20 + dx
        frames.append(cv2.warpAffine(tex, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP).transpose(2, 0, 1))
        cx, cy = 100 - dx, 80 - dy
        regions.append(((xx - cx) / 40) ** 2 + ((yy - cy) / 50) ** 2 <= 1)
        centres.append((cx, cy))
    return np.stack(frames).astype(np.float32), np.stack(regions), np.array(centres)


def test_flow_follows_the_motion_and_warps_the_previous_frame_onto_the_current():
    import torch

    frames, regions, _ = _moving_face(t=2, step=(2.0, 1.0))
    grey = [(ms.luma(f) * 255).round().astype(np.uint8) for f in frames]
    back = ms.optical_flow(grey[1], grey[0])  # current -> previous: content moved by (-2, -1)
    inner = regions[1]
    assert np.allclose(np.median(back[inner], 0), [2.0, 1.0], atol=0.1)
    assert np.array_equal(back, ms.optical_flow(grey[1], grey[0]))  # deterministic
    warped = ms.flow_warp(torch.from_numpy(frames[:1]), back)[0].numpy()
    assert np.abs(warped - frames[1])[:, inner].mean() < 0.1 * np.abs(frames[0] - frames[1])[:, inner].mean()


def test_flow_consistency_marks_occlusions_and_pixels_from_outside_the_frame():
    h, w = 20, 30
    back = np.zeros((h, w, 2), np.float32)
    back[..., 0] = 2.0  # every pixel came from 2 px to its right
    ok = ms.flow_consistent(back, -back)
    assert ok[:, : w - 2].all() and not ok[:, w - 2 :].any()  # the last 2 columns came from outside
    fwd = -back.copy()
    fwd[5:10, 5:12] = 0.0  # the previous frame's pixels there did not go where the backward flow says
    ok = ms.flow_consistent(back, fwd)
    assert not ok[5:10, 3:10].any() and ok[12:, : w - 2].all()


def warping_error(source, edited, regions, cuts=()) -> dict:
    """The harness's warping error of two aligned clips (T,3,H,W), pair by pair as it streams
    them; pairs across a cut (a new shot starts at t) are skipped."""
    per = np.full((2, len(source)), np.nan)
    for t in range(1, len(source)):
        if t in cuts:
            continue
        per[:, t] = ms.warp_error_pair(np.stack([source[t - 1], edited[t - 1]]), np.stack([source[t], edited[t]]),
                                       regions[t])  # fmt: skip
    return ms.warp_error_summary(per[0], per[1])


def test_warping_error_of_identical_clips_is_the_source_s():
    frames, regions, _ = _moving_face()
    r = warping_error(frames, frames.copy(), regions)
    assert r["warp_error_ratio"] == 1.0 and r["warp_error_edited"] == r["warp_error_source"] > 0


def test_warping_error_catches_per_frame_noise_in_the_face():
    frames, regions, _ = _moving_face()
    noisy = frames.copy()
    rng = np.random.default_rng(1)
    for k in range(len(frames)):
        noisy[k][:, regions[k]] += rng.normal(0, 0.01, (3, regions[k].sum())).astype(np.float32)
    r = warping_error(frames, noisy, regions)
    assert r["warp_error_ratio"] > 10
    assert any("warping error" in w for w in ms.warnings_for({"stability": r}))


def test_a_steady_edit_that_moves_with_the_face_keeps_the_warping_error():
    """The same change on every frame (a brightened blob that moves with the face) is not
    temporal inconsistency: the ratio stays ~1, while the same blob held still on the moving face
    (it swims over the skin) is caught."""
    frames, regions, centres = _moving_face()
    yy, xx = np.mgrid[0 : frames.shape[2], 0 : frames.shape[3]]

    def blob(cx, cy):
        return 0.15 * np.exp(-(((xx - cx) / 30) ** 2 + ((yy - cy) / 35) ** 2)).astype(np.float32)

    steady = np.clip(frames + np.stack([blob(*c) for c in centres])[:, None], 0, 1)
    stuck = np.clip(frames + blob(*centres[0])[None, None], 0, 1)
    r = warping_error(frames, steady, regions)
    assert 0.9 < r["warp_error_ratio"] < 1.1
    assert warping_error(frames, stuck, regions)["warp_error_ratio"] > 2
    assert warping_error(frames, steady, regions, cuts=range(1, 12))["warp_error_ratio"] is None


def test_identity_similarity():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 128))
    r = ms.identity_similarity(a, a + 1e-6)
    assert r["cosine"] == pytest.approx(1.0) and r["distance"] < 1e-4
    assert ms.identity_similarity(a, np.full_like(a, np.nan))["cosine"] is None


def test_warnings_call_out_emotion_bought_with_blur():
    rep = {
        "sharpness": {"ratio": 0.3},
        "emotion": {"mean_change": {"happy": 0.2, "sad": -0.1}},
        "speech": {"corr": 0.2, "best_lag": -5, "corr_at_best_lag": 0.99},
    }
    w = ms.warnings_for(rep)
    assert any("blur" in x and "happy +0.20" in x and "suspect" in x for x in w)
    assert any("speech" in x and "-5 frames" in x for x in w)
    assert ms.warnings_for({"sharpness": {"ratio": 0.98}, "speech": {"corr": 0.99}}) == []


def test_load_plan_formats(tmp_path):
    from facepipe.evaluation.harness import load_plan

    p1 = tmp_path / "p1.json"
    p1.write_text(json.dumps({"au_names": ["AU12R", "AU6"], "target": [[0.5, 0.1], [0.6, 0.2]], "frames": [3, 4]}))
    names, tgt = load_plan(p1, 6)
    assert names == ["AU12R", "AU6"] and tgt.shape == (6, 2) and np.isnan(tgt[0]).all() and tgt[4, 0] == 0.6
    p2 = tmp_path / "p2.json"
    p2.write_text(json.dumps({"au": {"AU12R": [0.1, None, 0.3]}}))
    names, tgt = load_plan(p2, 3)
    assert names == ["AU12R"] and np.isnan(tgt[1, 0]) and tgt[2, 0] == 0.3
    p3 = tmp_path / "p3.json"
    p3.write_text(json.dumps({"frames": [{"index": 1, "au": {"AU12R": 0.9}}, {"index": 2, "au": None}]}))
    names, tgt = load_plan(p3, 3)
    assert names == ["AU12R"] and tgt[1, 0] == 0.9 and np.isnan(tgt[2, 0])
    from facepipe.errors import RequestError

    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(RequestError, match="not a plan"):
        load_plan(tmp_path / "bad.json", 3)


def test_markdown_table_has_a_row_per_report():
    from facepipe.evaluation.table import markdown_table

    rep = {
        "source": "/x/a.mp4",
        "edited": "/x/a.happy.mp4",
        "emotion": {
            "target": "happy",
            "mean_before": 0.1,
            "mean_after": 0.5,
            "rose": 0.8,
            "top_after": {"happy": 0.7, "sad": 0.3},
        },
        "sharpness": {"ratio": 0.95},
        "identity": {"skipped": "dlib is not installed"},
        "speech": {"corr": 0.97},
        "stability": {"jitter_ratio": 1.1, "flicker_ratio": 1.0, "warp_error_ratio": 1.3},
        "background": {"psnr_db": 100.0},
        "au_fidelity": {"overall": 0.8},
    }
    md = markdown_table([rep, rep], ["edit A", "edit B"])
    lines = md.strip().splitlines()
    assert len(lines) == 4 and "| a.mp4 | edit A | happy: 0.10->0.50 | 80% | happy 70%, sad 30% |" in lines[2]
    assert "identical" in lines[2] and "skipped" in lines[2]
    assert "| warp err x |" in lines[0] and "| 1.10 | 1.00 | 1.30 | identical |" in lines[2]


# ---- whole evaluations ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def talk_edits(tmp_path_factory, fer_weights):
    """A 60-frame talking clip, its pass-through edit, a copy shifted by 5 frames and a face-blurred copy."""
    if not (SHARED_CLIPS / TALK).is_file():
        pytest.skip(f"shared footage not found at {SHARED_CLIPS / TALK}")
    from facepipe import api
    from facepipe.jobs.analyze import run_analysis
    from facepipe.evaluation.breakers import blurred_face_edit, shifted_edit

    d = tmp_path_factory.mktemp("talk")
    work = d / "work"
    quiet = lambda m: None  # noqa: E731
    src = api.edit(
        SHARED_CLIPS / TALK,
        "neutral",
        0.0,
        out=d / "talk.mp4",
        frames=TALK_FRAMES,
        workdir=work,
        progress="off",
        log=quiet,
    ).output
    passed = api.edit(src, "neutral", 0.0, out=d / "talk.pass.mp4", workdir=work, progress="off", log=quiet).output
    shifted = shifted_edit(src, d / "talk.shift5.mp4", 5)
    tracks = run_analysis(src, au=False, workdir=work, progress="off", log=quiet).tracks
    blurred = blurred_face_edit(src, d / "talk.blur.mp4", tracks.landmarks)
    return {"src": src, "pass": passed, "shift": shifted, "blur": blurred, "work": work}


@pytest.fixture(scope="module")
def talk_reports(talk_edits):
    from facepipe.api import evaluate

    e = talk_edits
    return {
        k: evaluate(e["src"], e[k], "happy", workdir=e["work"], log=lambda m: None) for k in ("pass", "shift", "blur")
    }


@pytest.mark.footage
def test_pass_through_scores_as_unchanged(talk_reports):
    r = talk_reports["pass"]
    emo = r["emotion"]
    assert r["face_frames"]["both"] == 60
    assert abs(emo["mean_after"] - emo["mean_before"]) < 0.03
    assert all(abs(emo["top_after"][c] - emo["top_before"][c]) <= 0.1 for c in CLASSES)
    assert r["speech"]["corr"] > 0.95 and r["speech"]["best_lag"] == 0
    assert 0.8 < r["stability"]["jitter_ratio"] < 1.25 and 0.9 < r["stability"]["flicker_ratio"] < 1.1
    assert 0.9 < r["stability"]["warp_error_ratio"] < 1.1  # H.264 re-encode: ~1, not exactly
    assert r["background"]["psnr_db"] >= 60
    assert r["sharpness"]["ratio"] > 0.9
    if "skipped" in r["identity"]:
        assert "dlib" in r["identity"]["skipped"] or "weights" in r["identity"]["skipped"]
    else:
        assert r["identity"]["cosine"] > 0.99
    assert r["au_fidelity"]["skipped"].startswith("no plan")
    assert r["warnings"] == []
    json.dumps(r, allow_nan=False)


@pytest.mark.footage
def test_shifted_frames_lose_speech_correlation(talk_reports):
    ok, bad = talk_reports["pass"], talk_reports["shift"]
    assert bad["speech"]["corr"] < 0.6 and bad["speech"]["corr"] < ok["speech"]["corr"] - 0.35
    assert bad["speech"]["best_lag"] == -5 and bad["speech"]["corr_at_best_lag"] > 0.9
    # Every frame moves as the source did 5 frames later, not as the source's flow says.
    assert bad["stability"]["warp_error_ratio"] > 1.5 and any("warping error" in w for w in bad["warnings"])
    assert any(w.startswith("speech") for w in bad["warnings"])


@pytest.mark.footage
def test_blurred_face_loses_sharpness_even_when_an_emotion_rises(talk_reports):
    ok, bad = talk_reports["pass"], talk_reports["blur"]
    assert bad["sharpness"]["ratio"] < 0.5 * ok["sharpness"]["ratio"]
    rose = {c: v for c, v in bad["emotion"]["mean_change"].items() if v > ms.ROSE_EPS}
    assert rose, "blurring the face moves the classifier (it rewards blur)"
    blur_warning = [w for w in bad["warnings"] if w.startswith("blur")]
    assert blur_warning and all(c in blur_warning[0] for c in rose)
    # Only the face was touched; through lossy H.264 the background still moves a little (the
    # encoder reacts to the changed face), hence not "identical" but far above a real change.
    assert bad["background"]["psnr_db"] >= ms.BACKGROUND_MIN_DB
    assert not any(w.startswith("background") for w in bad["warnings"])


@pytest.fixture(scope="module")
def astro(tmp_path_factory, fer_weights):
    """The astronaut demo clip (no footage needed), its tracks, and a face-blurred copy written losslessly."""
    from facepipe.jobs.analyze import run_analysis
    from facepipe.demo import make_demo_clip
    from facepipe.evaluation.breakers import blurred_face_edit

    d = tmp_path_factory.mktemp("astro")
    src = make_demo_clip(d / "astro.mp4", seconds=1.0, size=256, audio=False)
    tracks = run_analysis(src, au=False, workdir=d / "w", progress="off", log=lambda m: None).tracks
    assert np.isfinite(tracks.landmarks).all()
    # Lossless, so an untouched background is exactly identical to the re-encode.
    blurred = blurred_face_edit(src, d / "astro.blur.mkv", tracks.landmarks, codec="ffv1")
    return {"src": src, "blur": blurred, "work": d / "w", "dir": d}


def test_eval_command_on_a_blurred_synthetic_face(tmp_path, astro):
    """The astronaut demo clip, face blurred; scored through ``facepipe eval``."""
    from click.testing import CliRunner

    from facepipe.cli.evaluate import eval_command

    res = CliRunner().invoke(
        eval_command,
        [
            str(astro["src"]),
            str(astro["blur"]),
            "--emotion",
            "happy",
            "--no-identity",
            "--workdir",
            str(astro["work"]),
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["sharpness"]["ratio"] < 0.5 and r["background"]["psnr_db"] == ms.PSNR_CAP
    assert r["background"]["reencode_codec"] == "ffv1" and r["sharpness"]["codec_ratio"] == 1.0
    assert r["identity"] == {"skipped": "skipped (--no-identity)"}
    assert "sharpness" in res.output and "WARNING blur" in res.output
    st = r["stability"]
    assert st["warp_error_source"] > 0 and st["warp_error_edited"] > 0 and st["warp_error_ratio"] is not None
    assert "warping error x" in res.output


def test_harness_uses_the_analysis_and_reencode_it_is_given(astro):
    """``harness.evaluate`` runs no job of its own: the clips' analysis and the plain re-encode
    come from the callables it is given (here facepipe's, recorded)."""
    from facepipe import api
    from facepipe.jobs.analyze import run_analysis
    from facepipe.evaluation.harness import evaluate

    calls = []

    def analyse(path, au):
        calls.append(("analyse", Path(path).name, au))
        return run_analysis(path, au=au, workdir=astro["work"], progress="off", log=lambda m: None)

    def reencode_source(source, out, codec, frames):
        calls.append(("reencode", Path(source).name, Path(out).suffix, codec, frames))
        return api.edit(source, "neutral", 0.0, out=out, force=True, codec=codec, frames=frames,
                        workdir=astro["work"], progress="off", log=lambda m: None).output  # fmt: skip

    r = evaluate(astro["src"], astro["blur"], "happy", analyse=analyse, reencode_source=reencode_source,
                 identity=False)  # fmt: skip
    assert calls == [
        ("analyse", "astro.mp4", False),
        ("analyse", "astro.blur.mkv", False),
        ("reencode", "astro.mp4", ".mkv", "ffv1", None),
    ]
    assert r["background"]["psnr_db"] == ms.PSNR_CAP and r["sharpness"]["ratio"] < 0.5
    given = evaluate(astro["src"], astro["blur"], "happy", analyse=analyse, reencode_source=None,
                     reencode=astro["blur"], identity=False)  # fmt: skip
    assert given["background"]["reencode_codec"] == "given" and given["background"]["psnr_db"] == ms.PSNR_CAP


def test_evaluation_imports_no_job_api_or_command_layer():
    """The harness is given the analysis job (DI); only the ``facepipe eval`` command
    (evaluation/cli.py) assembles, like every command."""
    import ast

    import facepipe.evaluation as pkg

    banned = ("facepipe.api", "facepipe.cli", "facepipe.stages", "facepipe.jobs.analyze")
    for path in Path(pkg.__file__).parent.glob("*.py"):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            bad = [n for n in names if any(n == b or n.startswith(b + ".") or n.startswith(b + "_") for b in banned)]
            assert not bad, f"{path.name} imports {bad}"


def test_eval_command_rejects_mismatched_clips(tmp_path, make_clip):
    from click.testing import CliRunner

    from facepipe.cli.evaluate import eval_command

    a = make_clip("a.mp4", frames=12)
    b = make_clip("b.mp4", frames=10)
    res = CliRunner().invoke(eval_command, [str(a), str(b), "--emotion", "happy", "--workdir", str(tmp_path / "w")])
    assert res.exit_code != 0 and "--frames" in res.output and "Traceback" not in res.output


@pytest.mark.footage
@pytest.mark.slow
def test_au_fidelity_of_a_do_nothing_edit_is_near_zero(talk_edits, tmp_path):
    """A plan that asks for a smile (AU12 +0.5) against a pass-through edit: independent fits of
    source and edit agree, so the measured change is ~0 of the planned one."""
    from facepipe.jobs.analyze import run_analysis
    from facepipe.api import evaluate

    e = talk_edits
    src = run_analysis(e["src"], workdir=e["work"], progress="off", log=lambda m: None)
    if src.fit is None:
        pytest.skip(f"AU fit unavailable: {src.au_note}")
    names = list(src.fit.au_names)
    target = np.array(src.fit.au, np.float64)
    smile = [names.index(n) for n in names if n.startswith("AU12")]
    target[:, smile] = np.clip(target[:, smile] + 0.5, 0, 1)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"au_names": names, "target": target.tolist()}))
    r = evaluate(e["src"], e["pass"], "happy", plan=plan, identity=False, workdir=e["work"], log=lambda m: None)
    fid = r["au_fidelity"]
    assert set(fid["per_au"]) == {names[k] for k in smile}
    assert abs(fid["overall"]) < 0.3 and fid["unplanned_drift"] < 0.1


def test_speech_on_a_still_mouth_is_not_judged():
    rng = np.random.default_rng(1)
    still = 0.01 + 0.001 * rng.random(60)
    r = ms.speech_correlation(still, 0.01 + 0.001 * rng.random(60))
    assert r["meaningful"] is False
    assert not any(w.startswith("speech") for w in ms.warnings_for({"speech": r}))


def test_a_slow_mouth_shifted_in_time_is_flagged():
    mouth = np.sin(np.linspace(0, np.pi, 60)) * 0.2  # one slow opening: r stays high under a shift
    shifted = np.r_[mouth[5:], np.repeat(mouth[-1], 5)]
    r = ms.speech_correlation(mouth, shifted)
    assert r["corr"] > 0.8 and r["best_lag"] == -5
    assert any("5 frames early" in w for w in ms.warnings_for({"speech": r}))
