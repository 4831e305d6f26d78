"""Synthetic exposures: motion blur made from sharp consecutive frames.

A shutter open for N frame times integrates the light of every moment in between. Averaging N
consecutive sharp frames in *linear* light (sRGB decoded, not the code values) approximates that
exposure, and the frame at position i inside the window is the sharp truth for the moment
c = i / (N - 1) (CFMD-GAN's moment control). Every frame of the window is cropped with the
*central* frame's box, so the head's motion inside the window stays in the crop as blur.

Whole frames make long exposures (N frame times). One as long as a real shutter (``shutter``
degrees = shutter/360 of a frame time, centred on the central frame) is the moments at
:func:`shutter_times`, interpolated between the frames (:func:`facepipe.deblur.interpolate.moments_at`),
exposed: :func:`synthetic_exposure` makes either kind (the benchmark and the GAN's training share it).
"""

from __future__ import annotations

import math

import torch
from kornia.color import linear_rgb_to_rgb, rgb_to_linear_rgb
from kornia.geometry.transform import crop_and_resize

from facepipe.deblur.interpolate import moments_at


def square_corners(cx: float, cy: float, side: float) -> torch.Tensor:
    """(1,4,2) float32 corners (top-left, top-right, bottom-right, bottom-left; x, y in pixels) of
    the square of ``side`` pixels centred on (cx, cy)."""
    h = side / 2.0
    return torch.tensor([[[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h]]], dtype=torch.float32)


def window_crops(frames: torch.Tensor, cx: float, cy: float, side: float, size: int) -> torch.Tensor:
    """frames (N,3,H,W) float sRGB 0..1 -> (N,3,size,size): every frame cropped with one box (the
    square of ``side`` px around (cx, cy)), bilinear."""
    corners = square_corners(cx, cy, side).to(frames.device).expand(frames.shape[0], 4, 2)
    return crop_and_resize(frames, corners, (size, size), mode="bilinear", align_corners=True)


def expose(crops: torch.Tensor) -> torch.Tensor:
    """crops (N,3,S,S) sharp sRGB 0..1 of consecutive moments -> (3,S,S) sRGB 0..1: their mean in
    linear light, i.e. one exposure over the N moments."""
    linear = rgb_to_linear_rgb(crops.clamp(0.0, 1.0)).mean(0, keepdim=True)
    return linear_rgb_to_rgb(linear)[0].clamp(0.0, 1.0)


def moments(n: int) -> torch.Tensor:
    """(n,) float32 moment c in [0, 1] of each frame of an n-frame exposure (0: shutter opens)."""
    return torch.linspace(0.0, 1.0, n) if n > 1 else torch.full((1,), 0.5)


def shutter_times(n: int, shutter: float, samples: int) -> torch.Tensor:
    """(samples,) float64 times, in frames from the first of an ``n``-frame window (n odd), of
    ``samples`` equally spaced moments over a ``shutter``-degree exposure centred on the
    central frame (at most 360 * (n - 1) degrees: the window's span)."""
    if not 0 < shutter <= 360 * (n - 1):
        raise ValueError(f"a {shutter} degree shutter does not fit a {n}-frame window")
    half = shutter / 720.0
    return (n - 1) / 2.0 + torch.linspace(-half, half, samples, dtype=torch.float64)



def shutter_window(shutter: float) -> int:
    """The fewest consecutive frames (odd) whose span holds a ``shutter``-degree exposure centred
    on the central one."""
    return 2 * max(1, math.ceil(shutter / 720.0)) + 1


def synthetic_exposure(crops: torch.Tensor, shutter: float | None = None, samples: int = 16) -> tuple:
    """crops (N,3,S,S) sharp sRGB 0..1 of consecutive frames (one box, N odd) -> (blurred (3,S,S),
    sharp (M,3,S,S) the moments it integrates, times (M,) float64 of those moments in frames from
    the first crop): the N whole frames (``shutter`` None; M = N), or ``samples`` moments over a
    ``shutter``-degree exposure centred on the central frame, interpolated by optical flow."""
    if shutter is None:
        return expose(crops), crops, torch.arange(len(crops), dtype=torch.float64)
    times = shutter_times(len(crops), shutter, samples)
    sharp = moments_at(crops, times)
    return expose(sharp), sharp, times
