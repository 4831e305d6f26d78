"""Training the deblur GAN on windows of sharp consecutive face crops.

    windows: (M,N,3,S,S) uint8 sharp crops of N consecutive frames (one box per window)

Each step draws per sample a sub-exposure of n odd frames (3..N) at a random start, a moment k
in 0..n-1 (c = k/(n-1)), one random ``train_size`` crop for all its frames and a random flip. The
input is the sub-exposure (:func:`facepipe.deblur.exposure.synthetic_exposure`), the target
frame k. With ``config.shutter`` the sub-window is the fewest frames that hold the shutter, and
its exposure ``config.samples`` flow-interpolated moments over the shutter around its central
frame: the targets are those M moments (c = k/(M-1)).

One blurred frame cannot say which way the motion went: moments c and 1-c have the same input.
So the generator renders both and the L1 loss takes the better of the two assignments (Jin et
al., CVPR 2018, "Learning to extract a video sequence from a single motion-blurred image"); the
moment regressor learns the *distance* from the central moment, d = |2c - 1|, which one frame
does determine. Losses: generator L1 + ``adversarial`` (least squares, conditional patch
discriminator) + ``moment`` ((regressor(output) - d)^2); discriminator least squares; regressor
squared error of d on real pairs.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from kornia.metrics import psnr
from scipy.stats import spearmanr

from facepipe.deblur.checkpoint import build_networks
from facepipe.deblur.config import DeblurConfig
from facepipe.deblur.exposure import moments, shutter_window, synthetic_exposure
from facepipe.nn.patch_discriminator import PatchDiscriminator


def sample_batch(windows: torch.Tensor, config: DeblurConfig, rng: np.random.Generator, device) -> tuple:
    """-> blurred (B,3,s,s), first (B,3,s,s) target at c, mirror (B,3,s,s) target at 1-c, c (B,)."""
    M, N = windows.shape[:2]
    s = config.train_size
    blurred, first, mirror, cs = [], [], [], []
    for m in rng.integers(0, M, config.batch):
        n = int(rng.choice(np.arange(3, N + 1, 2))) if config.shutter is None else shutter_window(config.shutter)
        count = n if config.shutter is None else config.samples  # the exposure's moments
        start, k = int(rng.integers(0, N - n + 1)), int(rng.integers(0, count))
        y, x = (int(v) for v in rng.integers(0, windows.shape[-1] - s + 1, 2))
        crops = windows[m, start:start + n, :, y:y + s, x:x + s].to(device).float() / 255.0
        if rng.random() < 0.5:
            crops = crops.flip(-1)
        exposure, sharp, _ = synthetic_exposure(crops, config.shutter, config.samples)
        blurred.append(exposure)
        first.append(sharp[k])
        mirror.append(sharp[count - 1 - k])
        cs.append(k / (count - 1))
    return torch.stack(blurred), torch.stack(first), torch.stack(mirror), torch.tensor(cs, dtype=torch.float32, device=device)


def order_invariant_l1(out_c, out_mirror, first, mirror) -> torch.Tensor:
    """Mean over the batch of the better assignment of the two outputs (c, 1-c) to the two frames."""
    direct = (out_c - first).abs().mean((1, 2, 3)) + (out_mirror - mirror).abs().mean((1, 2, 3))
    swapped = (out_c - mirror).abs().mean((1, 2, 3)) + (out_mirror - first).abs().mean((1, 2, 3))
    return 0.5 * torch.minimum(direct, swapped).mean()


def train_step(nets: dict, opts: dict, batch: tuple, config: DeblurConfig) -> dict:
    """One step of generator, discriminator and regressor; -> their losses."""
    G, D, R = nets["generator"], nets["discriminator"], nets["regressor"]
    blurred, first, mirror, c = batch
    d = (2 * c - 1).abs()
    out = G(torch.cat([blurred, blurred]), torch.cat([c, 1 - c]))
    out_c, out_m = out.chunk(2)
    l1 = order_invariant_l1(out_c, out_m, first, mirror)
    adv = ((D(blurred, out_c) - 1) ** 2).mean()
    mom = ((R(blurred, out_c) - d) ** 2).mean()
    opts["generator"].zero_grad(set_to_none=True)
    (l1 + config.adversarial * adv + config.moment * mom).backward()
    opts["generator"].step()

    fake = out_c.detach()
    d_loss = ((D(blurred, first) - 1) ** 2).mean() + (D(blurred, fake) ** 2).mean()
    opts["discriminator"].zero_grad(set_to_none=True)
    d_loss.backward()
    opts["discriminator"].step()

    r_loss = ((R(blurred, first) - d) ** 2).mean()
    opts["regressor"].zero_grad(set_to_none=True)
    r_loss.backward()
    opts["regressor"].step()
    return {"l1": l1.item(), "adversarial": adv.item(), "moment": mom.item(), "discriminator": d_loss.item(),
            "regressor": r_loss.item()}


def moment_order(moments: torch.Tensor, frames: torch.Tensor) -> float:
    """How well restored moments (N,3,S,S), in moment order, follow the true frames (N,3,S,S):
    |Spearman| of k and the index of the frame nearest (L1) to moment k; either direction counts
    (one blurred frame cannot tell it), 0 when every moment is nearest the same frame."""
    nearest = (moments[:, None] - frames[None]).abs().mean((2, 3, 4)).argmin(1).cpu().numpy()
    if len(set(nearest.tolist())) < 2:
        return 0.0
    return abs(float(spearmanr(np.arange(len(nearest)), nearest).statistic))


@torch.no_grad()
def validate(generator, regressor, windows: torch.Tensor, device, shutter: float | None = None, samples: int = 16) -> dict:
    """On whole exposures of held-out windows (M,N,3,S,S), made as in training (``shutter``,
    ``samples``: :func:`~facepipe.deblur.exposure.synthetic_exposure`): PSNR of the input and of
    the central moment against the central frame; temporal order of the restored moments
    (|Spearman| of k and the index of the nearest true moment: one blurred frame cannot tell
    the direction); Spearman of the regressor's d with the true d, on real moments."""
    generator.eval()
    regressor.eval()
    N = windows.shape[1]
    rows = {"psnr_input": [], "psnr_central": [], "order": [], "regressor_real": []}
    for w in windows:
        frames = w.to(device).float() / 255.0
        blurred, sharp, _ = synthetic_exposure(frames, shutter, samples)
        blurred, sharp = blurred[None].to(device), sharp.to(device)
        c = moments(len(sharp)).to(device)
        outs = generator(blurred.expand(len(sharp), -1, -1, -1), c).clamp(0, 1)
        central = generator(blurred, torch.full((1,), 0.5, device=device)).clamp(0, 1)
        truth = frames[N // 2][None]
        rows["psnr_input"].append(float(psnr(blurred, truth, 1.0)))
        rows["psnr_central"].append(float(psnr(central, truth, 1.0)))
        rows["order"].append(moment_order(outs, sharp))
        pred = regressor(blurred.expand(len(sharp), -1, -1, -1), sharp).cpu().numpy()
        rows["regressor_real"].append(float(spearmanr((2 * c - 1).abs().cpu().numpy(), pred).statistic))
    generator.train()
    regressor.train()
    return {k: round(float(np.nanmean(v)), 4) for k, v in rows.items()}


def exposure_recipe(config: DeblurConfig) -> str:
    """How the training exposures were made, in words (the checkpoint's report says it)."""
    if config.shutter is None:
        return f"3..{config.exposure} consecutive whole frames averaged in linear light"
    return (f"a {config.shutter:g}-degree shutter: {config.samples} moments interpolated by optical flow between "
            f"{shutter_window(config.shutter)} consecutive frames, averaged in linear light")


def train_deblur(train_windows: torch.Tensor, val_windows: torch.Tensor, config: DeblurConfig, steps: int | None = None,
                 minutes: float | None = None, device: str | torch.device = "cpu", log=print, every: int = 50) -> tuple:
    """Train from scratch (seeded) for ``steps`` steps or ``minutes`` of wall time, whichever is
    given (both: the first reached). -> (generator, regressor, report) with the report's losses,
    validation before and after, steps, seconds and device."""
    if steps is None and minutes is None:
        raise ValueError("give steps or minutes")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    generator, regressor = build_networks(config)
    nets = {"generator": generator, "discriminator": PatchDiscriminator(config.width), "regressor": regressor}
    for net in nets.values():
        net.to(device).train()
    opts = {name: torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.5, 0.999)) for name, net in nets.items()}
    before = validate(generator, regressor, val_windows, device, config.shutter, config.samples)
    log(f"deblur: validation before training: {before}")
    t0, step, history = time.perf_counter(), 0, []
    while (steps is None or step < steps) and (minutes is None or time.perf_counter() - t0 < 60 * minutes):
        losses = train_step(nets, opts, sample_batch(train_windows, config, rng, device), config)
        step += 1
        history.append(losses)
        if step % every == 0:
            mean = {k: round(float(np.mean([h[k] for h in history[-every:]])), 4) for k in losses}
            log(f"deblur: step {step}, {time.perf_counter() - t0:.0f} s, {mean}")
    after = validate(generator, regressor, val_windows, device, config.shutter, config.samples)
    log(f"deblur: validation after {step} steps: {after}")
    report = {"steps": step, "seconds": round(time.perf_counter() - t0, 1), "device": str(device),
              "train_windows": int(len(train_windows)), "val_windows": int(len(val_windows)),
              "exposures": exposure_recipe(config),
              "validation_before": before, "validation_after": after,
              "final_losses": {k: round(float(np.mean([h[k] for h in history[-every:]])), 4) for k in history[-1]} if history else {}}
    return generator.eval(), regressor.eval(), report
