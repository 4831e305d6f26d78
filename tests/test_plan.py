"""The edit plan: request parsing and validation, schedules and ramps, speech kept, overrides."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import torch

from facepipe.errors import RequestError
from facepipe.plan import emotions as em
from facepipe.plan.planner import EditPlan, make_plan, reliability_fade, smoothstep, span_weights
from facepipe.plan.request import EditRequest, parse_request, parse_time

# The rig's names at the time of writing; the plan must work with any AU<n>[L|R] list.
AUS = ["AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12R", "AU12L", "AU14R", "AU14L", "AU15",
       "AU17", "AU18", "AU20", "AU22", "AU23", "AU24", "AU25", "AU26", "AU27", "AU30R", "AU30L", "AU34",
       "AU45R", "AU45L"]
COL = {n: i for i, n in enumerate(AUS)}
FPS = Fraction(30)
T = 90  # 3 s


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def S(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


def source(seed: int = 0, T: int = T) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (T, len(AUS))).astype(np.float32)


def plan(req: EditRequest, src=None, **kw) -> EditPlan:
    """The plan with the arithmetic exposed: no smoothing, and the edit measured against the raw
    source (keep_motion_s=0); test_fast_source_motion_is_kept covers the default."""
    kw.setdefault("smooth_sigma", 0.0)
    kw.setdefault("keep_motion_s", 0.0)
    return make_plan(source() if src is None else src, AUS, req, FPS, **kw)


def test_fast_source_motion_is_kept_and_the_slow_baseline_moves():
    """Speech wiggles AU12 fast around a slow baseline: the edit replaces the baseline only."""
    t = np.arange(T, dtype=np.float32)
    src = np.zeros((T, len(AUS)), np.float32)
    col = AUS.index("AU12L")
    wiggle = 0.15 * np.sin(2 * np.pi * t / 4)  # a 4-frame period: speech-fast at 24 fps
    src[:, col] = 0.4 + wiggle
    p = make_plan(src, AUS, parse_request(["neutral"]), FPS, smooth_sigma=0.0, keep_motion_s=0.4)
    mid = slice(20, T - 20)  # away from the ends the Gaussian replicates
    target = p.target[mid, col]
    assert abs(float(target.mean()) - float(np.clip(wiggle[mid], 0, None).mean())) < 0.03
    assert np.corrcoef(target, np.clip(wiggle[mid], 0, None))[0, 1] > 0.95, "the fast motion must survive the edit"
    raw = make_plan(src, AUS, parse_request(["neutral"]), FPS, smooth_sigma=0.0, keep_motion_s=0.0)
    assert np.allclose(raw.target[:, col], 0.0), "measured against the raw source, neutral relaxes it all"


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(emotions=["elated"]), "unknown emotion"),
        (dict(emotions=["happy"], intensity=1.6), "from 0 to 1.5"),
        (dict(emotions=["happy"], intensity=-0.1), "out of range"),
        (dict(emotions=["happy"], intensity="nan"), "out of range"),
        (dict(emotions=["happy"], intensity="lots"), "bad --intensity"),
        (dict(emotions=["happy:2@0s-1s"]), "out of range"),
        (dict(emotions=["happy@2.5sec-3s"]), "bad time"),
        (dict(emotions=["happy@1h-"]), "bad time"),
        (dict(emotions=["happy@1s"]), "bad span"),
        (dict(emotions=["happy"], ramp="01:00:00:00"), "bad --ramp"),
        (dict(emotions=["happy"], ramp="soon"), "bad time"),
        (dict(aus=["XY12=0.5"]), "unknown AU"),
        (dict(aus=["AU12=1.5"]), "out of range"),
        (dict(aus=["AU12"]), "bad --au"),
        (dict(), "nothing to edit"),
    ],
)
def test_parse_errors(kwargs, words):
    with pytest.raises(RequestError) as e:
        parse_request(**kwargs)
    msg = str(e.value)
    assert words in msg and "\n" not in msg


@pytest.mark.parametrize(
    "emotions, aus, words",
    [
        (["happy@0s-20s"], [], "past the clip's end"),
        (["happy@5s-"], [], "past the clip's end"),
        (["happy@0-90"], [], "past the clip's end"),  # frames 0..90 inclusive = 91 frames
        (["happy@2s-1s"], [], "ends before it starts"),
        (["happy@0s-2.5s", "sad@2s-"], [], "overlap"),
        (["happy", "sad@1s-2s"], [], "overlap"),
        ([], ["AU99=0.5"], "unknown AU"),
        ([], ["AU16=0.5"], "unknown AU"),  # not in this rig
        ([], ["AU4R=0.5"], "unknown AU"),  # this rig has no separate sides for AU4
        ([], ["AU12=0.5@0s-2s", "AU12L=0.2@1s-"], "overlap"),
    ],
)
def test_resolve_errors(emotions, aus, words):
    req = parse_request(emotions=emotions, aus=aus)
    with pytest.raises(RequestError) as e:
        req.resolve(FPS, T, AUS)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_keyframe_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RequestError, match="not valid JSON"):
        parse_request(keyframe_file=bad)
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"keyframes": [{"emotion": "happy", "begin": "0s"}]}))
    with pytest.raises(RequestError, match="unknown key 'begin'"):
        parse_request(keyframe_file=typo)
    with pytest.raises(RequestError, match="cannot read"):
        parse_request(keyframe_file=tmp_path / "missing.yaml")


# ------------------------------------------------------------------ times and files


def test_time_forms_resolve_to_frames():
    ntsc = Fraction(24000, 1001)
    req = parse_request(emotions=["happy@1s-2.5s", "sad@75f-99", "angry@01:00:05:00-01:00:05:23"])
    sched = req.resolve(ntsc, 200, AUS, start_timecode="01:00:00:00")
    spans = [(s.emotion, s.start, s.end) for s in sched.segments]
    # 1s -> ceil(23.976) = 24; 2.5s -> ceil(59.94) = 60 (exclusive); frames inclusive; TC relative to start
    assert spans == [("happy", 24, 60), ("sad", 75, 100), ("angry", 120, 144)]
    assert parse_request(emotions=["happy"], ramp="0.5s").resolve(FPS, T, AUS).ramp == 15
    assert parse_request(emotions=["happy"], ramp="12f").resolve(FPS, T, AUS).ramp == 12
    assert parse_time(75).kind == "frame" and parse_time("01:00:01:00").kind == "timecode"
    # user numbering: frame 1001 is source frame 0
    s = parse_request(emotions=["happy@1001-1010"]).resolve(FPS, T, AUS, first_number=1001)
    assert (s.segments[0].start, s.segments[0].end) == (0, 10)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_keyframe_file_and_round_trip(tmp_path, suffix):
    data = {"intensity": 0.8, "ramp": "6", "keyframes": [{"emotion": "happy", "start": "0s", "end": "1s"},
            {"emotion": "Sadness", "start": 45, "intensity": 0.5}], "au": {"AU25": 0.1}}
    path = tmp_path / f"edit{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(data))
    else:
        import yaml

        path.write_text(yaml.safe_dump(data))
    req = parse_request(keyframe_file=path, ramp="3")  # the command line wins over the file
    assert req.intensity == 0.8 and req.ramp.text == "3" and req.label == "happy+sad"
    sched = req.resolve(FPS, T, AUS)
    assert [(s.emotion, s.start, s.end, s.intensity) for s in sched.segments] == [
        ("happy", 0, 30, 0.8), ("sad", 45, 90, 0.5)]
    again = EditRequest.from_dict(json.loads(req.to_json()))
    assert again.resolve(FPS, T, AUS) == sched


# ------------------------------------------------------------------ weights


def test_ramp_weights_exact():
    req = parse_request(emotions=["happy@1s-2s"], ramp="4")
    w = plan(req).weight
    expected = {29: 0.0, 30: S(1 / 5), 31: S(2 / 5), 32: S(3 / 5), 33: S(4 / 5), 34: 1.0, 45: 1.0,
                55: 1.0, 56: S(4 / 5), 58: S(2 / 5), 59: S(1 / 5), 60: 0.0, 89: 0.0}
    for t, v in expected.items():
        assert w[t] == pytest.approx(v, abs=1e-6), t


def test_intensity_scales_weight_and_clip_edges_do_not_ease():
    w = plan(parse_request(emotions=["happy@-1s"], ramp="4", intensity=0.5)).weight
    assert w[0] == pytest.approx(0.5) and w[25] == pytest.approx(0.5) and w[30] == 0
    assert w[29] == pytest.approx(0.5 * S(1 / 5))
    w = plan(parse_request(emotions=["happy@2s-"], ramp="4")).weight
    assert w[-1] == 1.0 and w[60] == pytest.approx(S(1 / 5))


def test_touching_keyframes_cross_fade():
    w = span_weights([(0, 40), (40, 90)], 90, 6)
    assert torch.allclose(w.sum(0), torch.ones(90))
    assert w[0, 36] == 1 and w[0, 37] == pytest.approx(1 - S(1 / 7))  # cross-fade starts at 40 - 6 // 2
    assert w[1, 36] == 0 and w[1, 37] == pytest.approx(S(1 / 7)) and w[1, 43] == 1
    # the target moves from the happy prototype to the sad one without passing the source
    src = source()
    p = plan(parse_request(emotions=["happy@-39", "sad@40-"], ramp="6"), src)
    assert np.allclose(p.weight, 1.0)
    sad = S(3 / 7)  # frame 39 is the third of the cross-fade's six frames (37..42)
    assert p.target[39, COL["AU12L"]] == pytest.approx((1 - sad) * 1.0, abs=1e-6)  # happy 6E+12E
    assert p.target[39, COL["AU15"]] == pytest.approx(sad * 0.8, abs=1e-6)  # sad 1E+4C+15D


def test_reliability_fade():
    rel = torch.ones(20, dtype=torch.bool)
    rel[10] = False
    f = reliability_fade(rel, 3)
    assert f[10] == 0 and f[0] == 1 and f[19] == 1
    for d in (1, 2, 3, 4):
        assert f[10 - d] == pytest.approx(S(d / 4)) and f[10 + d] == pytest.approx(S(d / 4))
    assert torch.equal(reliability_fade(torch.ones(5, dtype=torch.bool), 3), torch.ones(5))


def test_unreliable_frames_fade_to_source():
    src = source()
    rel = np.ones(T, bool)
    rel[50:53] = False
    p = plan(parse_request(emotions=["happy"], ramp="4"), src, reliable=rel, smooth_sigma=1.5)
    assert np.array_equal(p.target[50:53], src[50:53])
    assert p.weight[49] == pytest.approx(S(1 / 5)) and p.weight[45] == 1.0 and p.weight[55] == pytest.approx(S(3 / 5))


# ------------------------------------------------------------------ targets


def test_happy_targets_and_speech_untouched_exactly():
    src = source()
    p = plan(parse_request(emotions=["surprised"]), src, smooth_sigma=2.0)
    for name in ["AU17", "AU18", "AU22", "AU23", "AU24", "AU25", "AU26", "AU27", "AU45L", "AU45R", "AU30L", "AU34"]:
        assert np.array_equal(p.target[:, COL[name]], src[:, COL[name]]), name  # surprise's 26 not applied
    open_eyes = src.copy()
    open_eyes[:, [COL["AU45L"], COL["AU45R"]]] = 0.0  # the lid raise yields to blinks (test below)
    p = plan(parse_request(emotions=["surprised"]), open_eyes, smooth_sigma=0.0)
    assert np.allclose(p.target[:, COL["AU1"]], 1.0, atol=1e-6) and np.allclose(p.target[:, COL["AU5"]], 0.6, atol=1e-6)
    assert np.allclose(p.target[:, COL["AU12L"]], 0.0, atol=1e-6)  # other emotional AUs relaxed
    p = plan(parse_request(emotions=["happy"]), src)
    assert np.allclose(p.target[:, [COL["AU6"], COL["AU12L"], COL["AU12R"]]], 1.0, atol=1e-6)
    assert "AU26" in p.speech_aus and "AU12L" not in p.speech_aus


def test_contempt_is_unilateral():
    src = np.zeros((T, len(AUS)), np.float32)
    p = plan(parse_request(emotions=["contempt"]), src)
    assert p.target[0, COL["AU12R"]] == pytest.approx(0.4) and p.target[0, COL["AU14R"]] == pytest.approx(0.4)
    assert p.target[0, COL["AU12L"]] == 0 and p.target[0, COL["AU14L"]] == 0
    # a rig without sides gets half of the unilateral AU on its bilateral one
    assert em.expand_to_rig(em.prototype("contempt"), ["AU12", "AU14"]) == {0: 0.2, 1: 0.2}


def test_neutral_relaxes_emotional_aus():
    src = np.full((T, len(AUS)), 0.7, np.float32)
    full = plan(parse_request(emotions=["neutral"]), src).target
    half = plan(parse_request(emotions=["neutral"], intensity=0.5), src).target
    emo = [COL[n] for n in ["AU1", "AU4", "AU6", "AU12L", "AU15", "AU20"]]
    assert np.allclose(full[:, emo], 0.0, atol=1e-6) and np.allclose(half[:, emo], 0.35, atol=1e-6)
    assert np.array_equal(full[:, COL["AU25"]], src[:, COL["AU25"]])


def test_override_wins():
    src = source()
    p = plan(parse_request(emotions=["happy"], aus=["AU12=0.3", "AU26=0.0@1s-2s"]), src)
    assert np.allclose(p.target[:, COL["AU12L"]], 0.3) and np.allclose(p.target[:, COL["AU12R"]], 0.3)
    assert np.all(p.target[38:52, COL["AU26"]] == 0.0)  # explicit overrides may change speech AUs (ramp 8)
    assert np.array_equal(p.target[:29, COL["AU26"]], src[:29, COL["AU26"]])
    assert np.allclose(p.target[:, COL["AU6"]], 1.0, atol=1e-6)


def test_outside_the_schedule_is_the_source_exactly_and_smoothing_is_local():
    src = source()
    p = plan(parse_request(emotions=["happy@1s-2s"], ramp="0"), src, smooth_sigma=2.0)
    assert np.array_equal(p.target[:30], src[:30]) and np.array_equal(p.target[60:], src[60:])
    raw = plan(parse_request(emotions=["happy@1s-2s"], ramp="0"), src, smooth_sigma=0.0)
    d_s, d_r = p.target[35:55] - src[35:55], raw.target[35:55] - src[35:55]
    assert np.abs(np.diff(d_s[:, COL["AU6"]])).mean() < 0.5 * np.abs(np.diff(d_r[:, COL["AU6"]])).mean()


def test_real_rig_names_and_artifact_round_trip(tmp_path):
    from facepipe.face.rig import AU_NAMES

    src = np.random.default_rng(1).uniform(0, 1, (40, len(AU_NAMES))).astype(np.float32)
    req = parse_request(emotions=["fear@10-"], aus=["AU45=0"])
    p = make_plan(torch.from_numpy(src), AU_NAMES, req, Fraction(24000, 1001))
    assert p.target.shape == src.shape and p.target.dtype == np.float32
    p.save(tmp_path / "plan")
    q = EditPlan.load(tmp_path / "plan")
    assert np.array_equal(q.target, p.target) and q.fps == Fraction(24000, 1001) and q.au_names == list(AU_NAMES)
    assert EditRequest.from_dict(json.loads(q.request)) == req and q.segments == p.segments


def test_the_lid_raise_yields_to_a_blink():
    """Surprise's AU5 is scaled by how open the more closed eye is; the blink itself and the
    brows are the source's and the prototype's as ever."""
    src = np.zeros((T, len(AUS)), np.float32)
    src[10, COL["AU45L"]] = 1.0  # a wink of the left eye
    src[20, [COL["AU45L"], COL["AU45R"]]] = [0.5, 0.25]  # a half blink
    p = plan(parse_request(emotions=["surprised"]), src)
    lid = p.target[:, COL["AU5"]]
    assert lid[10] == pytest.approx(0.0) and lid[20] == pytest.approx(0.3) and lid[0] == pytest.approx(0.6)
    assert np.array_equal(p.target[:, COL["AU45L"]], src[:, COL["AU45L"]])
    assert np.allclose(p.target[:, COL["AU1"]], 1.0, atol=1e-6)


def test_smoothstep_symmetry():
    x = torch.linspace(0, 1, 11)
    assert torch.allclose(smoothstep(1 - x), 1 - smoothstep(x), atol=1e-6)


# ------------------------------------------------------------------ intensity 1 = the real peak (issue 18)


def test_calibrated_targets_at_intensity_one():
    """Happy, sad and surprised at intensity 1 ask for the real peaks the fit reads on the shared
    footage (benchmarks/expression_amplitudes.py): smiles 6E+12E, brow raises 1E+2E, lowered
    corners 15D; sad's 4C and surprise's 5C are set by what the warp draws (emotions docstring)."""
    assert em.prototype("happy") == {(6, ""): 1.0, (12, ""): 1.0}
    assert em.prototype("sad") == {(1, ""): 1.0, (4, ""): 0.6, (15, ""): 0.8}
    assert em.prototype("surprised") == {(1, ""): 1.0, (2, ""): 1.0, (5, ""): 0.6, (26, ""): 0.6}
    assert 1.0 < em.MAX_INTENSITY <= 2.0


def test_intensity_is_linear_up_to_the_limit_and_refused_above_it():
    src = np.zeros((T, len(AUS)), np.float32)
    src[:, COL["AU25"]] = 0.3  # speech stays whatever the intensity
    for x in (0.25, 0.5, 1.0, 1.25, em.MAX_INTENSITY):
        p = plan(parse_request(emotions=["surprised"], intensity=x), src)
        assert np.allclose(p.target[:, COL["AU1"]], x * 1.0, atol=1e-6), x  # not clipped at 1
        assert np.allclose(p.target[:, COL["AU5"]], x * 0.6, atol=1e-6), x
        assert np.array_equal(p.target[:, COL["AU25"]], src[:, COL["AU25"]])
        assert np.allclose(p.weight, min(x, 1.0))  # the edit's strength (appearance alpha) stays 0..1
    p = plan(parse_request(emotions=[f"happy:{em.MAX_INTENSITY}@0-44", "sad:0.5@45-"], ramp="0"), src)
    assert p.target[10, COL["AU12L"]] == pytest.approx(em.MAX_INTENSITY) and p.target[60, COL["AU1"]] == pytest.approx(0.5)
    for bad in (em.MAX_INTENSITY + 0.01, 2, 10):
        with pytest.raises(RequestError, match=f"from 0 to {em.MAX_INTENSITY:g}") as e:
            parse_request(emotions=["happy"], intensity=bad)
        assert "out of range" in str(e.value) and "\n" not in str(e.value)
        with pytest.raises(RequestError, match="out of range"):
            parse_request(emotions=[f"happy:{bad}@0s-1s"])
    with pytest.raises(RequestError, match="from 0 to 1"):
        parse_request(aus=["AU12=1.2"])  # an AU override stays an AU intensity (0..1)


def test_plan_cache_key_follows_the_emotion_table(monkeypatch):
    from facepipe.stages.plan import PlanStage

    stage = PlanStage.of(parse_request(emotions=["sad"]))
    before = stage.params()
    monkeypatch.setitem(em.PROTOTYPE_CODES, "sad", "1D+4C+15D")
    assert stage.params() != before, "a recalibrated table must not reuse cached plans"
