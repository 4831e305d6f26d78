"""Face deblurring: synthetic exposures and the classical baseline (issue 16's instruments)."""

from __future__ import annotations

import pytest
import torch
from kornia.color import linear_rgb_to_rgb, rgb_to_linear_rgb
from kornia.metrics import psnr

from facepipe.deblur.classical import convolve_padded, deblur_srgb, richardson_lucy, trajectory_kernel
from facepipe.deblur.exposure import expose, moments, window_crops

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def texture(size: int = 96, seed: int = 0) -> torch.Tensor:
    """(1,3,size,size) smooth random texture in 0..1 (a face-like spectrum: detail at several scales)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size // 8, size // 8, generator=g)
    fine = torch.rand(1, 3, size // 2, size // 2, generator=g)
    up = lambda x: torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)  # noqa: E731
    return (0.7 * up(coarse) + 0.3 * up(fine)).clamp(0, 1)


def test_an_exposure_averages_light_not_code_values():
    black, white = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    mixed = expose(torch.cat([black, white]))
    expected = linear_rgb_to_rgb(torch.full((1, 3, 1, 1), 0.5))[0, 0, 0, 0]
    assert torch.allclose(mixed, torch.full_like(mixed, float(expected)), atol=1e-5)
    assert float(expected) > 0.7  # 0.5 of the light is code value ~0.735, not 0.5
    assert torch.allclose(moments(5), torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])) and moments(1).item() == 0.5


def test_window_crops_use_one_box_for_every_frame():
    frames = torch.cat([torch.full((1, 3, 40, 60), 0.2), torch.full((1, 3, 40, 60), 0.6)])
    crops = window_crops(frames, cx=30.0, cy=20.0, side=16.0, size=8)
    assert crops.shape == (2, 3, 8, 8)
    assert torch.allclose(crops[0], torch.full_like(crops[0], 0.2)) and torch.allclose(crops[1], torch.full_like(crops[1], 0.6))


def test_trajectory_kernel_is_the_normalised_path():
    still = trajectory_kernel(torch.zeros(1, 2))
    assert still.shape == (3, 3) and still[1, 1] == pytest.approx(1.0)
    line = trajectory_kernel(torch.tensor([[x, 0.0] for x in range(-3, 4)]), samples_per_step=1)
    assert line.shape == (9, 9) and float(line.sum()) == pytest.approx(1.0)
    assert torch.allclose(line[4, 1:8], torch.full((7,), 1 / 7)) and float(line[4].sum()) == pytest.approx(1.0)
    dense = trajectory_kernel(torch.tensor([[-3.0, -1.0], [3.0, 2.0]]))
    assert float(dense.sum()) == pytest.approx(1.0) and (dense > 0).sum() >= 7  # a continuous streak, not two dots


def test_a_point_kernel_changes_nothing():
    img = texture(32)
    point = trajectory_kernel(torch.zeros(1, 2))
    assert torch.allclose(convolve_padded(img, point), img, atol=1e-5)
    assert torch.allclose(richardson_lucy(img + 0.01, point, 3), img + 0.01, atol=1e-4)


def test_richardson_lucy_restores_a_rigid_motion_blur():
    """Where the blur is the kernel's (a rigid exposure along a known path), the baseline gains
    several dB and keeps the image's brightness; on real exposures it does not (benchmarks/deblur.py)."""
    sharp = texture()
    kernel = trajectory_kernel(torch.tensor([[x, 0.5 * x] for x in range(-4, 5)], dtype=torch.float32), samples_per_step=1)
    blurred = linear_rgb_to_rgb(convolve_padded(rgb_to_linear_rgb(sharp), kernel).clamp(0, 1))
    restored = deblur_srgb(blurred, kernel, iterations=10)
    inner = (..., slice(12, -12), slice(12, -12))
    before, after = float(psnr(blurred[inner], sharp[inner], 1.0)), float(psnr(restored[inner], sharp[inner], 1.0))
    assert after > before + 2.0, (before, after)
    assert restored.min() >= 0 and restored.max() <= 1
    assert abs(float(restored.mean() - sharp.mean())) < 0.01


def moving_texture(times, velocity=(6.0, -2.0), size: int = 96) -> torch.Tensor:
    """(len(times),3,size,size): :func:`texture` moved by ``velocity`` px per frame, at ``times``."""
    from facepipe.deblur.interpolate import warp_by

    v = torch.tensor(velocity)[:, None, None]
    return torch.stack([warp_by(texture(size)[0], -t * v.expand(2, size, size)) for t in times])


def test_moments_between_frames_follow_the_motion_not_a_cross_fade():
    from facepipe.deblur.interpolate import moments_at

    frames, truth = moving_texture([0.0, 1.0, 2.0]), moving_texture([0.5, 1.25])
    got = moments_at(frames, [0.5, 1.0, 1.25])
    assert torch.equal(got[1], frames[1])  # a whole time is the frame itself
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))  # the borders hold content from outside
    faded = torch.stack([(frames[0] + frames[1]) / 2, 0.75 * frames[1] + 0.25 * frames[2]])
    flow_db, fade_db = (float(psnr(x[inner], truth[inner], 1.0)) for x in (got[[0, 2]], faded))
    assert flow_db > fade_db + 6 and flow_db > 30, (flow_db, fade_db)


def test_a_shutter_exposure_spans_its_angle_around_the_central_frame():
    from facepipe.deblur.exposure import shutter_times
    from facepipe.deblur.interpolate import moments_at

    def shutter_exposure(crops, shutter, samples):
        return expose(moments_at(crops, shutter_times(len(crops), shutter, samples)))

    assert torch.allclose(shutter_times(3, 180.0, 5), torch.tensor([0.75, 0.875, 1.0, 1.125, 1.25], dtype=torch.float64))
    assert torch.allclose(shutter_times(7, 360.0, 3), torch.tensor([2.5, 3.0, 3.5], dtype=torch.float64))
    with pytest.raises(ValueError):
        shutter_times(3, 900.0, 5)
    still = texture()[0].expand(3, -1, -1, -1)
    exposed = shutter_exposure(still, 180.0, 9)
    assert float((exposed - still[1]).abs().mean()) < 1e-3  # nothing moves: no blur (Farneback's flow is ~0, not 0)
    frames = moving_texture([0.0, 1.0, 2.0])
    short, long_ = shutter_exposure(frames, 90.0, 9), shutter_exposure(frames, 720.0, 33)
    err = lambda x: float((x - frames[1])[:, 12:-12, 12:-12].abs().mean())  # noqa: E731
    assert err(short) < err(long_) / 3  # blur grows with the shutter
