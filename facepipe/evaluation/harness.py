"""Score an edited clip against its source: ``evaluate(source, edited, emotion)`` -> report dict.

The edited clip is re-analysed independently (its own tracking, emotion classification and,
with a plan, its own 3D fit): nothing the edit computed is trusted. Frames are paired by source
index: by default the edited clip holds every source frame; ``frames="40-120"`` says it holds
those (an edit of a sub-range).

Measures (each one function in :mod:`facepipe.evaluation.measures`):

- ``emotion``: the classifier's view, before/after, with top-class distributions;
- ``au_fidelity``: measured / planned AU change (needs a plan and the fit3d stage; the edited
  clip is refitted with the source fit's identity, so a whole-shot edit cannot hide in it);
- ``identity``: dlib ResNet descriptor cosine / distance (optional extra);
- ``speech``: Pearson r of mouth opening over time;
- ``sharpness``: Laplacian variance inside the face, edited / source (``codec_ratio``: what a plain
  re-encode alone keeps, for scale);
- ``stability``: landmark jitter ratio and flicker ratio inside the face;
- ``background``: PSNR outside the face (grown by ``margin`` x inter-ocular distance) against a
  plain re-encode of the source with the edited clip's codec. With a lossless codec an untouched
  background is identical (reported as 100 dB); with a lossy one the encoder's rate control and
  motion search see the changed face, so even an untouched background differs slightly
  (about 44-50 dB at H.264 CRF 16). ``codec_floor_psnr_db`` (re-encode vs decoded source, same
  pixels) shows what the codec alone costs, for scale.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from facepipe.errors import RequestError
from facepipe.evaluation import measures as ms

#: Frames whose descriptors the identity measure compares (evenly spread).
IDENTITY_SAMPLES = 12
#: Background = outside the union of both clips' face hulls grown by this x inter-ocular distance.
BACKGROUND_MARGIN = 0.25
#: Sharpness is measured inside the source's face hull shrunk by this x inter-ocular distance
#: (the face's own outline against the background is not face detail).
SHARPNESS_INSET = 0.08

#: Edited clip's codec (PyAV name) -> facepipe codec preset for the reference re-encode.
_CODEC_PRESET = {"h264": "h264", "hevc": "h265", "ffv1": "ffv1", "prores": "prores", "dnxhd": "dnxhr"}


def reencode_codec(info) -> str:
    """The facepipe codec preset that re-encodes like the edited clip ``info`` (MediaInfo)."""
    name = _CODEC_PRESET.get(info.codec)
    if name is None:
        raise RequestError(f"cannot tell which codec settings made {Path(info.path).name} ({info.codec}); pass --codec")
    if name == "h264" and info.pix_fmt.startswith(("rgb", "bgr", "gbr")):
        return "h264-lossless"
    if name == "prores" and "444" in info.pix_fmt:
        return "prores4444"
    return name


def make_reencode(
    source, out: Path, codec: str, frames: str | None, workdir=None, progress: str = "off", log=None
) -> Path:
    """The plain re-encode of ``source`` the background is compared with: facepipe's own
    pass-through edit (emotion neutral, intensity 0) with ``codec``."""
    from facepipe import api

    kwargs = dict(
        emotion="neutral",
        intensity=0.0,
        out=out,
        force=True,
        frames=frames,
        codec=codec,
        workdir=workdir,
        progress=progress,
    )
    if log is not None:
        kwargs["log"] = log
    return api.edit(source, **kwargs).output


def load_plan(path, source_frames: int) -> tuple[list[str], np.ndarray]:
    """A plan's per-frame AU targets as (au_names, (source_frames, K) float64, NaN where unset).

    Accepts an ``EditPlan`` artifact folder (``meta.json`` + ``arrays.safetensors``), or JSON:
    ``{"au_names": [...], "target": [[...], ...], "frames": [...]?}``,
    ``{"au": {"AU12": [...], ...}, "frames": [...]?}`` (``facepipe.face.export`` style) or
    ``{"frames": [{"index": 0, "au": {"AU12": 0.8}}, ...]}`` (``facepipe analyze --json`` style).
    Without ``frames`` the rows are source frames 0, 1, ...
    """
    path = Path(path)
    if path.is_dir():
        from facepipe.plan.planner import EditPlan

        plan = EditPlan.load(path)
        names, target, frames = list(plan.au_names), np.asarray(plan.target, np.float64), None
    else:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RequestError(f"cannot read the plan {path}: {exc}") from exc
        frames = None
        if "target" in doc and "au_names" in doc:
            names, target = list(doc["au_names"]), np.asarray(doc["target"], np.float64)
            frames = doc.get("frames")
        elif isinstance(doc.get("au"), dict):
            names = list(doc["au"])
            target = np.stack(
                [np.asarray([np.nan if v is None else v for v in doc["au"][n]], np.float64) for n in names], 1
            )
            frames = doc.get("frames")
        elif isinstance(doc.get("frames"), list) and doc["frames"] and isinstance(doc["frames"][0], dict):
            names = sorted({n for r in doc["frames"] for n in (r.get("au") or {})})
            target = np.array(
                [[np.nan if (r.get("au") or {}).get(n) is None else r["au"][n] for n in names] for r in doc["frames"]],
                np.float64,
            )
            frames = [int(r["index"]) for r in doc["frames"]]
        else:
            raise RequestError(f"{path}: not a plan (expected au_names + target, au curves, or frames[].au)")
    if target.ndim != 2 or target.shape[1] != len(names):
        raise RequestError(f"{path}: plan targets have shape {target.shape}, but {len(names)} AU names")
    out = np.full((source_frames, len(names)), np.nan)
    rows = np.arange(len(target)) if frames is None else np.asarray(frames, np.int64)
    keep = (rows >= 0) & (rows < source_frames)
    out[rows[keep]] = target[keep]
    return names, out


def _pair_indices(src_info, edited_info, frames: str | None) -> np.ndarray:
    from facepipe.io.frameranges import parse_frame_range

    if frames:
        idx = parse_frame_range(frames, src_info.frame_count)
    else:
        idx = np.arange(src_info.frame_count)
    if len(idx) != edited_info.frame_count:
        raise RequestError(
            f"the edited clip has {edited_info.frame_count} frames but the source selection has {len(idx)}; "
            "pass --frames with the source range the edit was made from"
        )
    return idx


def evaluate(
    source,
    edited,
    emotion: str,
    plan=None,
    frames: str | None = None,
    codec: str | None = None,
    reencode=None,
    identity: bool = True,
    workdir=None,
    device: str = "auto",
    progress: str = "off",
    log=print,
) -> dict:
    """Score ``edited`` against ``source`` for an edit towards ``emotion`` (see module doc).

    plan: a plan file/folder (see :func:`load_plan`) for AU fidelity, or None (measure skipped).
    reencode: an existing plain re-encode of the source to compare the background with; by
    default one is made with ``codec`` (default: the edited clip's codec) in a temporary folder.
    identity: False skips the dlib measure. Returns the report (JSON-serialisable).
    """
    from facepipe.analysis.expression import classifier_class
    from facepipe.analysis.job import run_analysis
    from facepipe.io.media import probe

    t0 = time.perf_counter()
    try:
        target = classifier_class(emotion)
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    src_info, ed_info = probe(source), probe(edited)
    if (src_info.width, src_info.height) != (ed_info.width, ed_info.height):
        raise RequestError(
            f"the edited clip is {ed_info.width}x{ed_info.height}, the source {src_info.width}x{src_info.height}"
        )
    idx = _pair_indices(src_info, ed_info, frames)
    quiet = lambda m: None  # noqa: E731
    want_fit = plan is not None
    src = run_analysis(source, au=want_fit, workdir=workdir, device=device, progress=progress, log=quiet)
    out = run_analysis(edited, au=want_fit, workdir=workdir, device=device, progress=progress, log=quiet)
    st, et = src.tracks, out.tracks
    scheme = st.scheme or "mediapipe-478"
    report = {
        "source": str(source),
        "edited": str(edited),
        "emotion": emotion,
        "frames": int(len(idx)),
        "frame_range": frames or "all",
    }
    present_s = np.isfinite(st.landmarks[idx].reshape(len(idx), -1)).all(1)
    present_e = np.isfinite(et.landmarks.reshape(len(et), -1)).all(1)
    report["face_frames"] = {
        "source": int(present_s.sum()),
        "edited": int(present_e.sum()),
        "both": int((present_s & present_e).sum()),
    }

    # emotion
    report["emotion"] = ms.emotion_stats(src.emotions.probs[idx], out.emotions.probs, target)
    if target is None:
        report["emotion"]["note"] = f"the classifier has no class for {emotion!r}; only distributions are reported"

    # AU fidelity
    report["au_fidelity"] = _au_fidelity(src, out, idx, plan)

    # speech
    from facepipe.analysis.regions import mouth_opening

    report["speech"] = ms.speech_correlation(mouth_opening(st.landmarks[idx]), mouth_opening(et.landmarks))

    # pixels: sharpness, flicker, background, identity samples
    ref = reencode
    tmp = None
    try:
        if ref is None:
            codec = codec or reencode_codec(ed_info)
            tmp = tempfile.TemporaryDirectory(prefix="facepipe-eval-")
            suffix = Path(edited).suffix if Path(edited).suffix.lower() in (".mp4", ".mov", ".mkv") else ".mkv"
            ref = make_reencode(source, Path(tmp.name) / f"reencode{suffix}", codec, frames, workdir, "off", quiet)
        pix = _pixel_pass(src_info, ed_info, probe(ref), idx, st.landmarks, et.landmarks, scheme, identity, log)
    finally:
        if tmp is not None:
            tmp.cleanup()
    report["sharpness"] = pix["sharpness"]
    report["background"] = {**pix["background"], "reencode_codec": codec or "given", "margin_iod": BACKGROUND_MARGIN}
    report["identity"] = pix["identity"]

    # stability
    cuts_s = [int(c) for c in np.searchsorted(idx, st.shot_cuts) if 0 < c < len(idx)]
    cuts_e = [int(c) for c in et.shot_cuts if 0 < c < len(et)]
    report["stability"] = {
        **ms.jitter_ratio(st.landmarks_raw[idx], et.landmarks_raw, scheme, cuts_s, cuts_e),
        **pix["flicker"],
    }
    report["warnings"] = ms.warnings_for(report)
    report["seconds"] = round(time.perf_counter() - t0, 2)
    return report


def _au_fidelity(src, out, idx, plan) -> dict:
    if plan is None:
        return {"skipped": "no plan given (pass --plan PLAN.json with the edit's per-frame AU targets)"}
    if src.fit is None or out.fit is None:
        return {"skipped": f"AU fit unavailable: {src.au_note or out.au_note}"}
    names, target = load_plan(plan, len(src.tracks))
    fit_names = list(src.fit.au_names)
    common = [n for n in names if n in fit_names]
    if not common:
        return {
            "skipped": f"the plan's AUs ({', '.join(names[:5])}...) are not the fit's ({', '.join(fit_names[:5])}...)"
        }
    cs = [fit_names.index(n) for n in common]
    cp = [names.index(n) for n in common]
    # Refit the edited clip with the source's identity (same actor): an expression the edit holds
    # over the whole shot would otherwise be absorbed into a shot-level identity and read as 0.
    from facepipe.face.shot import fit_tracks

    edited_fit = fit_tracks(out.tracks, identity=src.fit.identity)
    valid = np.asarray(src.fit.valid, bool)[idx] & np.asarray(edited_fit.valid, bool)
    return ms.au_fidelity(src.fit.au[idx][:, cs], edited_fit.au[:, cs], target[idx][:, cp], common, valid)


def _pixel_pass(src_info, ed_info, ref_info, idx, src_lms, ed_lms, scheme, identity: bool, log) -> dict:
    """Stream source, edited and re-encoded frames together; accumulate the pixel measures."""
    from facepipe.analysis.regions import hull_mask
    from facepipe.evaluation.identity import DlibIdentity, identity_unavailable
    from facepipe.io.reader import VideoReader

    n = len(idx)
    h, w = src_info.height, src_info.width
    sharp_s, sharp_e, sharp_r = (np.full(n, np.nan) for _ in range(3))
    flick_s, flick_e = np.full(n, np.nan), np.full(n, np.nan)
    sse, count, worst = 0.0, 0, ms.PSNR_CAP
    floor_sse, floor_count = 0.0, 0
    both = np.isfinite(src_lms[idx].reshape(n, -1)).all(1) & np.isfinite(ed_lms.reshape(n, -1)).all(1)
    id_reason = None if identity else "skipped (--no-identity)"
    if id_reason is None:
        id_reason = identity_unavailable()
    id_pos = (
        set(
            np.flatnonzero(both)[
                np.linspace(0, both.sum() - 1, min(IDENTITY_SAMPLES, both.sum())).round().astype(int)
            ].tolist()
        )
        if both.any() and id_reason is None
        else set()
    )
    embedder = DlibIdentity() if id_pos else None
    desc_s, desc_e = [], []
    prev = None
    readers = (
        VideoReader(src_info).chunks(idx, chunk_size=8),
        VideoReader(ed_info).chunks(np.arange(n), chunk_size=8),
        VideoReader(ref_info).chunks(np.arange(n), chunk_size=8),
    )
    t = 0
    for cs, ce, cr in zip(*readers):
        fs, fe, fr = cs.frames.numpy(), ce.frames.numpy(), cr.frames.numpy()
        for k in range(len(fs)):
            ls, le = src_lms[idx[t]], ed_lms[t]
            face_s = hull_mask(ls, h, w)
            inner = hull_mask(ls, h, w, grow=-SHARPNESS_INSET)
            ys, ye, yr = ms.luma(fs[k]), ms.luma(fe[k]), ms.luma(fr[k])
            if inner.any():
                sharp_s[t] = ms.laplacian_variance(ys, inner)
                sharp_e[t] = ms.laplacian_variance(ye, inner)
                sharp_r[t] = ms.laplacian_variance(yr, inner)
            if prev is not None:
                region = face_s | prev[3]
                flick_s[t] = ms.mean_abs_change(prev[0], ys, region)
                flick_e[t] = ms.mean_abs_change(prev[1], ye, region)
            prev = (ys, ye, yr, face_s)
            grown = hull_mask(ls, h, w, grow=BACKGROUND_MARGIN) | hull_mask(le, h, w, grow=BACKGROUND_MARGIN)
            bg = ~grown
            s, c = ms.masked_sse(fe[k], fr[k], bg)
            sse, count = sse + s, count + c
            if c:
                worst = min(worst, ms.psnr_from_sse(s, c))
            s, c = ms.masked_sse(fr[k], fs[k], bg)
            floor_sse, floor_count = floor_sse + s, floor_count + c
            if t in id_pos:
                to8 = lambda f: (np.clip(f.transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)  # noqa: E731
                desc_s.append(embedder.embed(to8(fs[k]), ls, scheme))
                desc_e.append(embedder.embed(to8(fe[k]), le, scheme))
            t += 1
    if id_reason is not None:
        ident = {"skipped": id_reason}
    elif not desc_s:
        ident = {"skipped": "no frame has a face in both clips"}
    else:
        ident = {**ms.identity_similarity(np.array(desc_s), np.array(desc_e)), "model": "dlib ResNet v1"}
    return {
        "sharpness": {
            "ratio": ms.ratio(sharp_e, sharp_s),
            "codec_ratio": ms.ratio(sharp_r, sharp_s),
            "source_laplacian_var": ms._f(np.nanmean(sharp_s) if np.isfinite(sharp_s).any() else None, 6),
        },
        "background": {
            "psnr_db": ms._f(ms.psnr_from_sse(sse, count), 2),
            "min_frame_psnr_db": ms._f(worst, 2) if count else None,
            "codec_floor_psnr_db": ms._f(ms.psnr_from_sse(floor_sse, floor_count), 2),
        },
        "flicker": {
            "flicker_source": ms._f(np.nanmean(flick_s) if np.isfinite(flick_s).any() else None, 6),
            "flicker_edited": ms._f(np.nanmean(flick_e) if np.isfinite(flick_e).any() else None, 6),
            "flicker_ratio": ms.ratio(flick_e, flick_s),
        },
        "identity": ident,
    }
