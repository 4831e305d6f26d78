"""The deblur node (issue 16): face motion before tracking, restoration of blurred frames' faces,
cache keys, and ``facepipe deblur``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from facepipe.cli import main
from facepipe.deblur.checkpoint import save_checkpoint
from facepipe.deblur.restore import feather, paste_change
from facepipe.deblur.train import train_deblur
from facepipe.face.extent import square_around
from facepipe.io.media import probe
from facepipe.pipeline.context import RunContext
from facepipe.pipeline.graph import Graph
from facepipe.stages.deblur import DeblurStage
from facepipe.stages.decode import DecodeStage
from facepipe.stages.graph import analysis_stages
from facepipe.stages.motion import MotionStage, box_velocity
from synthetic_faces import face_path_frames, still_then_moving_centers, write_clip
from test_deblur_gan import TINY, moving_windows

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STILL, MOVING = 6, 8  # frames: the face holds still, then moves 9 px/frame


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    centers = still_then_moving_centers(STILL, MOVING, x0=110.0)
    return write_clip(tmp_path_factory.mktemp("deblur") / "moving.mp4", face_path_frames(centers, head_width=120))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny GAN checkpoint after a few training steps (its output is not the identity)."""
    windows = moving_windows(6)
    g, r, report = train_deblur(windows[:4], windows[4:], TINY, steps=3, log=lambda *a: None)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", TINY, g, r, report)


def graph(clip, deblur: DeblurStage) -> Graph:
    ctx = RunContext(media=probe(clip), cache=None, progress_mode="off", log=lambda m: None)
    return Graph([DecodeStage(), MotionStage(), deblur], ctx)


def frames_of(g: Graph, node: str) -> torch.Tensor:
    return torch.cat([c.frames for c in g.frames(node, np.arange(g.ctx.media.frame_count))])


def test_box_velocity_differences_centres_and_not_jumps_to_another_face():
    box = np.array([[0, 0, 20, 20], [3, 0, 23, 20], [6, 0, 26, 20], [60, 0, 80, 20], [np.nan] * 4], np.float32)
    v = box_velocity(box)
    assert np.allclose(v[:3], [[3, 0]] * 3) and np.allclose(v[3:], 0)  # frame 3 is another face, 4 has none


def test_paste_change_touches_only_the_square_and_the_feather_reaches_zero():
    frame = torch.rand(3, 40, 50)
    w = feather(16)
    assert w[0].abs().max() == 0 and w[:, -1].abs().max() == 0 and w[8, 8] == 1
    out = paste_change(frame, torch.full((3, 16, 16), 0.1) * w, cx=20.0, cy=15.0, side=10.0)
    changed = (out != frame).any(0)
    ys, xs = torch.nonzero(changed, as_tuple=True)
    assert changed.any() and xs.min() >= 15 and xs.max() <= 25 and ys.min() >= 10 and ys.max() <= 20


def test_method_none_is_a_bit_identical_pass_through_that_pulls_no_motion(clip):
    g = graph(clip, DeblurStage())
    assert torch.equal(frames_of(g, "deblur"), frames_of(g, "decode"))
    assert "motion" not in g.ctx.stats["ran"] and DeblurStage().params() == {"method": "none"}


@pytest.mark.parametrize("method", ["classical", "gan"])
def test_only_the_face_square_of_blurred_frames_changes(clip, checkpoint, method):
    g = graph(clip, DeblurStage(method=method, weights=str(checkpoint)))
    restored, source = frames_of(g, "deblur"), frames_of(g, "decode")
    motion = g.get("motion")
    assert (motion.speed[:STILL - 1] < 1.5).all() and (motion.speed[STILL + 1:] > 6).all()
    changed = (restored != source).any(1)  # (T,H,W)
    assert not changed[:STILL - 1].any()  # still frames pass bit for bit
    assert sorted(g.opened["deblur"].restored) == [t for t in range(len(source)) if motion.speed[t] >= 3]
    for t in g.opened["deblur"].restored:
        cx, cy, side = square_around(motion.box[t])
        ys, xs = torch.nonzero(changed[t], as_tuple=True)
        assert len(xs) and xs.min() >= cx - side / 2 - 1 and xs.max() <= cx + side / 2 + 1
        assert ys.min() >= cy - side / 2 - 1 and ys.max() <= cy + side / 2 + 1


def test_cache_keys_follow_method_weights_and_threshold(clip, checkpoint, tmp_path):
    other = tmp_path / "other.pt"
    other.write_bytes(checkpoint.read_bytes() + b"\0")  # a different file (torch.load ignores the tail)
    variants = [DeblurStage(), DeblurStage(method="classical"), DeblurStage(method="classical", threshold=5.0),
                DeblurStage(method="gan", weights=str(checkpoint)), DeblurStage(method="gan", weights=str(other))]
    ctx = RunContext(media=probe(clip), cache=None, progress_mode="off", log=lambda m: None)
    keys = {Graph(analysis_stages(deblur=d), ctx).key("track") for d in variants}
    assert len(keys) == len(variants)
    (tmp_path / "copy.pt").write_bytes(checkpoint.read_bytes())
    same = DeblurStage(method="gan", weights=str(tmp_path / "copy.pt"))
    assert same.params() == variants[3].params()  # the file's content names it, not its path


def run_cli(*args):
    return CliRunner().invoke(main, ["deblur", *map(str, args), "--progress", "off"])


def test_cli_writes_the_clip_and_the_moments_and_refuses_existing_outputs(clip, checkpoint, tmp_path):
    out = tmp_path / "out.mp4"
    res = run_cli(clip, "--weights", checkpoint, "--out", out, "--moments", 3, "--workdir", tmp_path / "work")
    assert res.exit_code == 0, res.output + res.stderr
    src, got = probe(clip), probe(out)
    assert (got.frame_count, got.fps, got.width) == (src.frame_count, src.fps, src.width)
    restored = int(res.stderr.split(" frames restored")[0].rsplit(" ", 1)[1].split("/")[0])  # "N/T frames restored"
    pngs = sorted(p.name for p in (tmp_path / "out.moments").iterdir())
    assert restored >= MOVING - 1 and len(pngs) == 3 * restored and pngs[0].endswith("_m0.png")
    before = out.read_bytes()
    res = run_cli(clip, "--weights", checkpoint, "--out", out, "--workdir", tmp_path / "work")
    assert res.exit_code == 3 and out.read_bytes() == before and "--force" in res.stderr
    res = run_cli(clip, "--method", "classical", "--out", out, "--force", "--workdir", tmp_path / "work")
    assert res.exit_code == 0 and out.read_bytes() != before
    assert not [p for p in tmp_path.iterdir() if "facepipe-tmp" in p.name]


def test_cli_bad_requests_are_exit_2_and_a_missing_checkpoint_exit_4(clip, tmp_path):
    assert run_cli(clip, "--out", tmp_path / "a.mp4").exit_code == 2  # gan without weights
    res = run_cli(clip, "--method", "classical", "--moments", 2, "--out", tmp_path / "b.mp4")
    assert res.exit_code == 2 and "gan" in res.stderr
    res = run_cli(clip, "--weights", tmp_path / "missing.pt", "--out", tmp_path / "c.mp4")
    assert res.exit_code == 4 and "facepipe train deblur" in res.stderr
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "c.mp4").exists()


def test_a_clip_without_faces_passes_through_with_its_audio(make_clip, tmp_path):
    from media_checks import audio_packets

    src = make_clip(width=64, height=48, frames=10, audio=True)
    out = tmp_path / "plain.deblurred.mp4"
    res = run_cli(src, "--method", "classical", "--out", out, "--workdir", tmp_path / "work")
    assert res.exit_code == 0, res.stderr
    assert probe(out).frame_count == 10 and audio_packets(str(out)) == audio_packets(str(src))
