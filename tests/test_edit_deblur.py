"""``edit --deblur-method`` (the deblur node the tracking reads) and ``edit --deblur`` (the
restored faces delivered): the graph, cache keys, frames, report and errors (issue 16)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from facepipe import api
from facepipe.cli import main
from facepipe.cli.common import DEBLUR_METHODS
from facepipe.deblur.ramp import RAMP_WINDOW
from facepipe.io.media import probe
from facepipe.io.reader import VideoReader
from facepipe.jobs.context import open_context
from facepipe.jobs.edit import EditSettings, edit_stages
from facepipe.pipeline.graph import Graph
from facepipe.plan.request import parse_request
from facepipe.stages.compare import CompareStage
from facepipe.stages.deblur import METHODS, DeblurStage
from synthetic_faces import face_path_frames, still_then_moving_centers, write_clip

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STILL, MOVING = 6, 6  # frames: the face holds still, then moves 9 px/frame


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    centers = still_then_moving_centers(STILL, MOVING, x0=120.0)
    return write_clip(tmp_path_factory.mktemp("edit-deblur") / "moving.mp4", face_path_frames(centers, head_width=120))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("work")


def frames_of(path) -> np.ndarray:
    return VideoReader(probe(path)).read(range(probe(path).frame_count))


def edit(clip, out, work, **kwargs):
    return api.edit(clip, emotion="happy", out=out, codec="ffv1", force=True, workdir=work, progress="off",
                    log=lambda m: None, **kwargs)  # fmt: skip


def test_the_cli_offers_the_deblur_node_s_methods():
    assert tuple(DEBLUR_METHODS) == METHODS


def test_delivering_renders_over_the_deblur_node_and_keys_follow_the_method(clip, tmp_path):
    request = parse_request(["happy"])
    default = EditSettings()
    delivered = EditSettings(deblur=DeblurStage(method="classical"), deliver_deblurred=True)
    stages, _ = edit_stages(request, default)
    assert {s.name: s for s in stages}["render"].frames_from == "decode"
    stages, _ = edit_stages(request, delivered)
    render = {s.name: s for s in stages}["render"]
    assert render.frames_from == "deblur_delivered" and render.shutter == 0.0  # a restored face is not re-blurred
    ctx = open_context(probe(clip), tmp_path, "cpu", "off", log=lambda m: None)
    graph = Graph(stages, ctx)
    assert graph.order("render")[:3] == ["decode", "motion", "deblur_delivered"] and "deblur" in graph.order("track")
    # the delivered ramp keys the delivered frames, never the tracking prepare and the chunks share
    hard = Graph(edit_stages(request, dataclasses.replace(delivered, deblur_ramp=False))[0], ctx)
    assert hard.key("track") == graph.key("track") and hard.key("deblur_delivered") != graph.key("deblur_delivered")
    keys = [Graph(edit_stages(request, EditSettings(deblur=DeblurStage(method=m)))[0], ctx).key("plan")
            for m in ("none", "classical")]  # fmt: skip
    assert keys[0] == Graph(edit_stages(request, default)[0], ctx).key("plan") and keys[0] != keys[1]
    neutral, last = edit_stages(parse_request(["neutral"], 0.0), delivered)
    assert last == "deblur_delivered" and [s.name for s in neutral] == ["decode", "motion", "deblur_delivered"]


def test_deblur_delivers_the_restored_face_on_moving_frames_only(clip, work, tmp_path):
    analysed = edit(clip, tmp_path / "a.mkv", work, deblur_method="classical")
    hard = edit(clip, tmp_path / "h.mkv", work, deblur_method="classical", deblur=True, deblur_ramp=False)
    ramped = edit(clip, tmp_path / "d.mkv", work, deblur_method="classical", deblur=True)
    assert ramped.stats["cached"] and "track" in ramped.stats["cached"]  # the same analysis, reused
    a, h, d = (frames_of(tmp_path / name) for name in ("a.mkv", "h.mkv", "d.mkv"))
    switched = [bool((a[t] != h[t]).any()) for t in range(len(a))]
    blended = [bool((a[t] != d[t]).any()) for t in range(len(a))]
    restored = hard.report["deblur"]["frames_restored"]
    assert not any(switched[:STILL - 1]) and sum(switched) >= MOVING - 1 and restored >= MOVING - 1
    # the ramp's window reaches RAMP_WINDOW // 2 frames ahead of the motion, and no further
    assert not any(blended[:STILL - 1 - RAMP_WINDOW // 2]) and sum(blended) > sum(switched)
    doc = ramped.report["deblur"]
    assert {k: doc[k] for k in ("method", "delivered", "frames_restored")} == {"method": "classical", "delivered": True,
                                                                            "frames_restored": restored}  # fmt: skip
    assert doc["frames_delivered"] > restored and 0 < doc["mean_delivered_weight"] < 1
    assert analysed.report["deblur"]["delivered"] is False
    written = json.loads(ramped.report_path.read_text())
    assert written["deblur"]["method"] == "classical"


def test_a_pass_through_with_deblur_writes_the_deblur_node_s_frames(clip, work, tmp_path):
    out = tmp_path / "n.mkv"
    api.edit(clip, emotion="neutral", intensity=0.0, out=out, codec="ffv1", workdir=work, progress="off",
             log=lambda m: None, deblur_method="classical", deblur=True)  # fmt: skip
    src, got = frames_of(clip), frames_of(out)
    changed = [bool((src[t] != got[t]).any()) for t in range(len(src))]
    assert not any(changed[:STILL - 1 - RAMP_WINDOW // 2]) and sum(changed) >= MOVING - 1


def test_a_preview_at_half_scale_delivers_the_restored_face(clip, work, tmp_path):
    result = api.preview(clip, emotion="happy", out=tmp_path / "p.mp4", workdir=work, progress="off", log=lambda m: None,
                         deblur_method="classical", deblur=True, compare="none")  # fmt: skip
    assert result.frames_written == STILL + MOVING and probe(tmp_path / "p.mp4").width == probe(clip).width // 2


def test_a_side_by_side_shows_the_decoded_source_beside_the_delivered_edit(clip, work):
    settings = EditSettings(deblur=DeblurStage(method="classical"), deliver_deblurred=True)
    info = probe(clip)
    indices = np.arange(info.frame_count)
    for request in (parse_request(["happy"]), parse_request(["neutral"], 0.0)):  # an edit, and a pass-through
        stages, last = edit_stages(request, settings, preview=True)
        compare = CompareStage(frames_from=last, mode="side", width=info.width, height=info.height, indices=indices)
        graph = Graph([*stages, compare], open_context(info, work, "cpu", "off", log=lambda m: None))
        shown = torch.cat([c.frames for c in graph.frames("compare", indices)])
        decoded = torch.cat([c.frames for c in graph.frames("decode", indices)])
        delivered = torch.cat([c.frames for c in graph.frames(last, indices)])
        assert torch.equal(shown[..., : info.width], decoded)  # the source side: never the restored face
        assert torch.equal(shown[..., info.width :], delivered) and not torch.equal(delivered, decoded)


def test_a_renderer_an_edit_trains_learns_the_frames_it_refines(clip, work, monkeypatch):
    from facepipe.jobs import train_renderer
    from facepipe.render.neural.config import RendererConfig

    seen = {}

    def collect(frames, *args):  # the samples' frames, by source index; training itself is not under test
        seen.update({i: frame.clone() for i, frame, _, _ in frames})
        raise StopIteration

    monkeypatch.setattr(train_renderer, "collect_samples", collect)
    settings = EditSettings(deblur=DeblurStage(method="classical"), deliver_deblurred=True)
    ctx = open_context(probe(clip), work, "cpu", "off", log=lambda m: None)
    got = {}
    for name, delivered in (("decoded", None), ("restored", settings.delivered_deblur)):
        with pytest.raises(StopIteration):
            train_renderer.shot_samples(ctx, RendererConfig(), deblur=settings.deblur, delivered=delivered)
        got[name], seen = dict(seen), {}
    chunks = VideoReader(probe(clip)).chunks(np.array(sorted(got["decoded"])))
    decoded = {int(i): frame for chunk in chunks for i, frame in zip(chunk.indices, chunk.frames)}
    assert sorted(got["decoded"]) == sorted(got["restored"]) and all(torch.equal(got["decoded"][i], decoded[i]) for i in decoded)
    moving = [i for i in got["restored"] if i >= STILL + 1]
    assert moving and all(not torch.equal(got["restored"][i], got["decoded"][i]) for i in moving)
    assert all(torch.equal(got["restored"][i], got["decoded"][i]) for i in got["restored"] if i < STILL - 1 - RAMP_WINDOW // 2)


def test_prepare_with_the_edit_s_method_is_what_the_edit_reuses(clip, tmp_path):
    work = tmp_path / "w"
    api.prepare(clip, deblur_method="classical", workdir=work, progress="off", log=lambda m: None)
    result = api.edit(clip, emotion="sad", frames="2-5", out=tmp_path / "s.%04d.png", workdir=work, progress="off",
                      log=lambda m: None, deblur_method="classical")  # fmt: skip
    assert {"track", "fit3d"} <= set(result.stats["cached"])


def test_analyze_with_the_edit_s_method_tracks_what_the_edit_reuses(clip, tmp_path, fer_weights):
    work = tmp_path / "w"
    analysed = api.analyze(clip, out_dir=tmp_path / "a", plot=False, sheet=False, deblur_method="classical", workdir=work,
                           progress="off", log=lambda m: None)  # fmt: skip
    assert analysed.fit is not None
    result = api.edit(clip, emotion="sad", frames="2-5", out=tmp_path / "s.%04d.png", workdir=work, progress="off",
                      log=lambda m: None, deblur_method="classical")  # fmt: skip
    assert {"track", "fit3d"} <= set(result.stats["cached"])
    plain = api.edit(clip, emotion="sad", frames="2-5", out=tmp_path / "p.%04d.png", workdir=work, progress="off",
                     log=lambda m: None)  # fmt: skip
    assert "track" in plain.stats["ran"]  # the method keys the tracking


def test_farm_chunks_deliver_the_frames_of_one_run(clip, work, tmp_path):
    def sequence(folder):
        return {p.name: VideoReader(probe(p)).read([0])[0] for p in sorted(folder.glob("f.*.png"))}

    kwargs = {"emotion": "happy", "workdir": work, "progress": "off", "log": lambda m: None, "deblur_method": "classical",
              "deblur": True}  # fmt: skip
    (tmp_path / "whole").mkdir()
    (tmp_path / "chunks").mkdir()
    api.edit(clip, out=tmp_path / "whole" / "f.%04d.png", **kwargs)
    for frames in ("0-7", "8-11"):  # the second chunk's context (frames before 8) is restored again
        api.edit(clip, frames=frames, out=tmp_path / "chunks" / "f.%04d.png", **kwargs)
    whole, chunked = sequence(tmp_path / "whole"), sequence(tmp_path / "chunks")
    assert sorted(whole) == sorted(chunked) and len(whole) == STILL + MOVING
    assert all((whole[name] == chunked[name]).all() for name in whole)


def run_cli(*args):
    return CliRunner().invoke(main, ["edit", *map(str, args), "--emotion", "happy", "--progress", "off"])


BAD_DEBLUR_REQUESTS = [(["--deblur-method", "gan"], 2, "--deblur-weights"),
                       (["--deblur-method", "classical", "--deblur-weights", "x.pt"], 2, "gan"),
                       (["--deblur-method", "gan", "--deblur-weights", "none.pt"], 4, "facepipe train deblur")]  # fmt: skip


def test_bad_deblur_requests_are_exit_2_and_a_missing_checkpoint_exit_4(clip, tmp_path):
    out = tmp_path / "x.mp4"
    for args, code, says in [(["--deblur"], 2, "--deblur-method"), *BAD_DEBLUR_REQUESTS]:
        res = run_cli(clip, "--out", out, "--workdir", tmp_path / "w", *args)
        assert res.exit_code == code and says in res.stderr, (args, res.stderr)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "facepipe-tmp" in p.name]


def test_analyze_refuses_bad_deblur_requests_as_edit_does(clip, tmp_path):
    for args, code, says in BAD_DEBLUR_REQUESTS:
        res = CliRunner().invoke(main, ["analyze", str(clip), "--out-dir", str(tmp_path / "a"), "--workdir",
                                        str(tmp_path / "w"), "--progress", "off", *args])  # fmt: skip
        assert res.exit_code == code and says in res.stderr, (args, res.stderr)
    assert not (tmp_path / "w").exists() or not list((tmp_path / "w").rglob("track*"))
