"""Moments between consecutive face crops, by optical flow: exposures as short as a real shutter.

An exposure averaged from whole frames spans whole frame times: 7 frames at 25-30 fps are
230-280 ms, about ten times a real 1/50 s shutter, and its samples jump by a frame's motion
(ghosts rather than a smear). Moments in between make exposures of any length, densely sampled.

The flow between two consecutive crops (cut with the same box, so the head's motion is in it) is
Farneback's (OpenCV: classical, no weights to ship). A moment ``tau`` in (0, 1) between frames
0 and 1 is each frame warped to it and the two cross-faded by distance; the flow from the moment
back to each frame is approximated from the two frame-to-frame flows as in Super SloMo (Jiang et
al., CVPR 2018), which is exact for motion that is linear in time:

    F(tau->0) = -(1 - tau) tau F(0->1) + tau^2 F(1->0)
    F(tau->1) = (1 - tau)^2 F(0->1) - tau (1 - tau) F(1->0)
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

#: Farneback's parameters: pyramid scale, levels, window, iterations, poly_n, poly_sigma. Five
#: levels and a 15 px window follow a 128 px face crop's motion of up to ~20 px per frame.
FARNEBACK = (0.5, 5, 15, 3, 5, 1.2)


def dense_flow(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a, b (3,S,S) float sRGB 0..1 -> (2,S,S) float32 flow (dx, dy) px from ``a`` to ``b``:
    a(p) ~ b(p + flow(p)), estimated on the grey images."""
    grey = [cv2.cvtColor((x.permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8), cv2.COLOR_RGB2GRAY)
            for x in (a, b)]  # fmt: skip
    flow = cv2.calcOpticalFlowFarneback(grey[0], grey[1], None, *FARNEBACK, 0)
    return torch.from_numpy(flow).permute(2, 0, 1).to(a.device)


def warp_by(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """image (3,H,W), flow (2,H,W) px -> (3,H,W): image sampled at p + flow(p), bicubic (the
    border repeated). Bicubic, not bilinear: the moments of a short exposure sit at sub-pixel
    offsets, where bilinear sampling is a low-pass (half a pixel off, it averages two pixels),
    which the exposure would add to the motion blur it is meant to show."""
    H, W = image.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(H, dtype=flow.dtype, device=flow.device),
                            torch.arange(W, dtype=flow.dtype, device=flow.device), indexing="ij")  # fmt: skip
    grid = torch.stack([(xs + flow[0]) * (2.0 / (W - 1)) - 1.0, (ys + flow[1]) * (2.0 / (H - 1)) - 1.0], dim=-1)
    out = F.grid_sample(image[None].to(flow.dtype), grid[None], mode="bicubic", padding_mode="border", align_corners=True)
    return out[0].to(image.dtype)


def between(a: torch.Tensor, b: torch.Tensor, forward: torch.Tensor, backward: torch.Tensor, tau: float) -> torch.Tensor:
    """The moment ``tau`` in [0, 1] between crops a (tau = 0) and b (tau = 1), (3,S,S) each, given
    their flows ``forward`` (a -> b) and ``backward`` (b -> a), (2,S,S) px -> (3,S,S)."""
    to_a = -(1 - tau) * tau * forward + tau * tau * backward
    to_b = (1 - tau) ** 2 * forward - tau * (1 - tau) * backward
    return ((1 - tau) * warp_by(a, to_a) + tau * warp_by(b, to_b)).clamp(0.0, 1.0)


def moments_at(crops: torch.Tensor, times) -> torch.Tensor:
    """crops (N,3,S,S) sRGB 0..1 of consecutive frames (one box), times (M,) in frame units
    from the first crop (0..N-1) -> (M,3,S,S) the moments at those times: a crop itself at a
    whole time, the flow interpolation between its neighbours elsewhere."""
    times = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    if len(times) and (times.min() < 0 or times.max() > len(crops) - 1):
        raise ValueError(f"times must lie in [0, {len(crops) - 1}] (the crops' span)")
    flows: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # pair k (crops k, k+1) -> (forward, backward)
    out = []
    for t in times.tolist():
        k = min(int(np.floor(t)), len(crops) - 2) if len(crops) > 1 else 0
        tau = t - k
        if tau == 0 or tau == 1 or len(crops) == 1:
            out.append(crops[k + int(tau)])
            continue
        if k not in flows:
            flows[k] = (dense_flow(crops[k], crops[k + 1]), dense_flow(crops[k + 1], crops[k]))
        out.append(between(crops[k], crops[k + 1], *flows[k], tau))
    return torch.stack(out) if out else crops[:0]
