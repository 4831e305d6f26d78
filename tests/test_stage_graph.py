"""The edit as a graph of stages: the nodes it pulls, in order, and what a second pull reuses."""

from __future__ import annotations

import numpy as np
import pytest

from facepipe.demo import make_demo_clip
from facepipe.io.codecs import choose_codec
from facepipe.io.media import probe
from facepipe.io.reader import VideoReader
from facepipe.jobs.context import open_context
from facepipe.jobs.edit import EditSettings, edit_stages, make_writer
from facepipe.pipeline.graph import Graph
from facepipe.pipeline.stage import AnalysisStage, ChunkedStage
from facepipe.plan.request import parse_request
from facepipe.stages.encode import EncodeStage

EDIT_ORDER = ["decode", "deblur", "track", "fit3d", "plan", "repeats", "render", "composite", "smooth", "encode"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_demo_clip(tmp_path_factory.mktemp("graph") / "astro.mp4", seconds=0.6, size=192, audio=False)


def edit_graph(clip, out, work, request=None):
    info = probe(clip)
    request = request or parse_request(["happy"])
    stages, last = edit_stages(request, EditSettings(appearance_strength=0.5))
    indices = np.arange(info.frame_count)
    writer = make_writer(out, info, choose_codec("ffv1", info, out), indices, 0, {}, True, clip)
    ctx = open_context(info, work, "cpu", "off", log=lambda m: None)
    return Graph([*stages, EncodeStage(writer, indices, frames_from=last)], ctx), ctx


def test_the_edit_graph_pulls_its_nodes_in_order_and_a_second_pull_reuses_every_cached_one(clip, tmp_path):
    first, ctx = edit_graph(clip, tmp_path / "a.mkv", tmp_path / "w")
    assert first.order("encode") == EDIT_ORDER
    assert first.order("expression") == ["decode", "deblur", "track", "expression"]
    written = first.get("encode")
    assert written.frames == probe(clip).frame_count
    cacheable = [n for n in EDIT_ORDER if isinstance(first.stage(n), (AnalysisStage, ChunkedStage))]
    assert cacheable == ["track", "fit3d", "plan", "repeats"]
    assert set(ctx.stats["ran"]) == {*cacheable, "encode"} and not ctx.stats["cached"]
    assert ctx.stats["streamed"][-3:] == ["render", "composite", "smooth"]

    again, ctx2 = edit_graph(clip, tmp_path / "b.mkv", tmp_path / "w")
    again.get("encode")
    assert ctx2.stats["ran"] == ["encode"] and sorted(ctx2.stats["cached"]) == sorted(cacheable)
    a, b = (VideoReader(probe(tmp_path / n)).read(range(written.frames)) for n in ("a.mkv", "b.mkv"))
    assert (a == b).all(), "the same request gave different frames"


def test_a_pass_through_request_pulls_decode_and_encode_only(clip, tmp_path):
    graph, ctx = edit_graph(clip, tmp_path / "p.mkv", tmp_path / "w", parse_request(["neutral"], 0.0))
    assert graph.order("encode") == ["decode", "encode"]
    graph.get("encode")
    assert ctx.stats["ran"] == ["encode"] and ctx.stats["streamed"] == []


def test_stage_keys_change_with_parameters_and_upstream(clip, tmp_path):
    happy, _ = edit_graph(clip, tmp_path / "a.mkv", tmp_path / "w")
    sad, _ = edit_graph(clip, tmp_path / "b.mkv", tmp_path / "w", parse_request(["sad"]))
    assert happy.key("fit3d") == sad.key("fit3d")  # the analysis is shared between requests
    assert happy.key("plan") != sad.key("plan") and happy.key("render") != sad.key("render")
