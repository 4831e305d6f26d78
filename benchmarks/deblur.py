"""Face deblurring on synthetic exposures: the blurred input and the classical baseline vs the truth.

For each clip the face is tracked (cached), and the ``--windows`` stretches of ``--exposure``
consecutive tracked frames where the face moves most (non-overlapping) become synthetic
exposures (:mod:`facepipe.deblur.exposure`): every frame of the window cropped with the central
frame's box (``--size`` px), averaged in linear light; the central frame's crop is the truth (the
central moment). The classical baseline (:mod:`facepipe.deblur.classical`, Richardson-Lucy) deconvolves
the exposure with the kernel of the face's velocity over the window (least-squares slope of the tracked
landmarks' centroid; one point per frame, as the exposure is made of whole frames). PSNR and SSIM are taken on the crop's inner 80% (the
crop's borders hold content from outside the central box).

    python benchmarks/deblur.py --json benchmarks/results/deblur.json [--clips ...]

With ``--weights CKPT`` (``facepipe train deblur``) the GAN's central moment gets its columns, and
the temporal order of its N moments.

With ``--shutter DEG`` the exposure is as long as a real shutter instead (DEG/360 of a frame time
around the central frame: 180 = 1/50 s at 25 fps): ``--samples`` moments interpolated between the
window's frames by optical flow (:mod:`facepipe.deblur.interpolate`), averaged in linear light;
the baseline's kernel is the face's velocity over the same moments. ``--exposure 3`` is enough
for shutters up to 720 degrees and picks the windows of fastest motion frame to frame.

    python benchmarks/deblur.py --exposure 3 --shutter 180 --json benchmarks/results/deblur_shutter180.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from kornia.metrics import psnr, ssim

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, read_frames, resolve_clips, write_report  # noqa: E402

from facepipe.deblur.checkpoint import load_checkpoint  # noqa: E402
from facepipe.deblur.classical import convolve_padded, deblur_srgb, trajectory_kernel  # noqa: E402
from facepipe.deblur.exposure import synthetic_exposure, window_crops  # noqa: E402
from facepipe.deblur.train import moment_order  # noqa: E402
from facepipe.face.extent import square_around  # noqa: E402
from kornia.color import linear_rgb_to_rgb, rgb_to_linear_rgb  # noqa: E402

#: Clips with head turns and fast motion first (see ../shared/data/clips/README.md).
DEFAULT_CLIPS = ("lp_d9_cheeks_yaw.mp4", "lp_s18_720p_threequarter.mp4", "hdtf_radio2_talk.mp4", "lp_d0_grin.mp4",
                 "vr_face1_2213fps.mp4", "lp_d7_blink_brow.mp4")


def fastest_windows(centroid: np.ndarray, length: int, count: int) -> list[tuple[int, float]]:
    """centroid (T,2) px (NaN where untracked) -> up to ``count`` non-overlapping (start, path px)
    windows of ``length`` frames, all tracked, with the longest centroid paths first."""
    steps = np.linalg.norm(np.diff(centroid, axis=0), axis=1)  # (T-1,) NaN next to untracked frames
    paths = [(s, float(steps[s:s + length - 1].sum())) for s in range(len(centroid) - length + 1)
             if np.isfinite(steps[s:s + length - 1]).all()]
    chosen: list[tuple[int, float]] = []
    for s, p in sorted(paths, key=lambda sp: -sp[1]):
        if all(abs(s - c) >= length for c, _ in chosen):
            chosen.append((s, p))
        if len(chosen) == count:
            break
    return sorted(chosen)


def constant_velocity_path(points: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """points (N,2) tracked positions of N consecutive frames -> (M,2) the straight path at the
    face's least-squares velocity at ``offsets`` (M,) frames from the central one (default: the
    N frames'), 0 at the central moment (landmark jitter is not motion)."""
    t = np.arange(len(points)) - (len(points) - 1) / 2.0
    velocity = (t[:, None] * (points - points.mean(0))).sum(0) / (t ** 2).sum()
    offsets = t if offsets is None else np.asarray(offsets, np.float64)
    return offsets[:, None] * velocity[None, :]


def inner(x: torch.Tensor, keep: float = 0.8) -> torch.Tensor:
    """The central ``keep`` of the last two dimensions of ``x``."""
    h, w = x.shape[-2:]
    dy, dx = round(h * (1 - keep) / 2), round(w * (1 - keep) / 2)
    return x[..., dy:h - dy, dx:w - dx]


def scores(estimate: torch.Tensor, truth: torch.Tensor) -> dict:
    """PSNR (dB) and SSIM (11 px window) of (3,S,S) ``estimate`` vs ``truth`` on the inner crop."""
    e, t = inner(estimate)[None], inner(truth)[None]
    return {"psnr": round(float(psnr(e, t, 1.0)), 3), "ssim": round(float(ssim(e, t, 11).mean()), 4)}


def measure_clip(clip: Path, exposure: int, windows: int, size: int, iterations: int, gan, log,
                 shutter: float | None = None, samples: int = 16) -> dict:  # fmt: skip
    from facepipe.jobs.analyze import run_analysis

    analysis = run_analysis(clip, au=False, progress="off", log=lambda *a, **k: None)
    tracks, info = analysis.tracks, analysis.info
    if not tracks.has_face:
        return {"clip": clip.name, "skipped": "no face found"}
    n = info.frame_count
    centroid = np.full((n, 2), np.nan, np.float64)
    centroid[tracks.frame_index] = np.nanmean(tracks.landmarks[:, :, :2], axis=1)
    box = np.full((n, 4), np.nan, np.float32)
    box[tracks.frame_index] = tracks.box
    rows = []
    for start, path_px in fastest_windows(centroid, exposure, windows):
        idx = np.arange(start, start + exposure)
        mid = int(idx[exposure // 2])
        cx, cy, side = square_around(box[mid])
        frames = torch.from_numpy(read_frames(clip, idx)).permute(0, 3, 1, 2).float() / 255.0
        crops = window_crops(frames, cx, cy, side, size)
        blurred, sharp, times = synthetic_exposure(crops, shutter, samples)
        offsets = times.numpy() - exposure // 2  # frames from the central one
        truth = crops[exposure // 2]
        rel = torch.from_numpy(constant_velocity_path(centroid[idx], offsets) * (size / side)).float()  # crop px
        kernel = trajectory_kernel(rel, samples_per_step=1)
        t0 = time.perf_counter()
        restored = deblur_srgb(blurred[None], kernel, iterations)[0]
        ms = 1000 * (time.perf_counter() - t0)
        # the same truth blurred by the kernel alone: what the baseline does where its model holds
        rigid = linear_rgb_to_rgb(convolve_padded(rgb_to_linear_rgb(truth[None]), kernel).clamp(0, 1))
        row = {"frames": [int(idx[0]), int(idx[-1])], "path_crop_px": round(path_px * size / side, 2),
               "blur_crop_px": round(float((rel[-1] - rel[0]).norm()), 2),
               "blurred": scores(blurred, truth), "deconvolved": scores(restored, truth), "deconvolved_ms": round(ms, 1),
               "rigid_blurred": scores(rigid[0], truth), "rigid_deconvolved": scores(deblur_srgb(rigid, kernel, iterations)[0], truth)}
        if gan is not None:
            row.update(gan_scores(gan, blurred, sharp))
        rows.append(row)
        log(f"{clip.name} {row['frames']}: path {row['path_crop_px']} px, PSNR blurred {row['blurred']['psnr']} "
            f"-> deconvolved {row['deconvolved']['psnr']}" + (f", gan {row['gan']['psnr']}" if gan is not None else "") + " dB")
    return {"clip": clip.name, "fps": float(info.fps), "windows": rows}


@torch.no_grad()
def gan_scores(generator, blurred: torch.Tensor, crops: torch.Tensor) -> dict:
    """The generator's central moment vs the central frame, and its N moments' temporal order
    (:func:`facepipe.deblur.train.moment_order`)."""
    n = len(crops)
    t0 = time.perf_counter()
    central = generator(blurred[None], torch.full((1,), 0.5)).clamp(0, 1)[0]
    ms = 1000 * (time.perf_counter() - t0)
    outs = generator(blurred[None].expand(n, -1, -1, -1), torch.linspace(0, 1, n)).clamp(0, 1)
    order = moment_order(outs, crops)
    return {"gan": scores(central, crops[n // 2]), "gan_order": round(order, 3), "gan_ms": round(ms, 1)}


def mean_of(rows: list[dict], method: str, key: str) -> float | None:
    vals = [r[method][key] for r in rows]
    return round(float(np.mean(vals)), 4) if vals else None


def table_row(label: str, rows: list[dict], gan: bool) -> str:
    pb, pd = mean_of(rows, "blurred", "psnr"), mean_of(rows, "deconvolved", "psnr")
    cells = [label, str(len(rows)), f"{np.mean([r['path_crop_px'] for r in rows]):.1f}",
             f"{np.mean([r['blur_crop_px'] for r in rows]):.1f}", f"{pb:.2f}", f"{pd:.2f} ({pd - pb:+.2f})",
             f"{mean_of(rows, 'blurred', 'ssim'):.3f}", f"{mean_of(rows, 'deconvolved', 'ssim'):.3f}",
             f"{mean_of(rows, 'rigid_blurred', 'psnr'):.2f} -> {mean_of(rows, 'rigid_deconvolved', 'psnr'):.2f}"]
    if gan:
        pg = mean_of(rows, "gan", "psnr")
        cells += [f"{pg:.2f} ({pg - pb:+.2f})", f"{mean_of(rows, 'gan', 'ssim'):.3f}", f"{np.mean([r['gan_order'] for r in rows]):.2f}"]
    return "| " + " | ".join(cells) + " |"


def markdown(report: dict) -> str:
    m = report["machine"]
    gan = report.get("gan_weights") is not None
    head = ["clip", "windows", "path px (mean)", "blur px (mean)", "PSNR blurred", "PSNR deconvolved (gain)", "SSIM blurred",
            "SSIM deconvolved", "rigid PSNR blurred -> deconvolved"]
    if gan:
        head += ["PSNR GAN (gain)", "SSIM GAN", "GAN moment order"]
    made = (f"{report['exposure']} consecutive frames averaged in linear light" if not report.get("shutter") else
            f"a {report['shutter']:g}-degree shutter around the central of {report['exposure']} consecutive frames: "
            f"{report['samples']} moments interpolated between them by optical flow, averaged in linear light")  # fmt: skip
    lines = [f"# Face deblurring on synthetic exposures ({m['cpu']}, {m['cores']} cores)", "",
             f"Exposure = {made}, face crops {report['size']} px "
             f"(central frame's box), the {report['windows']} windows of fastest face motion per clip; truth = the central "
             f"frame. Deconvolved: Richardson-Lucy ({report['iterations']} iterations) with the tracked face velocity's path. "
             "PSNR / SSIM on the inner 80% of the crop. `path` = the centroid's path over the window in crop px; "
             "`blur` = the length of the baseline's kernel (the face's least-squares velocity over the exposure), crop px. "
             "`rigid`: the same truth blurred by the kernel alone (the blur model the baseline assumes), and deconvolved.", ""]
    if gan:
        lines += [f"GAN: `{report['gan_weights']}` (trained: {report.get('gan_training', {})}); its central moment (c = 0.5) "
                  "vs the truth; `moment order` = |Spearman| of the N restored moments' order against the nearest true "
                  "frames (1 = in order, either direction).", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    all_rows = []
    for c in report["clips"]:
        rows = c.get("windows", [])
        if rows:
            all_rows += rows
            lines.append(table_row(c["clip"], rows, gan))
        else:
            lines.append(f"| {c['clip']} | {c.get('skipped', 'none')} |" + " |" * (len(head) - 2))
    if all_rows:
        lines.append(table_row("**all**", all_rows, gan))
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--clips", nargs="*", default=None, help="default: " + ", ".join(DEFAULT_CLIPS))
    ap.add_argument("--exposure", type=int, default=7, help="frames per synthetic exposure (odd)")
    ap.add_argument("--windows", type=int, default=6, help="exposures per clip")
    ap.add_argument("--size", type=int, default=128, help="face crop size, px")
    ap.add_argument("--iterations", type=int, default=5, help="Richardson-Lucy iterations")
    ap.add_argument("--weights", type=Path, default=None, help="a deblur GAN checkpoint (facepipe train deblur) to add its columns")
    ap.add_argument("--shutter", type=float, default=None,
                    help="degrees: expose a real shutter's length from interpolated moments instead of whole frames")
    ap.add_argument("--samples", type=int, default=16, help="interpolated moments per --shutter exposure")
    args = ap.parse_args(argv)
    if args.exposure < 3 or args.exposure % 2 == 0:
        ap.error("--exposure must be odd and at least 3 (the truth is the central frame)")
    if args.shutter is not None and not 0 < args.shutter <= 360 * (args.exposure - 1):
        ap.error(f"--shutter must be above 0 and at most {360 * (args.exposure - 1)} degrees for --exposure {args.exposure}")
    started = time.time()
    clips, skipped = resolve_clips(args.clips or [], DEFAULT_CLIPS, ap.error)
    report = {"machine": machine(), "exposure": args.exposure, "windows": args.windows, "size": args.size,
              "iterations": args.iterations, "shutter": args.shutter, "samples": args.samples, "skipped": skipped, "clips": []}
    gan = None
    if args.weights is not None:
        gan, _, _, training = load_checkpoint(args.weights)
        report["gan_weights"] = str(args.weights)
        report["gan_training"] = {k: training.get(k) for k in ("steps", "seconds", "device", "training_clips")}
    for clip in clips:
        report["clips"].append(measure_clip(clip, args.exposure, args.windows, args.size, args.iterations, gan, print,
                                            args.shutter, args.samples))  # fmt: skip
    write_report(report, args.json, markdown, started)


if __name__ == "__main__":
    main()
