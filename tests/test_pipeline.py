"""The pipeline's machinery: cache keys, the artifact cache, the pull graph and chunk-level resume."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest

from facepipe.demo import make_demo_clip
from facepipe.io.media import probe
from facepipe.pipeline.artifacts import Artifact
from facepipe.pipeline.cache import ArtifactCache
from facepipe.pipeline.context import RunContext
from facepipe.pipeline.graph import Graph
from facepipe.pipeline.hashing import cache_key
from facepipe.pipeline.stage import AnalysisStage, ChunkedStage
from facepipe.stages.decode import DecodeStage
from facepipe.stages.scan import ScanStage


@dataclass
class Numbers(Artifact):
    values: np.ndarray
    rate: Fraction
    label: str


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_demo_clip(tmp_path_factory.mktemp("clip") / "demo.mp4", seconds=1.2, size=96, audio=False)


def test_cache_key_depends_on_everything_that_changes_the_output():
    base = cache_key("track", "1", {"n": 1}, {"media": "abc"})
    assert base == cache_key("track", "1", {"n": 1}, {"media": "abc"})
    assert base != cache_key("track", "2", {"n": 1}, {"media": "abc"})
    assert base != cache_key("track", "1", {"n": 2}, {"media": "abc"})
    assert base != cache_key("track", "1", {"n": 1}, {"media": "abd"})
    assert base != cache_key("fit3d", "1", {"n": 1}, {"media": "abc"})


def test_artifact_round_trip_keeps_arrays_fractions_and_json(tmp_path):
    cache = ArtifactCache(tmp_path)
    art = Numbers(values=np.arange(6, dtype=np.float32).reshape(2, 3), rate=Fraction(24000, 1001), label="x")
    cache.put("numbers", "k1", art)
    back = cache.get("numbers", "k1", Numbers)
    np.testing.assert_array_equal(back.values, art.values)
    assert back.rate == Fraction(24000, 1001) and back.label == "x"
    assert cache.get("numbers", "missing", Numbers) is None


def test_incomplete_cache_entry_is_not_trusted(tmp_path):
    cache = ArtifactCache(tmp_path)
    cache.put("numbers", "k1", Numbers(values=np.zeros(2), rate=Fraction(1), label=""))
    (tmp_path / "numbers" / "k1" / "complete").unlink()  # as if killed before the rename
    assert cache.get("numbers", "k1", Numbers) is None


@dataclass
class CountingStage(AnalysisStage):
    """Sums the scan's mean colour; counts how often it really runs."""

    offset: float = 0.0
    name = "counting"
    version = "1"
    inputs = ("scan",)
    artifact = Numbers
    calls = 0

    def run(self, ctx, inputs):
        type(self).calls += 1
        values = inputs["scan"].mean_rgb.sum(axis=1) + self.offset
        return Numbers(values=values, rate=ctx.media.fps, label="sum")


def test_graph_resolves_inputs_and_reuses_the_cache(clip, tmp_path):
    info = probe(clip)
    CountingStage.calls = 0
    stages = lambda offset=0.0: [DecodeStage(), ScanStage(), CountingStage(offset=offset)]  # noqa: E731
    ctx = RunContext(media=info, cache=ArtifactCache(tmp_path), progress_mode="off")
    first = Graph(stages(), ctx).get("counting")
    assert ctx.stats["ran"] == ["scan", "counting"] and CountingStage.calls == 1
    assert first.values.shape == (info.frame_count,)

    ctx2 = RunContext(media=info, cache=ArtifactCache(tmp_path), progress_mode="off")
    again = Graph(stages(), ctx2).get("counting")
    assert ctx2.stats["cached"] == ["counting"] and CountingStage.calls == 1
    np.testing.assert_array_equal(again.values, first.values)

    ctx3 = RunContext(media=info, cache=ArtifactCache(tmp_path), progress_mode="off")
    Graph(stages(offset=1.0), ctx3).get("counting")
    assert ctx3.stats["ran"] == ["counting"] and ctx3.stats["cached"] == ["scan"]


def test_graph_orders_nodes_after_their_inputs_and_refuses_cycles(clip):
    from facepipe.errors import FacepipeError

    @dataclass
    class Loop(AnalysisStage):
        name = "loop"
        version = "1"
        inputs = ("loop",)
        artifact = Numbers

        def run(self, ctx, inputs):
            raise AssertionError("never runs")

    ctx = RunContext(media=probe(clip), cache=None, progress_mode="off")
    assert Graph([CountingStage(), ScanStage(), DecodeStage()], ctx).order("counting") == ["decode", "scan", "counting"]
    with pytest.raises(FacepipeError, match="cycle"):
        Graph([Loop()], ctx).order("loop")


@dataclass
class FlakyChunkedStage(ChunkedStage):
    """Records which chunks it computed; raises once at a chosen chunk, like a killed run."""

    name = "flaky"
    version = "1"
    frames_from = "decode"
    artifact = Numbers
    fail_at = None
    computed: list = None

    def run_chunk(self, ctx, chunk, inputs, previous):
        start = int(chunk.indices[0])
        if start == type(self).fail_at:
            type(self).fail_at = None
            raise RuntimeError("killed")
        type(self).computed.append(start)
        carried = 0.0 if previous is None else float(previous.values[-1])
        return Numbers(values=chunk.frames.mean(dim=(1, 2, 3)).numpy() + carried * 0, rate=Fraction(1), label="")

    def combine(self, parts):
        return Numbers(values=np.concatenate([p.values for p in parts]), rate=Fraction(1), label="")


def test_chunked_stage_resumes_after_a_failure(clip, tmp_path):
    info = probe(clip)
    frame_bytes = 3 * 4 * info.width * info.height
    ctx = RunContext(media=info, cache=ArtifactCache(tmp_path), progress_mode="off", chunk_bytes=frame_bytes * 8)
    plan = ctx.chunk_plan()
    assert len(plan) >= 3
    FlakyChunkedStage.computed, FlakyChunkedStage.fail_at = [], int(plan[2][0])
    with pytest.raises(RuntimeError):
        Graph([DecodeStage(), FlakyChunkedStage()], ctx).get("flaky")
    assert FlakyChunkedStage.computed == [int(plan[0][0]), int(plan[1][0])]

    FlakyChunkedStage.computed = []
    ctx2 = RunContext(media=info, cache=ArtifactCache(tmp_path), progress_mode="off", chunk_bytes=frame_bytes * 8)
    result = Graph([DecodeStage(), FlakyChunkedStage()], ctx2).get("flaky")
    assert FlakyChunkedStage.computed == [int(p[0]) for p in plan[2:]]
    assert ctx2.stats["chunks_cached"] == 2
    assert result.values.shape == (info.frame_count,)


def test_scan_statistics_are_sane(clip, tmp_path):
    info = probe(clip)
    ctx = RunContext(media=info, cache=None, progress_mode="off")
    stats = Graph([DecodeStage(), ScanStage()], ctx).get("scan")
    np.testing.assert_array_equal(stats.indices, np.arange(info.frame_count))
    np.testing.assert_allclose(stats.histograms.sum(axis=2), 1.0, atol=1e-5)
    assert (stats.sharpness > 0).all()


def test_cache_write_failure_is_a_one_line_user_error(tmp_path):
    from facepipe.errors import FacepipeError

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")  # the cache root sits under a regular file: every write fails
    cache = ArtifactCache(blocker / "cache")
    with pytest.raises(FacepipeError, match="cannot write the analysis cache"):
        cache.put("numbers", "k1", Numbers(values=np.zeros(2), rate=Fraction(1), label=""))


class _RecordingWriter:
    """A writer that records what reaches it, and fails on a chosen chunk."""

    def __init__(self, fail_at: int | None = None):
        self.seen, self.fail_at = [], fail_at

    def write(self, frames, indices):
        if indices[0] == self.fail_at:
            raise OSError("disk full")
        self.seen.append(list(indices))


def test_write_behind_keeps_order_and_reports_writer_errors():
    from facepipe.pipeline.synthesis import write_behind

    writer = _RecordingWriter()
    with write_behind(writer) as write:
        for start in range(0, 50, 5):
            write(None, list(range(start, start + 5)))
    assert writer.seen == [list(range(s, s + 5)) for s in range(0, 50, 5)]  # every chunk, in order, before exit

    failing = _RecordingWriter(fail_at=10)
    with pytest.raises(OSError, match="disk full"), write_behind(failing) as write:
        for start in range(0, 50, 5):
            write(None, list(range(start, start + 5)))
    assert failing.seen == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]  # nothing after the failed chunk


def test_write_behind_stops_writing_when_the_caller_fails():
    from facepipe.pipeline.synthesis import write_behind

    writer = _RecordingWriter()
    with pytest.raises(ValueError, match="render failed"), write_behind(writer, depth=4) as write:
        write(None, [0])
        raise ValueError("render failed")
    assert writer.seen in ([], [[0]])  # the chunk in flight may land; the caller's error wins
