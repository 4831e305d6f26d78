"""The deblur GAN (issue 16): networks, the training recipe on tiny configs, checkpoints, the CLI."""

from __future__ import annotations

import dataclasses

import numpy as np

import json

import pytest
import torch
from click.testing import CliRunner

from facepipe.cli import main
from facepipe.deblur.checkpoint import load_checkpoint, save_checkpoint
from facepipe.deblur.config import DeblurConfig
from facepipe.deblur.train import order_invariant_l1, train_deblur
from facepipe.errors import FacepipeError
from facepipe.jobs.train_deblur import sharp_enough, window_starts
from facepipe.nn.deblur_generator import MomentDeblurGenerator, warp_features
from facepipe.nn.moment_regressor import MomentRegressor
from facepipe.nn.patch_discriminator import PatchDiscriminator

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = DeblurConfig(width=4, embed_dim=16, regressor_width=4, size=32, exposure=5, train_size=24, batch=2)


def moving_windows(count: int = 6, size: int = 32, frames: int = 5, step: int = 2) -> torch.Tensor:
    """(count,frames,3,size,size) uint8: a smooth random texture sliding ``step`` px per frame."""
    g = torch.Generator().manual_seed(1)
    big = size + step * frames
    tex = torch.nn.functional.interpolate(torch.rand(count, 3, 8, 8, generator=g), size=(big, big), mode="bicubic")
    tex = (tex.clamp(0, 1) * 255).round().byte()
    return torch.stack([torch.stack([t[:, 0:size, step * i:step * i + size] for i in range(frames)]) for t in tex])


def test_an_untrained_generator_returns_its_input_and_the_moment_conditions_it():
    g = MomentDeblurGenerator(width=4, levels=2, embed_dim=16)
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(g(x, torch.tensor([0.0, 1.0])), x)  # the residual head starts at zero
    torch.nn.init.normal_(g.head.weight, std=0.1)
    a, b = g(x[:1], torch.zeros(1)), g(x[:1], torch.ones(1))
    assert a.shape == (1, 3, 16, 16) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="divisible"):
        g(torch.rand(1, 3, 18, 18), torch.zeros(1))


def test_discriminator_and_regressor_shapes():
    x = torch.rand(3, 3, 32, 32)
    assert PatchDiscriminator(4, layers=3)(x, x).shape == (3, 1, 4, 4)
    r = MomentRegressor(4)(x, x)
    assert r.shape == (3,) and bool(((r > 0) & (r < 1)).all())


def test_zero_offsets_sample_the_features_unchanged():
    f = torch.rand(1, 5, 7, 9)
    assert torch.allclose(warp_features(f, torch.zeros(1, 2, 7, 9)), f, atol=1e-5)


def test_the_l1_loss_does_not_care_which_way_the_motion_went():
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    assert order_invariant_l1(a, b, a, b) == 0
    assert order_invariant_l1(a, b, b, a) == 0  # the reversed assignment is as good
    assert order_invariant_l1(a, b, a, a) > 0


def test_window_selection_and_sharpness_filter():
    tracked = torch.ones(30, dtype=torch.bool).numpy()
    tracked[8] = False
    assert window_starts(tracked, 7, 10).tolist() == [0, 14, 21]  # 7..13 holds the untracked frame 8
    tracked[8] = True
    assert window_starts(tracked, 7, 10).tolist() == [0, 7, 14, 21] and len(window_starts(tracked, 7, 2)) == 2
    sharp = (torch.rand(4, 5, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 255).byte()
    soft = torch.nn.functional.avg_pool2d(sharp[0].float(), 5, 1, 2).byte()[None]
    keep = sharp_enough(torch.cat([sharp, soft]))
    assert keep[:4].all() and not keep[4]


def test_training_runs_validates_and_round_trips(tmp_path):
    windows = moving_windows(6)
    g, r, report = train_deblur(windows[:4], windows[4:], TINY, steps=3, log=lambda *a: None)
    assert report["steps"] == 3 and set(report["validation_after"]) == {"psnr_input", "psnr_central", "order", "regressor_real"}
    path = save_checkpoint(tmp_path / "d.pt", TINY, g, r, report)
    g2, r2, config, saved = load_checkpoint(path)
    x, c = torch.rand(1, 3, 32, 32), torch.tensor([0.3])
    assert config == TINY and saved["steps"] == 3 and torch.equal(g(x, c), g2(x, c))
    again = train_deblur(windows[:4], windows[4:], TINY, steps=3, log=lambda *a: None)[0]
    assert torch.equal(again(x, c), g(x, c))  # seeded


def test_shutter_training_makes_the_benchmark_s_exposures_and_the_checkpoint_says_so(tmp_path, monkeypatch):
    from facepipe.deblur import exposure, train

    calls = []

    def recorded(crops, shutter=None, samples=16):
        calls.append((len(crops), shutter, samples))
        return exposure.synthetic_exposure(crops, shutter, samples)

    monkeypatch.setattr(train, "synthetic_exposure", recorded)  # the one function benchmarks/deblur.py calls too
    config = dataclasses.replace(TINY, shutter=180.0, samples=5)
    windows = moving_windows(6)
    blurred, first, mirror, c = train.sample_batch(windows, config, np.random.default_rng(0), "cpu")
    assert calls == [(3, 180.0, 5)] * config.batch and set(c.tolist()) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    # a half-frame exposure smears the 2 px/frame slide over 1 px: much less than 3 whole frames do
    crops = windows[0, :3].float() / 255
    whole, short = exposure.expose(crops), exposure.synthetic_exposure(crops, 180.0, 5)[0]
    assert (short - crops[1]).abs().mean() < 0.5 * (whole - crops[1]).abs().mean()
    g, r, report = train_deblur(windows[:4], windows[4:], config, steps=2, log=lambda *a: None)
    path = save_checkpoint(tmp_path / "s.pt", config, g, r, report)
    _, _, saved_config, saved = load_checkpoint(path)
    assert saved_config.shutter == 180.0 and saved_config.samples == 5 and "180-degree shutter" in saved["exposures"]
    assert "whole frames" in train.exposure_recipe(TINY) and TINY.shutter is None


def test_cli_refuses_a_shutter_longer_than_the_window(tmp_path):
    res = CliRunner().invoke(main, ["train", "deblur", "clip.mp4", "--out", str(tmp_path / "d.pt"), "--steps", "1",
                                    "--exposure", "3", "--shutter", "900"])  # fmt: skip
    assert res.exit_code == 2 and "--shutter 900" in res.output and not (tmp_path / "d.pt").exists()


def test_checkpoint_errors_say_what_to_do(tmp_path):
    with pytest.raises(FacepipeError, match="facepipe train deblur"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(FacepipeError, match="not a facepipe deblur checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_cli_refuses_a_missing_budget_and_an_existing_output(tmp_path):
    out = tmp_path / "d.pt"
    out.write_bytes(b"x")
    runner = CliRunner()
    res = runner.invoke(main, ["train", "deblur", "clip.mp4", "--out", str(tmp_path / "new.pt")])
    assert res.exit_code == 2 and "--steps or --minutes" in res.output
    res = runner.invoke(main, ["train", "deblur", "clip.mp4", "--out", str(out), "--steps", "1"])
    assert res.exit_code == 3 and out.read_bytes() == b"x"


def test_cli_trains_on_a_shared_clip(shared_clips, tmp_path):
    out = tmp_path / "d.pt"
    res = CliRunner().invoke(main, ["train", "deblur", str(shared_clips / "lp_d0_grin.mp4"), "--steps", "2", "--size", "32",
                                    "--width", "4", "--max-windows", "4", "--exposure", "5", "--out", str(out),
                                    "--workdir", str(tmp_path / "work")])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["steps"] == 2 and out.is_file()
    assert load_checkpoint(out)[2].exposure == 5
