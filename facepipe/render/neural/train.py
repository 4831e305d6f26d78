"""Self-supervised training of the person-specific renderer on one shot's samples.

Each step draws targets i among the training samples and for each a reference j among the
training frames farthest from i in AU space (:func:`~facepipe.render.neural.samples.far_references`);
input = j warped into i's geometry (its mouth blanked with probability ``mouth_mask``: the net
must draw the mouth from the mouth map and the AU code, not copy it) + i's conditioning maps;
target = frame i. Losses, all inside the face matte: L1; least-squares adversarial from a
multi-scale conditional patch discriminator (full and half resolution) and a mouth-crop
discriminator; feature matching on the patch discriminators' features (VGG-free). With
``RendererConfig.amp`` the networks' forward passes run under autocast
(:func:`~facepipe.render.neural.precision.amp_dtype`) and the losses are computed in fp32.
Validation (:func:`validate`) renders held-out frames from their farthest training frame and
scores renderer and warp against the real frame.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from kornia.filters import laplacian
from kornia.metrics import ssim

from facepipe.face import topology as tp
from facepipe.nn.face_renderer import FaceRendererNet
from facepipe.nn.patch_discriminator import PatchDiscriminator
from facepipe.render.neural.conditioning import MAP_CHANNELS, MATTE, MOUTH, Crop, crop_pixels, grid_coordinates
from facepipe.render.neural.config import RendererConfig
from facepipe.render.neural.precision import amp_dtype, autocast
from facepipe.render.neural.samples import ShotSamples, far_references, warp_reference


def build_generator(config: RendererConfig, au_dim: int) -> FaceRendererNet:
    return FaceRendererNet(3 + MAP_CHANNELS, au_dim, config.width, config.levels, config.embed_dim)


def mouth_crops(images: torch.Tensor, vertices: torch.Tensor, size: int) -> torch.Tensor:
    """images (B,3,S,S), meshes (B,N,2) crop px -> (B,3,size,size) squares around the lips
    (1.5x the outer lip loop's extent)."""
    lips = vertices[:, list(tp.LIP_OUTER_LOOP)]
    lo, hi = lips.amin(1), lips.amax(1)
    centre, side = (lo + hi) / 2, 1.5 * (hi - lo).amax(1).clamp_min(4.0)
    grids = torch.stack([crop_pixels(Crop(float(c[0]), float(c[1]), float(s)), size, images.device)
                         for c, s in zip(centre, side)])
    return F.grid_sample(images, grid_coordinates(grids, images.shape[-2:]), align_corners=False)


def sample_batch(samples: ShotSamples, refs: list[np.ndarray], targets: np.ndarray, config: RendererConfig,
                 triangles: torch.Tensor, rng: np.random.Generator, device) -> dict:  # fmt: skip
    """-> {"inputs" (B,3+C,S,S), "au" (B,K), "target" (B,3,S,S), "maps" (B,C,S,S), "vertices" (B,N,2)}."""
    rows = rng.choice(targets, config.batch)
    warped = []
    for i in rows:
        w = warp_reference(samples, int(i), int(rng.choice(refs[i])), triangles)
        if rng.random() < config.mouth_mask:
            mouth = F.max_pool2d(samples.maps[i, MOUTH:MOUTH + 1].float()[None] / 255.0, 5, 1, 2)[0]
            w = w * (1 - mouth)
        warped.append(w)
    maps = samples.maps[rows].float() / 255.0
    return {"inputs": torch.cat([torch.stack(warped), maps], 1).to(device), "au": samples.au[rows].to(device),
            "target": (samples.crops[rows].float() / 255.0).to(device), "maps": maps.to(device),
            "vertices": samples.vertices[rows].to(device)}


def masked_l1(a: torch.Tensor, b: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return ((a - b).abs() * m).sum() / (3 * m.sum()).clamp_min(1.0)


class RendererGAN:
    """The generator, its three discriminators and their optimisers; with ``config.amp`` the
    autocast dtype (:func:`amp_dtype`, None without) and, for fp16, one gradient scaler per
    optimiser (fp16 gradients underflow unscaled; each network's loss keeps its own scale)."""

    def __init__(self, config: RendererConfig, au_dim: int, device):
        self.config = config
        self.device_type = torch.device(device).type
        self.amp = amp_dtype(device) if config.amp else None
        scaled = self.amp == torch.float16
        self.scale_g, self.scale_d = (torch.amp.GradScaler(self.device_type, enabled=scaled) for _ in range(2))
        self.generator = build_generator(config, au_dim).to(device).train()
        self.patch = torch.nn.ModuleList([PatchDiscriminator(config.disc_width, 3, 3 + MAP_CHANNELS) for _ in range(2)]).to(device)
        self.mouth = PatchDiscriminator(config.disc_width, 2, 3).to(device)
        betas = (0.5, 0.999)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam([*self.patch.parameters(), *self.mouth.parameters()], lr=config.lr, betas=betas)

    def _views(self, face: torch.Tensor, batch: dict) -> list[list[torch.Tensor]]:
        """Per discriminator, its features of ``face`` (fp32, whatever the autocast dtype): full
        and half resolution with the maps, the mouth crop."""
        maps = batch["maps"]
        with autocast(self.device_type, self.amp):
            full = self.patch[0].features(maps, face)
            half = self.patch[1].features(F.avg_pool2d(maps, 2), F.avg_pool2d(face, 2))
            views = [full, half, self.mouth.features(mouth_crops(face, batch["vertices"], self.config.mouth_size))]
        return [[f.float() for f in view] for view in views]

    def step(self, batch: dict) -> dict:
        """One generator and one discriminator update; -> their losses."""
        c = self.config
        m = batch["maps"][:, MATTE:MATTE + 1]
        target = batch["target"]
        with autocast(self.device_type, self.amp):
            out = self.generator(batch["inputs"], batch["au"])
        out = out.float()  # the losses in fp32
        fake = out * m + target * (1 - m)  # the face in its real surroundings: seams count
        l1 = masked_l1(out, target, m)
        fake_views, real_views = self._views(fake, batch), self._views(target, batch)
        adv = sum(((v[-1] - 1) ** 2).mean() for v in fake_views)
        fm = sum(F.l1_loss(f, r.detach()) for fv, rv in zip(fake_views[:2], real_views[:2]) for f, r in zip(fv[:-1], rv[:-1]))
        self.opt_g.zero_grad(set_to_none=True)
        self.scale_g.scale(l1 + c.feature_matching * fm + c.adversarial * adv).backward()
        self.scale_g.step(self.opt_g)
        self.scale_g.update()

        fake_views, real_views = self._views(fake.detach(), batch), self._views(target, batch)
        d_loss = sum(((r[-1] - 1) ** 2).mean() + (f[-1] ** 2).mean() for f, r in zip(fake_views, real_views))
        self.opt_d.zero_grad(set_to_none=True)
        self.scale_d.scale(d_loss).backward()
        self.scale_d.step(self.opt_d)
        self.scale_d.update()
        return {"l1": l1.item(), "feature_matching": fm.item(), "adversarial": adv.item(), "discriminator": d_loss.item()}


def masked_scores(out: torch.Tensor, target: torch.Tensor, m: torch.Tensor) -> dict:
    """PSNR, SSIM and sharpness ratio (Laplacian variance of out / of target) inside the matte
    m (B,1,S,S) {0,1}, over a batch out, target (B,3,S,S)."""
    n = (3 * m.sum()).clamp_min(1.0)
    mse = (((out - target) ** 2) * m).sum() / n
    ssim_map = ssim(out, target, 7)
    lap_o, lap_t = laplacian(out.mean(1, keepdim=True), 3), laplacian(target.mean(1, keepdim=True), 3)
    inner = F.max_pool2d(1 - m, 5, 1, 2) < 0.5  # away from the matte's edge, where the Laplacian sees the cut
    sharp = lap_o[inner].var() / lap_t[inner].var().clamp_min(1e-12)
    return {"psnr": round(float(10 * torch.log10(1 / mse.clamp_min(1e-10))), 3),
            "ssim": round(float((ssim_map * m).sum() / n), 4), "sharpness": round(float(sharp), 3)}


@torch.no_grad()
def validate(generator, samples: ShotSamples, triangles: torch.Tensor, device, batch: int = 16) -> tuple[dict, torch.Tensor]:
    """Held-out frames rendered from the training frame farthest in AU space. -> ({"frames", "warp":
    scores, "renderer": scores}, sheet rows (V,3,3,S,S): warp, renderer over the real frame
    outside the matte, real)."""
    held = np.flatnonzero(~samples.train)
    train = np.flatnonzero(samples.train)
    if len(held) == 0 or len(train) == 0:
        return {"frames": 0}, torch.zeros(0)
    ref = far_references(samples.au, train, 1.0 / len(train))
    was = generator.training
    generator.eval()
    warps, outs = [], []
    for s in range(0, len(held), batch):
        rows = held[s:s + batch]
        w = torch.stack([warp_reference(samples, int(i), int(ref[i][0]), triangles) for i in rows]).to(device)
        maps = samples.maps[rows].float().to(device) / 255.0
        outs.append(generator(torch.cat([w, maps], 1), samples.au[rows].to(device)).cpu())
        warps.append(w.cpu())
    generator.train(was)
    warp, out = torch.cat(warps), torch.cat(outs)
    target = samples.crops[held].float() / 255.0
    m = (samples.maps[held, MATTE:MATTE + 1] > 127).float()
    report = {"frames": int(len(held)), "warp": masked_scores(warp, target, m), "renderer": masked_scores(out, target, m)}
    return report, torch.stack([warp, out * m + target * (1 - m), target], 1)


def train_renderer(samples: ShotSamples, config: RendererConfig, triangles: torch.Tensor, steps: int | None = None,
                   minutes: float | None = None, device="cpu", log=print, every: int = 50) -> tuple:
    """Train from scratch (seeded) for ``steps`` or ``minutes`` of wall time (both: the first
    reached). -> (generator in eval mode, report: validation before/after, losses, steps,
    seconds, device, amp (the autocast dtype's name, None in fp32); the final validation's sheet
    rows, as :func:`validate` gives them). Validation runs in fp32."""
    if steps is None and minutes is None:
        raise ValueError("give steps or minutes")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train = np.flatnonzero(samples.train)
    if len(train) < 2:
        raise ValueError("the renderer needs at least 2 training frames")
    refs = far_references(samples.au, train, config.far_share)
    gan = RendererGAN(config, samples.au.shape[1], device)
    before, _ = validate(gan.generator, samples, triangles, device)
    log(f"renderer: validation before training: {before}")
    t0, step, history = time.perf_counter(), 0, []
    while (steps is None or step < steps) and (minutes is None or time.perf_counter() - t0 < 60 * minutes):
        history.append(gan.step(sample_batch(samples, refs, train, config, triangles, rng, device)))
        step += 1
        if step % every == 0:
            mean = {k: round(float(np.mean([h[k] for h in history[-every:]])), 4) for k in history[-1]}
            log(f"renderer: step {step}, {time.perf_counter() - t0:.0f} s, {mean}")
    seconds = round(time.perf_counter() - t0, 1)
    after, sheet_rows = validate(gan.generator, samples, triangles, device)
    log(f"renderer: validation after {step} steps: {after}")
    amp = None if gan.amp is None else str(gan.amp).removeprefix("torch.")
    report = {"steps": step, "seconds": seconds, "device": str(device), "amp": amp, "train_frames": int(len(train)),
              "val_frames": int((~samples.train).sum()), "validation_before": before, "validation_after": after,
              "final_losses": {k: round(float(np.mean([h[k] for h in history[-every:]])), 4) for k in history[-1]} if history else {}}
    return gan.generator.eval(), report, sheet_rows
