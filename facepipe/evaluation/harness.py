"""Score an edited clip against its source: ``evaluate(source, edited, emotion, analyse=...,
reencode_source=...)`` -> report dict. ``facepipe.api.evaluate`` wires the analysis job and a
plain re-encode in; this module imports neither (it is given them as callables).

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
- ``stability``: landmark jitter ratio, flicker ratio inside the face, and the temporal warping
  error (Lai et al. 2018) inside the face: each clip's previous frame warped to the current one
  by the *source's* optical flow, mean squared difference on non-occluded face pixels
  (:func:`facepipe.evaluation.measures.warp_error_pair`), edited / source;
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facepipe.analysis.expression import classifier_class
from facepipe.analysis.regions import hull_mask, mouth_opening
from facepipe.errors import RequestError
from facepipe.evaluation import measures as ms
from facepipe.evaluation.identity import DlibIdentity, identity_unavailable
from facepipe.face.shot import fit_tracks
from facepipe.io.frameranges import parse_frame_range
from facepipe.io.media import MediaInfo, probe
from facepipe.io.reader import VideoReader
from facepipe.pipeline.device import one_cpu_thread
from facepipe.plan.planner import EditPlan

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
    *,
    analyse: Callable,
    reencode_source: Callable,
    plan=None,
    frames: str | None = None,
    codec: str | None = None,
    reencode=None,
    identity: bool = True,
    log=print,
) -> dict:
    """Score ``edited`` against ``source`` for an edit towards ``emotion`` (see module doc).

    analyse: ``analyse(path, au: bool)`` -> the clip's analysis (``.tracks``, ``.emotions``, and
    with ``au`` ``.fit`` / ``.au_note``), e.g. :func:`facepipe.jobs.analyze.run_analysis`.
    reencode_source: ``reencode_source(source, out_path, codec, frames)`` -> the path of a plain
    pass-through re-encode of ``source`` (frames ``frames``) with the codec preset ``codec``.
    plan: a plan file/folder (see :func:`load_plan`) for AU fidelity, or None (measure skipped).
    reencode: an existing plain re-encode of the source to compare the background with; by
    default ``reencode_source`` makes one with ``codec`` (default: the edited clip's codec) in a
    temporary folder. identity: False skips the dlib measure. ``log`` is kept for callers' progress
    lines (the harness itself is quiet). Returns the report (JSON-serialisable).
    """
    t0 = time.perf_counter()
    target = _classifier_target(emotion)
    pair_info = _paired_clips(source, edited, frames)
    src, out = analyse(source, plan is not None), analyse(edited, plan is not None)
    pair = _Pair.of(*pair_info, src.tracks, out.tracks)
    report = _header(source, edited, emotion, frames, pair)
    report["emotion"] = ms.emotion_stats(src.emotions.probs[pair.idx], out.emotions.probs, target)
    if target is None:
        report["emotion"]["note"] = f"the classifier has no class for {emotion!r}; only distributions are reported"
    report["au_fidelity"] = _au_fidelity(src, out, pair.idx, plan)
    report["speech"] = ms.speech_correlation(mouth_opening(pair.src_lms), mouth_opening(pair.ed_lms))
    pix, codec_used = _pixels(source, edited, pair, reencode, codec, frames, reencode_source, identity)
    report["sharpness"] = pix["sharpness"]
    report["background"] = {**pix["background"], "reencode_codec": codec_used, "margin_iod": BACKGROUND_MARGIN}
    report["identity"] = pix["identity"]
    cuts_e = [int(c) for c in out.tracks.shot_cuts if 0 < c < len(out.tracks)]
    report["stability"] = {
        **ms.jitter_ratio(src.tracks.landmarks_raw[pair.idx], out.tracks.landmarks_raw, pair.scheme, pair.cuts, cuts_e),
        **pix["flicker"],
        **pix["warp"],
    }
    report["warnings"] = ms.warnings_for(report)
    report["seconds"] = round(time.perf_counter() - t0, 2)
    return report


def _classifier_target(emotion: str) -> str | None:
    try:
        return classifier_class(emotion)
    except ValueError as exc:
        raise RequestError(str(exc)) from None


def _paired_clips(source, edited, frames: str | None):
    """(source MediaInfo, edited MediaInfo, idx (T,) source frame of each edited frame), or a
    RequestError when the clips cannot be paired."""
    src_info, ed_info = probe(source), probe(edited)
    if (src_info.width, src_info.height) != (ed_info.width, ed_info.height):
        raise RequestError(
            f"the edited clip is {ed_info.width}x{ed_info.height}, the source {src_info.width}x{src_info.height}"
        )
    return src_info, ed_info, _pair_indices(src_info, ed_info, frames)


@dataclass
class _Pair:
    """The source and edited clip, frame by frame.

    idx: (T,) source frame index of each edited frame; src_lms / ed_lms: (T,N,3) px smoothed
    landmarks of the source's frames ``idx`` and of the edited frames (NaN rows: no face);
    cuts: positions t (in 0..T) where a new source shot starts.
    """

    source: MediaInfo
    edited: MediaInfo
    idx: np.ndarray
    src_lms: np.ndarray
    ed_lms: np.ndarray
    scheme: str
    cuts: list[int]

    @classmethod
    def of(cls, src_info, ed_info, idx, src_tracks, ed_tracks) -> _Pair:
        cuts = [int(c) for c in np.searchsorted(idx, src_tracks.shot_cuts) if 0 < c < len(idx)]
        return cls(src_info, ed_info, idx, src_tracks.landmarks[idx], ed_tracks.landmarks,
                   src_tracks.scheme or "mediapipe-478", cuts)  # fmt: skip


def _header(source, edited, emotion: str, frames: str | None, pair: _Pair) -> dict:
    n = len(pair.idx)
    present_s = np.isfinite(pair.src_lms.reshape(n, -1)).all(1)
    present_e = np.isfinite(pair.ed_lms.reshape(len(pair.ed_lms), -1)).all(1)
    return {
        "source": str(source),
        "edited": str(edited),
        "emotion": emotion,
        "frames": int(n),
        "frame_range": frames or "all",
        "face_frames": {
            "source": int(present_s.sum()),
            "edited": int(present_e.sum()),
            "both": int((present_s & present_e).sum()),
        },
    }


def _pixels(source, edited, pair: _Pair, reencode, codec, frames, reencode_source, identity: bool):
    """(the pixel measures of :func:`_pixel_pass`, the reference re-encode's codec label): the
    reference is ``reencode`` when given ("given"), else made by ``reencode_source`` in a
    temporary folder with ``codec`` (default: like the edited clip)."""
    if reencode is not None:
        return _pixel_pass(pair, probe(reencode), identity), codec or "given"
    codec = codec or reencode_codec(pair.edited)
    suffix = Path(edited).suffix if Path(edited).suffix.lower() in (".mp4", ".mov", ".mkv") else ".mkv"
    with tempfile.TemporaryDirectory(prefix="facepipe-eval-") as tmp:
        ref = reencode_source(source, Path(tmp) / f"reencode{suffix}", codec, frames)
        return _pixel_pass(pair, probe(ref), identity), codec


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
    edited_fit = fit_tracks(out.tracks, identity=src.fit.identity)
    valid = np.asarray(src.fit.valid, bool)[idx] & np.asarray(edited_fit.valid, bool)
    return ms.au_fidelity(src.fit.au[idx][:, cs], edited_fit.au[:, cs], target[idx][:, cp], common, valid)


def _pixel_pass(pair: _Pair, ref_info, identity: bool) -> dict:
    """Stream source, edited and re-encoded frames together; accumulate the pixel measures."""
    n = len(pair.idx)
    acc = _PixelMeasures(pair, _identity_positions(pair, identity))
    readers = (
        VideoReader(pair.source).chunks(pair.idx, chunk_size=8),
        VideoReader(pair.edited).chunks(np.arange(n), chunk_size=8),
        VideoReader(ref_info).chunks(np.arange(n), chunk_size=8),
    )
    t = 0
    with one_cpu_thread():  # face-sized torch work (the warping error): see one_cpu_thread
        for cs, ce, cr in zip(*readers):
            fs, fe, fr = cs.frames.numpy(), ce.frames.numpy(), cr.frames.numpy()
            for k in range(len(fs)):
                acc.add(t, fs[k], fe[k], fr[k])
                t += 1
    return acc.report()


def _identity_positions(pair: _Pair, identity: bool) -> tuple[str | None, set[int]]:
    """(why the identity measure is skipped or None, the frame positions whose faces it compares:
    up to IDENTITY_SAMPLES evenly spread over frames with a face in both clips)."""
    reason = None if identity else "skipped (--no-identity)"
    if reason is None:
        reason = identity_unavailable()
    n = len(pair.idx)
    both = np.isfinite(pair.src_lms.reshape(n, -1)).all(1) & np.isfinite(pair.ed_lms.reshape(n, -1)).all(1)
    if not both.any() or reason is not None:
        return reason, set()
    pick = np.linspace(0, both.sum() - 1, min(IDENTITY_SAMPLES, both.sum())).round().astype(int)
    return reason, set(np.flatnonzero(both)[pick].tolist())


class _PixelMeasures:
    """Per-frame accumulators of the pixel measures: sharpness, flicker, warping error,
    background PSNR and identity descriptors. ``add`` each aligned frame triple (3,H,W) in order,
    then ``report``."""

    def __init__(self, pair: _Pair, identity: tuple[str | None, set[int]]):
        n = len(pair.idx)
        self.pair, self.h, self.w = pair, pair.source.height, pair.source.width
        self.sharp = np.full((3, n), np.nan)  # source, edited, re-encode
        self.flicker = np.full((2, n), np.nan)  # source, edited
        self.warp = np.full((2, n), np.nan)  # source, edited
        self.bg = {"sse": 0.0, "count": 0, "worst": ms.PSNR_CAP, "floor_sse": 0.0, "floor_count": 0}
        self.id_reason, self.id_pos = identity
        self.embedder = DlibIdentity() if self.id_pos else None
        self.desc_s, self.desc_e = [], []
        self.prev = None

    def add(self, t: int, fs: np.ndarray, fe: np.ndarray, fr: np.ndarray) -> None:
        ls, le = self.pair.src_lms[t], self.pair.ed_lms[t]
        face_s = hull_mask(ls, self.h, self.w)
        ys, ye, yr = ms.luma(fs), ms.luma(fe), ms.luma(fr)
        inner = hull_mask(ls, self.h, self.w, grow=-SHARPNESS_INSET)
        if inner.any():
            self.sharp[:, t] = [ms.laplacian_variance(y, inner) for y in (ys, ye, yr)]
        if self.prev is not None:
            prev_fs, prev_fe, prev_ys, prev_ye, prev_face = self.prev
            region = face_s | prev_face
            self.flicker[:, t] = ms.mean_abs_change(prev_ys, ys, region), ms.mean_abs_change(prev_ye, ye, region)
            if t not in self.pair.cuts:
                self.warp[:, t] = ms.warp_error_pair(np.stack([prev_fs, prev_fe]), np.stack([fs, fe]), face_s)
        self.prev = (fs, fe, ys, ye, face_s)
        self._background(fs, fe, fr, ls, le)
        if t in self.id_pos:
            to8 = lambda f: (np.clip(f.transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)  # noqa: E731
            self.desc_s.append(self.embedder.embed(to8(fs), ls, self.pair.scheme))
            self.desc_e.append(self.embedder.embed(to8(fe), le, self.pair.scheme))

    def _background(self, fs, fe, fr, ls, le) -> None:
        grown = hull_mask(ls, self.h, self.w, grow=BACKGROUND_MARGIN) | hull_mask(le, self.h, self.w, grow=BACKGROUND_MARGIN)
        bg = ~grown
        s, c = ms.masked_sse(fe, fr, bg)
        self.bg["sse"] += s
        self.bg["count"] += c
        if c:
            self.bg["worst"] = min(self.bg["worst"], ms.psnr_from_sse(s, c))
        s, c = ms.masked_sse(fr, fs, bg)
        self.bg["floor_sse"] += s
        self.bg["floor_count"] += c

    def report(self) -> dict:
        mean = lambda x: ms._f(np.nanmean(x) if np.isfinite(x).any() else None, 6)  # noqa: E731
        bg = self.bg
        return {
            "sharpness": {
                "ratio": ms.ratio(self.sharp[1], self.sharp[0]),
                "codec_ratio": ms.ratio(self.sharp[2], self.sharp[0]),
                "source_laplacian_var": mean(self.sharp[0]),
            },
            "background": {
                "psnr_db": ms._f(ms.psnr_from_sse(bg["sse"], bg["count"]), 2),
                "min_frame_psnr_db": ms._f(bg["worst"], 2) if bg["count"] else None,
                "codec_floor_psnr_db": ms._f(ms.psnr_from_sse(bg["floor_sse"], bg["floor_count"]), 2),
            },
            "flicker": {
                "flicker_source": mean(self.flicker[0]),
                "flicker_edited": mean(self.flicker[1]),
                "flicker_ratio": ms.ratio(self.flicker[1], self.flicker[0]),
            },
            "warp": ms.warp_error_summary(self.warp[0], self.warp[1]),
            "identity": self._identity(),
        }

    def _identity(self) -> dict:
        if self.id_reason is not None:
            return {"skipped": self.id_reason}
        if not self.desc_s:
            return {"skipped": "no frame has a face in both clips"}
        return {**ms.identity_similarity(np.array(self.desc_s), np.array(self.desc_e)), "model": "dlib ResNet v1"}
