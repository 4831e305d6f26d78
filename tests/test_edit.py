"""The edit as a user runs it: a real face clip in, an edited clip + report out.

The clip is facepipe's own demo clip (scikit-image's astronaut photo with a camera move), so the
tests need no shared footage. One module-scoped work directory keeps the analysis cached
between tests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facepipe import api
from facepipe.demo import make_demo_clip
from facepipe.errors import OutputExistsError, RequestError
from media_checks import timing_report
from facepipe.io.media import probe
from facepipe.io.reader import VideoReader

QUIET = {"progress": "off", "log": lambda m: None}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("edit")
    return make_demo_clip(folder / "astro.mp4", seconds=1.0, size=256, audio=True)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("work")


def frames_of(path) -> np.ndarray:
    info = probe(path)
    return VideoReader(info).read(range(info.frame_count)).numpy()


@pytest.fixture(scope="module")
def happy(clip, work, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "astro.happy.mp4"
    result = api.edit(clip, emotion="happy", codec="h264-lossless", out=out, workdir=work, appearance=0.0, **QUIET)
    return result


def test_edit_keeps_timing_audio_and_every_pixel_outside_the_face(clip, happy):
    rep = timing_report(str(clip), str(happy.output))
    assert rep.frame_count[0] == rep.frame_count[1] == happy.frames_written
    assert rep.ok and rep.audio_packets[0] > 0
    src, out = frames_of(clip), frames_of(happy.output)
    # lossless H.264 (RGB): untouched pixels come back exactly as decoded
    changed = np.abs(out - src).max(axis=1) > 0  # (T,H,W)
    assert changed.any(axis=(1, 2)).mean() > 0.8, "the edit changed almost no frame"
    ys, xs = np.nonzero(changed.any(0))
    box = happy.report["render"]
    assert box["edited"] == happy.frames_written
    # the changed area is a face-sized blob, not the frame: the corners are untouched
    h, w = src.shape[-2:]
    assert (ys.max() - ys.min()) < 0.8 * h and (xs.max() - xs.min()) < 0.8 * w
    assert not changed[:, :8, :].any() and not changed[:, -8:, :].any()


def test_report_beside_the_output_holds_the_plan(happy):
    path = happy.report_path
    assert path.name == "astro.happy.report.json" and path.exists()
    doc = json.loads(path.read_text())
    assert doc["mode"] == "edit" and doc["request"]["keyframes"][0]["emotion"] == "happy"
    target = np.asarray(doc["target"])
    assert target.shape == (happy.frames_written, len(doc["au_names"]))
    au12 = [i for i, n in enumerate(doc["au_names"]) if n.startswith("AU12")]
    assert target[:, au12].mean() > 0.5, "happy must plan a strong AU12"
    assert set(doc["speech_aus_locked"]) >= {"AU25", "AU26"}


def test_edit_moves_the_mouth_corners_the_way_the_plan_says(clip, happy, work):
    """Re-track the edit: the lip corners must spread (AU12 pulls them out and up)."""
    from facepipe.jobs.analyze import run_analysis

    before = run_analysis(clip, au=False, workdir=work, **QUIET).tracks.landmarks
    after = run_analysis(happy.output, au=False, workdir=work, **QUIET).tracks.landmarks
    width = lambda lm: np.linalg.norm(lm[:, 291, :2] - lm[:, 61, :2], axis=-1)  # noqa: E731
    gain = np.nanmedian(width(after) / width(before))
    assert gain > 1.03, f"mouth width changed by {gain:.3f}x only"


def test_existing_output_and_report_are_not_overwritten_without_force(clip, happy, work):
    before = happy.report_path.read_bytes()
    with pytest.raises(OutputExistsError):
        api.edit(clip, emotion="happy", codec="h264-lossless", out=happy.output, workdir=work, appearance=0.0, **QUIET)
    assert happy.report_path.read_bytes() == before


def test_neutral_at_zero_intensity_is_an_exact_pass_through_without_analysis(clip, tmp_path):
    out = tmp_path / "p.mkv"
    result = api.edit(clip, emotion="neutral", intensity=0.0, codec="ffv1", out=out, workdir=tmp_path / "w", **QUIET)
    assert result.report["mode"] == "passthrough"
    np.testing.assert_array_equal(frames_of(out), frames_of(clip))
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").rglob("*track*"))


def test_a_clip_without_a_face_passes_through_and_says_so(make_clip, tmp_path):
    src = make_clip("noface.mp4", frames=6, width=96, height=64)
    out = tmp_path / "noface.happy.mkv"
    result = api.edit(src, emotion="happy", codec="ffv1", out=out, workdir=tmp_path / "w", **QUIET)
    assert result.report["mode"] == "no-face" and result.report["warnings"]
    np.testing.assert_array_equal(frames_of(out), frames_of(src))


def test_bad_requests_fail_before_writing(clip, tmp_path):
    for kwargs, words in [
        ({"emotion": "joyful"}, "unknown emotion"),
        ({"emotion": "happy", "intensity": 2.0}, "out of range"),
        ({"emotion": "happy@0s-5s"}, "past the clip's end"),
        ({"emotion": ["happy@0-10", "sad@5-20"]}, "overlap"),
        ({"au": ["AU99=0.5"]}, "unknown AU"),
        ({"emotion": "happy", "appearance": 1.5}, "out of range"),
        ({"emotion": "happy", "threads": 0}, "--threads 0"),
    ]:
        with pytest.raises(RequestError, match=words):
            api.edit(clip, out=tmp_path / "x.mp4", workdir=tmp_path / "w", **kwargs, **QUIET)
    assert not list(tmp_path.glob("x*"))


def test_preview_writes_source_and_edit_side_by_side_at_half_size(clip, work, tmp_path):
    out = tmp_path / "prev.mp4"
    result = api.preview(clip, emotion="sad", frames="5-19", out=out, workdir=work, appearance=0.0, **QUIET)
    info = probe(out)
    assert (info.width, info.height) == (256, 128) and info.frame_count == 15
    assert result.render_fps > 0 and "real time" in result.summary()
    both = frames_of(out)
    left, right = both[..., :128], both[..., 128:]
    assert np.abs(left - right).max() > 0.05, "the edit side equals the source side"


def edit_nodes(clip, work, request):
    """The render stage's transform, and render + composite as one chunk -> chunk function, of
    ``request`` on ``clip`` (warp only), their inputs pulled through the graph."""
    from facepipe.jobs.context import open_context
    from facepipe.jobs.edit import EditSettings, edit_stages
    from facepipe.pipeline.graph import Graph

    ctx = open_context(probe(clip), work, "cpu", "off", 32, lambda m: None)
    graph = Graph(edit_stages(request, EditSettings(appearance_strength=0.0))[0], ctx)
    render = graph.stage("render").open(ctx, {n: graph.get(n) for n in graph.stage("render").inputs}, 1.0)
    composite = graph.stage("composite").open(ctx, {}, 1.0)
    return render, lambda chunk: composite(render(chunk))


def test_renderer_returns_frames_the_plan_leaves_alone_bit_for_bit(clip, work):
    """Weight 0 everywhere (an AU override outside these frames): the chunk comes back unchanged."""
    from facepipe.io.reader import FrameChunk
    from facepipe.plan.request import parse_request

    info = probe(clip)
    renderer, edit = edit_nodes(clip, work, parse_request(aus=["AU12=1@0-4"]))
    idx = np.arange(12, 18)
    frames = VideoReader(info).read(idx)
    out = edit(FrameChunk(idx, np.zeros(len(idx), np.int64), frames.clone()))
    assert torch.equal(out.frames, frames) and all(m is None for m in out.mattes)
    first = VideoReader(info).read(range(3))
    edited = edit(FrameChunk(np.arange(0, 3), np.zeros(3, np.int64), first.clone()))
    assert renderer.stats.to_dict(range(3))["edited"] == 3 and not torch.equal(edited.frames, first)
    assert torch.equal(edited.plate, first)


def test_a_repeated_frame_gets_the_previous_frames_edit(clip, work):
    """Pulled-down footage repeats frames: the repeat must not be rendered afresh (new grain and
    tracking noise would pop where the plate stands still) but carry its predecessor's edit."""
    from facepipe.io.reader import FrameChunk
    from facepipe.plan.request import parse_request

    info = probe(clip)
    renderer, edit = edit_nodes(clip, work, parse_request(emotions=["happy"]))
    renderer.repeats = {6: True}  # as the repeats stage would find it
    idx = np.arange(10)
    frames = VideoReader(info).read(idx)
    frames[6] = frames[5]
    frames[6, :, 100, 100:110] += 1 / 255  # a re-encoded copy is not bit-identical
    out = edit(FrameChunk(idx, np.zeros(len(idx), np.int64), frames)).frames
    assert renderer.stats.to_dict(idx)["frames_held"] == 1
    assert torch.allclose(out[6] - frames[6], out[5] - frames[5], atol=1e-6)
    assert not torch.allclose(out[7] - frames[7], out[5] - frames[5], atol=1e-3)  # real frames render afresh
    # a repeat whose predecessor this stream did not edit is rendered afresh
    renderer.repeats = {3: True}
    edit(FrameChunk(np.arange(3, 5), np.zeros(2, np.int64), VideoReader(info).read([3, 4])))
    assert not renderer.stats.frames[3].held


def test_repeat_flags_need_a_tiny_step_against_the_recent_ones():
    from facepipe.analysis.repeats import face_step, repeat_flags

    g = torch.Generator().manual_seed(0)
    mesh = torch.tensor([[10.0, 10.0], [90.0, 90.0]])
    frame = torch.rand(3, 100, 100, generator=g)
    moving, still = [np.nan], [np.nan]
    for i in range(1, 20):
        step = torch.zeros(3, 100, 100) if i in (8, 15) else 0.02 * torch.randn(3, 100, 100, generator=g)
        moving.append(face_step(frame + step, frame, mesh))
        frame = frame + step
        # a still face: every step small (0.11 code values), none a repeat
        still.append(face_step(frame + 0.14 / 255 * torch.randn(3, 100, 100, generator=g), frame, mesh))
    assert list(np.flatnonzero(repeat_flags(np.array(moving)))) == [8, 15]
    assert not repeat_flags(np.array(still)).any()
    assert not repeat_flags(np.array([0.01] * 6 + [np.nan, 0.0]))[-1]  # the history restarts after a gap


def test_actor_library_clips_join_the_donor_pool(clip, work, tmp_path):
    """A library of the same actor's shots adds their frames as donors (analysed through the cache)."""
    import shutil

    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(clip, library / "take2.mp4")  # same content: its analysis comes from the cache
    (library / "notes.txt").write_text("not a clip")
    result = api.edit(clip, emotion="happy", out=tmp_path / "lib.mp4", workdir=work, actor_library=library, **QUIET)
    app = result.report["appearance"]
    assert app["library_clips"] == [str(library / "take2.mp4")]
    assert app["pool_frames"] == 2 * result.frames_written
    assert set(app["regions"]) == {"mouth", "cheeks", "eyes", "brows"}
    with pytest.raises(RequestError, match="not a folder"):
        api.edit(clip, emotion="happy", out=tmp_path / "x.mp4", workdir=work, actor_library=tmp_path / "none", **QUIET)
