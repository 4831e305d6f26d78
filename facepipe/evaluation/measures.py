"""The harness's measures, each a small pure function of arrays.

Conventions: ``T`` frames aligned between source and edited clip (row t of every source array is
the source frame the edited clip's frame t was made from); NaN marks "unknown" (no face).
Ratios are edited / source, so 1.0 means "as the source"; None means "not measurable" (no
frames to measure on), never a made-up number.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
from kornia.color import rgb_to_grayscale
from kornia.geometry.transform import remap

from facepipe.analysis.expression import CLASSES
from facepipe.tracking.filters import jitter

#: A probability counts as having risen when it went up by more than this (codec noise moves
#: the classifier's output by ~0.01 on a pass-through re-encode).
ROSE_EPS = 0.02
#: Mouth-opening span (5-95 percentile, in inter-ocular distances) below which the source's mouth
#: counts as still: tracker noise then dominates and the speech correlation means nothing.
STILL_MOUTH = 0.02
#: Sharpness ratio below which an emotion gain is flagged as bought with blur.
BLUR_SUSPECT = 0.8
#: PSNR reported for identical pixels (JSON has no infinity).
PSNR_CAP = 100.0
#: Background PSNR below which the background counts as touched. Lossless codecs give PSNR_CAP
#: for an untouched background; H.264 CRF 16 about 44-50 dB (the encoder's rate control and
#: motion search react to the changed face even where the pixels fed to it are the same).
BACKGROUND_MIN_DB = 40.0
#: Stability ratios (jitter, flicker, warping error: edited / source) above this are flagged.
STABILITY_MAX = 1.5


def _f(x, digits: int = 4):
    """float rounded for JSON, or None for NaN/inf/None."""
    if x is None:
        return None
    x = float(x)
    return round(x, digits) if np.isfinite(x) else None


# --- emotion --------------------------------------------------------------------------------------


def top_class_distribution(probs: np.ndarray) -> dict[str, float]:
    """Share of frames (rows of (T,7) probs, NaN rows ignored) whose top class is each class."""
    p = np.asarray(probs, np.float64)
    p = p[np.isfinite(p).all(1)]
    if not len(p):
        return {}
    top = p.argmax(1)
    return {c: round(float((top == k).mean()), 4) for k, c in enumerate(CLASSES)}


def emotion_stats(source_probs: np.ndarray, edited_probs: np.ndarray, target: str | None) -> dict:
    """How the classifier sees the edit, on frames with a face in both clips.

    source_probs, edited_probs: (T,7) in ``CLASSES`` order. ``target``: a classifier class or None
    (an emotion it does not know). Returns the mean target probability before/after, the share of
    frames where it rose (by > ROSE_EPS) and where it is the top class before/after, the top-class
    distributions before/after and every class's mean change (so the classifier's confusion and
    side effects stay visible).
    """
    a, b = np.asarray(source_probs, np.float64), np.asarray(edited_probs, np.float64)
    both = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    out = {
        "frames": int(both.sum()),
        "target": target,
        "top_before": top_class_distribution(a[both]),
        "top_after": top_class_distribution(b[both]),
        "mean_change": {
            c: _f(b[both, k].mean() - a[both, k].mean()) if both.any() else None for k, c in enumerate(CLASSES)
        },
    }
    if target is None or not both.any():
        out.update(mean_before=None, mean_after=None, rose=None, top_share_before=None, top_share_after=None)
        return out
    k = CLASSES.index(target)
    a, b = a[both], b[both]
    out.update(
        mean_before=_f(a[:, k].mean()),
        mean_after=_f(b[:, k].mean()),
        rose=_f((b[:, k] > a[:, k] + ROSE_EPS).mean()),
        top_share_before=_f((a.argmax(1) == k).mean()),
        top_share_after=_f((b.argmax(1) == k).mean()),
    )
    return out


# --- AU fidelity ----------------------------------------------------------------------------------


def au_fidelity(
    source_au: np.ndarray,
    edited_au: np.ndarray,
    planned_au: np.ndarray,
    au_names: list[str],
    valid: np.ndarray | None = None,
    min_change: float = 0.05,
) -> dict:
    """Measured change / planned change for every AU the plan changes.

    source_au, edited_au: (T,K) AUs fitted on the source and (independently) on the edited clip;
    planned_au: (T,K) the plan's per-frame targets (NaN where it sets none); valid: (T,) frames
    fitted in both. An AU is "planned" when its planned change (target - source) reaches
    ``min_change`` somewhere. Its ratio is the least-squares gain of the measured change on the
    planned one, sum(m p) / sum(p p) over valid frames: 1.0 = the face does what the plan says,
    0 = nothing happened, < 0 = the opposite. ``overall`` weights the AUs by sum(p p). AUs the plan
    leaves alone report their mean |measured change| as ``unplanned_drift``.
    """
    s, e, p = (np.asarray(x, np.float64) for x in (source_au, edited_au, planned_au))
    ok = np.ones(len(s), bool) if valid is None else np.asarray(valid, bool)
    ok &= np.isfinite(s).all(1) & np.isfinite(e).all(1)
    planned = np.where(np.isfinite(p), p - s, 0.0)
    measured = e - s
    per_au, num, den, drift = {}, 0.0, 0.0, {}
    for k, name in enumerate(au_names):
        pk, mk = planned[ok, k], measured[ok, k]
        if not len(pk):
            continue
        if np.abs(pk).max() >= min_change:
            d = float((pk * pk).sum())
            per_au[name] = {
                "ratio": _f((mk * pk).sum() / d),
                "planned_mean": _f(pk.mean()),
                "measured_mean": _f(mk.mean()),
            }
            num += float((mk * pk).sum())
            den += d
        else:
            drift[name] = _f(np.abs(mk).mean())
    return {
        "frames": int(ok.sum()),
        "per_au": per_au,
        "overall": _f(num / den) if den > 0 else None,
        "unplanned_drift": _f(np.mean([v for v in drift.values() if v is not None])) if drift else None,
    }


# --- identity -------------------------------------------------------------------------------------


def identity_similarity(source_desc: np.ndarray, edited_desc: np.ndarray) -> dict:
    """Cosine similarity and Euclidean distance of paired face descriptors (N,D) (NaN rows skipped).

    For dlib's ResNet, distance < 0.6 is its own "same person" threshold; cosine of a face with
    itself after a re-encode is ~0.999.
    """
    a, b = np.asarray(source_desc, np.float64), np.asarray(edited_desc, np.float64)
    ok = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    if not ok.any():
        return {"frames": 0, "cosine": None, "cosine_min": None, "distance": None}
    a, b = a[ok], b[ok]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    return {
        "frames": int(ok.sum()),
        "cosine": _f(cos.mean()),
        "cosine_min": _f(cos.min()),
        "distance": _f(np.linalg.norm(a - b, axis=1).mean()),
    }


# --- speech ---------------------------------------------------------------------------------------


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over entries finite in both; NaN when fewer than 3 or either is constant."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else float("nan")


def speech_correlation(source_opening: np.ndarray, edited_opening: np.ndarray, max_lag: int = 8) -> dict:
    """Pearson r of mouth opening over time (T,) source vs edited, plus the lag (edited frames
    behind the source; positive = edited late) at which r is highest, to tell a time shift from a
    changed mouth. ``source_range`` is the source's 5-95 percentile span; ``meaningful`` is False
    when it is below STILL_MOUTH (a still mouth: r then measures tracker noise)."""
    a, b = np.asarray(source_opening, np.float64), np.asarray(edited_opening, np.float64)
    r = pearson(a, b)
    best, best_r = 0, r
    for lag in range(-max_lag, max_lag + 1):
        if lag == 0:
            continue
        rr = pearson(a[: len(a) - lag], b[lag:]) if lag > 0 else pearson(a[-lag:], b[: len(b) + lag])
        if np.isfinite(rr) and (not np.isfinite(best_r) or rr > best_r):
            best, best_r = lag, rr
    fin = a[np.isfinite(a)]
    span = float(np.percentile(fin, 95) - np.percentile(fin, 5)) if len(fin) else float("nan")
    return {
        "corr": _f(r),
        "best_lag": int(best),
        "corr_at_best_lag": _f(best_r),
        "source_range": _f(span),
        "meaningful": bool(np.isfinite(span) and span >= STILL_MOUTH),
    }


# --- pixels ---------------------------------------------------------------------------------------


def luma(rgb: np.ndarray) -> np.ndarray:
    """(H,W) float32 ITU-R 601 luma of (3,H,W) float 0..1 planes."""
    a = np.asarray(rgb, np.float32)
    return 0.299 * a[0] + 0.587 * a[1] + 0.114 * a[2]


def laplacian_variance(grey: np.ndarray, mask: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of an (H,W) image over the pixels of ``mask`` (NaN if empty)."""
    if not mask.any():
        return float("nan")
    lap = cv2.Laplacian(np.asarray(grey, np.float32), cv2.CV_32F, ksize=1)
    return float(lap[mask].astype(np.float64).var())


def mean_abs_change(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray) -> float:
    """Mean |cur - prev| over ``mask`` (NaN if empty): frame-to-frame change, the flicker measure."""
    if not mask.any():
        return float("nan")
    return float(np.abs(np.asarray(cur, np.float64)[mask] - np.asarray(prev, np.float64)[mask]).mean())


def masked_sse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
    """Sum of squared differences of (3,H,W) images over ``mask`` (H,W), and the sample count."""
    if not mask.any():
        return 0.0, 0
    d = np.asarray(a, np.float64)[:, mask] - np.asarray(b, np.float64)[:, mask]
    return float((d * d).sum()), int(d.size)


def psnr_from_sse(sse: float, count: int) -> float | None:
    """PSNR in dB (peak 1.0), capped at PSNR_CAP for identical pixels; None when nothing was compared."""
    if count == 0:
        return None
    mse = sse / count
    return PSNR_CAP if mse <= 10 ** (-PSNR_CAP / 10) else float(min(PSNR_CAP, 10 * np.log10(1.0 / mse)))


def ratio(edited: np.ndarray, source: np.ndarray) -> float | None:
    """mean(edited) / mean(source) over entries finite in both; None when unmeasurable."""
    e, s = np.asarray(edited, np.float64), np.asarray(source, np.float64)
    ok = np.isfinite(e) & np.isfinite(s)
    if not ok.any() or s[ok].mean() <= 0:
        return None
    return _f(e[ok].mean() / s[ok].mean())


# --- stability ------------------------------------------------------------------------------------


def jitter_ratio(
    source_landmarks: np.ndarray,
    edited_landmarks: np.ndarray,
    scheme: str = "mediapipe-478",
    source_cuts=(),
    edited_cuts=(),
) -> dict:
    """Landmark jitter (high-frequency landmark motion, % of inter-ocular distance; see
    :func:`facepipe.tracking.filters.jitter`) of the edited clip relative to the source, both
    tracked independently and unsmoothed."""
    js = jitter(np.asarray(source_landmarks), scheme, source_cuts)
    je = jitter(np.asarray(edited_landmarks), scheme, edited_cuts)
    r = je / js if np.isfinite(js) and np.isfinite(je) and js > 0 else float("nan")
    return {"jitter_source": _f(js), "jitter_edited": _f(je), "jitter_ratio": _f(r)}


# --- temporal warping error ----------------------------------------------------------------------
#
# Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018: the previous frame warped
# to the current one by the optical flow of the *source* should match the current frame wherever
# the flow is trustworthy. The same source flow is applied to the edited clip, so an edit that
# moves with the face as the source does scores like the source, and one that adds its own
# frame-to-frame change (flicker, swimming texture, popping) scores higher.

#: Forward-backward consistency check (Sundaram et al. 2010; Ruder et al. 2016, as Lai et al. use
#: it): pixel x is occluded when |b + f'|^2 > OCCLUSION_ALPHA (|b|^2 + |f'|^2) + OCCLUSION_BETA px^2,
#: with b the current -> previous flow at x and f' the previous -> current flow at x + b.
OCCLUSION_ALPHA = 0.01
OCCLUSION_BETA = 0.5
#: The flow is computed on a crop around the measured region: its bounding box grown on every
#: side by this x its larger side (room for the motion between two frames, and context).
WARP_CONTEXT = 0.25


@functools.lru_cache(maxsize=1)
def _dis():
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def optical_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H,W,2) float32 dense flow (x, y) px from image ``a`` to ``b`` ((H,W) uint8 luma): the
    pixel x of ``a`` shows at x + flow[x] in ``b``. OpenCV's DIS flow, medium preset (deterministic)."""
    return _dis().calc(np.ascontiguousarray(a), np.ascontiguousarray(b), None)


def flow_warp(images, flow: np.ndarray):
    """images (B,C,H,W) float torch tensor sampled at x + flow[x] (flow: (H,W,2) px), bilinear,
    border values outside: with the current -> previous flow, the previous frame seen from the
    current one. Returns (B,C,H,W)."""
    b, _, h, w = images.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    fl = torch.as_tensor(flow, dtype=torch.float32)
    map_x, map_y = (xs + fl[..., 0]).expand(b, h, w), (ys + fl[..., 1]).expand(b, h, w)
    return remap(images, map_x, map_y, mode="bilinear", padding_mode="border", align_corners=True)


def flow_consistent(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """(H,W) bool: pixels of the current frame whose current -> previous flow ``backward``
    (H,W,2) is confirmed by the previous -> current flow ``forward`` (H,W,2) (forward-backward
    check, see OCCLUSION_ALPHA) and lands inside the previous frame: not occluded."""
    fwd = flow_warp(torch.as_tensor(forward, dtype=torch.float32).permute(2, 0, 1)[None], backward)[0]
    return _consistent(backward, fwd.permute(1, 2, 0).numpy())


def _consistent(backward: np.ndarray, forward_at: np.ndarray) -> np.ndarray:
    """flow_consistent with the forward flow already sampled where each pixel came from (H,W,2)."""
    h, w = backward.shape[:2]
    b = np.asarray(backward, np.float32)
    err = ((b + forward_at) ** 2).sum(-1)
    ok = err <= OCCLUSION_ALPHA * ((b**2).sum(-1) + (forward_at**2).sum(-1)) + OCCLUSION_BETA
    x = np.arange(w)[None, :] + b[..., 0]
    y = np.arange(h)[:, None] + b[..., 1]
    return ok & (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def _context_box(region: np.ndarray, grow: float) -> tuple[slice, slice]:
    ys, xs = np.nonzero(region)
    pad = int(np.ceil(grow * max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)))
    h, w = region.shape
    return (slice(max(0, ys.min() - pad), min(h, ys.max() + pad + 1)),
            slice(max(0, xs.min() - pad), min(w, xs.max() + pad + 1)))  # fmt: skip


def warp_error_pair(prev, cur, region: np.ndarray) -> np.ndarray:
    """(B,) warping error of one pair of consecutive frames of B aligned clips.

    prev, cur: (B,3,H,W) float32 0..1 (numpy or torch) frames t-1 and t; clip 0 is the reference
    (the source) whose optical flow (on its luma) is used for every clip. region: (H,W) bool, the
    pixels of frame t to measure (the face). Each clip's previous frame is warped to the current
    one by the reference's current -> previous flow; the error is the mean over the region's
    non-occluded pixels (:func:`flow_consistent`) and the 3 channels of the squared difference
    (current - warped previous)^2, in (0..1)^2 units. NaN where no pixel is left.
    """
    prev, cur = torch.as_tensor(prev, dtype=torch.float32), torch.as_tensor(cur, dtype=torch.float32)
    region = np.asarray(region, bool)
    if not region.any():
        return np.full(len(prev), np.nan)
    rows, cols = _context_box(region, WARP_CONTEXT)
    prev, cur = prev[:, :, rows, cols], cur[:, :, rows, cols]
    b, _, h, w = prev.shape
    grey = rgb_to_grayscale(torch.stack([prev[0], cur[0]]))[:, 0]  # (2,h,w)
    grey = (grey.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    backward, forward = optical_flow(grey[1], grey[0]), optical_flow(grey[0], grey[1])
    # One resampling for the B previous frames and the forward flow (checked where each pixel came from).
    both = torch.cat([prev.reshape(1, 3 * b, h, w), torch.from_numpy(forward).permute(2, 0, 1)[None]], 1)
    warped = flow_warp(both, backward)[0]
    keep = region[rows, cols] & _consistent(backward, warped[3 * b :].permute(1, 2, 0).numpy())
    if not keep.any():
        return np.full(b, np.nan)
    keep = torch.from_numpy(keep)
    d = cur[:, :, keep] - warped[: 3 * b].reshape(b, 3, h, w)[:, :, keep]  # (B,3,K)
    return (d.double() ** 2).mean((1, 2)).numpy()


def warp_error_summary(source_pairs: np.ndarray, edited_pairs: np.ndarray) -> dict:
    """The clip's warping error from its per-pair errors (P,) (NaN: not measured): the mean over
    pairs, source and edited, and their ratio (edited / source, over pairs measured in both)."""
    s, e = np.asarray(source_pairs, np.float64), np.asarray(edited_pairs, np.float64)
    mean = lambda x: _f(np.nanmean(x), 8) if np.isfinite(x).any() else None  # noqa: E731
    return {"warp_error_source": mean(s), "warp_error_edited": mean(e), "warp_error_ratio": ratio(e, s)}


# --- verdicts -------------------------------------------------------------------------------------


def warnings_for(report: dict) -> list[str]:
    """Plain-language flags of a harness report: emotion bought with blur, lost identity, lost speech..."""
    out = []
    sharp = (report.get("sharpness") or {}).get("ratio")
    emo = report.get("emotion") or {}
    if sharp is not None and sharp < BLUR_SUSPECT:
        rose = {c: v for c, v in (emo.get("mean_change") or {}).items() if v is not None and v > ROSE_EPS}
        if rose:
            gains = ", ".join(f"{c} +{v:.2f}" for c, v in sorted(rose.items(), key=lambda kv: -kv[1]))
            out.append(
                f"blur: the face kept {sharp:.0%} of its sharpness while P({gains}) rose; the classifier "
                "rewards blur, so treat these emotion gains as suspect"
            )
        else:
            out.append(f"blur: the face kept only {sharp:.0%} of its sharpness")
    sp = report.get("speech") or {}
    if sp.get("corr") is not None and sp.get("meaningful", True):
        lag = (
            f" (best match {sp['best_lag']:+d} frames away: r={sp['corr_at_best_lag']:.2f})"
            if sp.get("best_lag")
            else ""
        )
        shifted = bool(sp.get("best_lag")) and (sp.get("corr_at_best_lag") or 0) > max(0.9, sp["corr"] + 0.05)
        if sp["corr"] < 0.8:
            out.append(f"speech: mouth opening follows the source with r={sp['corr']:.2f}{lag}")
        elif shifted:
            out.append(
                f"speech: the mouth runs {abs(sp['best_lag'])} frames {'early' if sp['best_lag'] < 0 else 'late'} "
                f"(r={sp['corr']:.2f} in place, {sp['corr_at_best_lag']:.2f} shifted)"
            )
    ident = report.get("identity") or {}
    if ident.get("distance") is not None and ident["distance"] > 0.45:
        out.append(f"identity: dlib descriptor distance {ident['distance']:.2f} (0.6 = a different person)")
    bg = report.get("background") or {}
    if bg.get("psnr_db") is not None and bg["psnr_db"] < BACKGROUND_MIN_DB:
        out.append(
            f"background: PSNR outside the face {bg['psnr_db']:.1f} dB against a plain re-encode "
            f"(an untouched background gives >= {BACKGROUND_MIN_DB:.0f} dB even through a lossy codec)"
        )
    st = report.get("stability") or {}
    for key, name in (("jitter_ratio", "landmark jitter"), ("flicker_ratio", "flicker"),
                      ("warp_error_ratio", "warping error")):  # fmt: skip
        if st.get(key) is not None and st[key] > STABILITY_MAX:
            out.append(f"stability: {name} is {st[key]:.1f}x the source's")
    return out
