"""The edit's quality bars, measured with the evaluation harness over a set of clips.

For every clip (default: every shared clip), its first ``--max-frames`` frames become the
source; each emotion in ``--emotions`` is edited at intensity 1 along each path in
``--paths``, and every edit is scored by :func:`facepipe.api.evaluate` with the edit's own plan
(from its report) for AU fidelity::

    python benchmarks/edit_quality.py --json benchmarks/results/edit_quality.json \
        [--clips A.mp4 B.mp4] [--emotions happy,sad,surprised] [--paths warp,full] [--max-frames 60] \
        [--define-path NAME='{"appearance": 1.0}']

A path is a set of ``api.edit`` keywords on top of the emotion (see PATHS): ``warp`` = geometric
warp only (``appearance=0``), ``full`` = warp + appearance transfer at ``--appearance``,
``unsmoothed`` = ``full`` with the edit's temporal smoothing (the smooth stage) off
(``smooth=0``): what the smooth stage changes is the difference between ``full`` and it.
``neural`` = ``full`` refined by the person-specific neural renderer, trained first on the
*whole* clip (``--renderer-minutes``, actor = the clip's name; reused when it exists in the work
dir) and applied to the trimmed source.
``--define-path`` adds or replaces one (JSON keywords; ``appearance`` defaults to ``--appearance``).

The trimmed sources and the edits are written losslessly (FFV1 in .mkv, ``common.LOSSLESS_CODEC``):
with libx264 the same frames gave slightly different files run to run, and the tracker's jitter
figure moved by up to 0.3 with them. A rerun now scores the same pixels and gives the same numbers.

Writes OUT (JSON: every harness report) and OUT.md: per clip rows and, per emotion and path,
the pooled numbers next to the issue's bars: target top class share over all face frames
(happy >= 40%, sad >= 50%), clips where P(target) rose (all), speech r on talking clips
(>= 0.9), sharpness (>= 0.9x), AU fidelity (>= 0.5), jitter and flicker (<= 1.2x), the
warping error (edited / source; no bar yet), background PSNR.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LOSSLESS_CODEC, actor_name  # noqa: E402
from quality import SHARED, trimmed_source  # noqa: E402

#: Edit paths: name -> ``api.edit`` keywords on top of ``emotion`` (intensity 1, the lossless
#: codec, and ``appearance=--appearance`` unless the path sets it).
PATHS = {
    "warp": {"appearance": 0.0},
    "full": {},
    "unsmoothed": {"smooth": 0.0},
    "neural": {"renderer": "neural"},
}
DEFAULT_PATHS = "warp,full,unsmoothed"

TOP_SHARE_BAR = {"happy": 0.40, "sad": 0.50}
BARS = {"speech": 0.9, "sharpness": 0.9, "au_fidelity": 0.5, "jitter": 1.2, "flicker": 1.2}


def edit_and_score(src: Path, folder: Path, emotion: str, path: str, edit_kwargs: dict, workdir, identity: bool) -> dict:
    """Edit ``src`` towards ``emotion`` with ``api.edit(**edit_kwargs)`` (path ``path``), losslessly,
    and score it with the harness (the edit's plan for AU fidelity)."""
    from facepipe import api

    out = folder / f"{src.stem}.{emotion}.{path}{src.suffix}"
    t0 = time.perf_counter()
    result = api.edit(src, emotion=emotion, out=out, force=True, codec=LOSSLESS_CODEC, workdir=workdir, progress="off",
                      log=lambda m: None, **edit_kwargs)  # fmt: skip
    edit_s = time.perf_counter() - t0
    report = api.evaluate(src, out, emotion, plan=result.report_path, identity=identity, workdir=workdir,
                          log=lambda m: None)  # fmt: skip
    report.update(path=path, edit_kwargs=edit_kwargs, edit_seconds=round(edit_s, 2), edit_report={
        k: result.report.get(k) for k in ("render", "appearance", "warnings", "timing", "deblur")})  # fmt: skip
    return report


def with_renderer(clip: Path, kwargs: dict, minutes: float, workdir) -> tuple[dict, dict]:
    """A neural path's keywords for ``clip`` (its actor's renderer, trained on the whole clip
    first when missing) and the training's report ({} when reused or not neural)."""
    if kwargs.get("renderer") != "neural":
        return kwargs, {}
    from facepipe import api
    from facepipe.jobs.context import default_workdir
    from facepipe.render.neural.library import renderer_path

    actor = actor_name(clip)
    if renderer_path(actor, None, Path(workdir or default_workdir())).is_file():
        return {**kwargs, "actor": actor}, {}
    report = api.train_renderer(clip, actor=actor, minutes=minutes, workdir=workdir, progress="off", log=lambda m: None)
    print(f"{clip.name}: renderer trained, {report['steps']} steps in {report['seconds']} s: {report['validation_after']}", flush=True)
    return {**kwargs, "actor": actor}, {k: report[k] for k in ("steps", "seconds", "device", "validation_after")}


def path_kwargs(paths: list[str], appearance: float, defined: dict[str, dict]) -> dict[str, dict]:
    """name -> api.edit keywords of each path asked for (PATHS, overridden by ``defined``)."""
    import inspect

    from facepipe import api

    table = {**PATHS, **defined}
    unknown = [p for p in paths if p not in table]
    if unknown:
        raise SystemExit(f"edit_quality: unknown path {', '.join(unknown)}: use {', '.join(table)} or --define-path")
    known = inspect.signature(api.edit).parameters
    for p in paths:
        missing = [k for k in table[p] if k not in known]
        if missing:
            raise SystemExit(f"edit_quality: path {p} needs api.edit keyword(s) {', '.join(missing)}, "
                             "which this checkout's api.edit does not have")  # fmt: skip
    return {p: {"appearance": appearance, **table[p]} for p in paths}


def parse_path_definition(text: str) -> tuple[str, dict]:
    """``NAME={"keyword": value, ...}`` -> (NAME, keywords)."""
    name, sep, body = text.partition("=")
    try:
        kwargs = json.loads(body) if sep else None
    except ValueError:
        kwargs = None
    if not name.strip() or not isinstance(kwargs, dict):
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME='{{\"keyword\": value, ...}}' (api.edit keywords)")
    return name.strip(), kwargs


def pooled(reports: list[dict], emotion: str) -> dict:
    """Pooled numbers of one emotion and path over clips."""
    faces = np.array([r["face_frames"]["both"] for r in reports], float)
    emo = [r["emotion"] for r in reports]
    top = np.array([e.get("top_share_after") or 0.0 for e in emo])
    top_before = np.array([e.get("top_share_before") or 0.0 for e in emo])
    rose = [(e.get("mean_after") or 0) > (e.get("mean_before") or 0) for e in emo]
    talking = [r for r in reports if (r.get("speech") or {}).get("meaningful", True)]

    def vals(key, sub):
        v = [(r.get(key) or {}).get(sub) for r in reports]
        return np.array([x for x in v if x is not None], float)

    speech = np.array([r["speech"]["corr"] for r in talking if r["speech"].get("corr") is not None], float)
    out = {
        "clips": len(reports),
        "face_frames": int(faces.sum()),
        "top_share_before": float((top_before * faces).sum() / max(faces.sum(), 1)),
        "top_share_after": float((top * faces).sum() / max(faces.sum(), 1)),
        "clips_rose": int(sum(rose)),
        "speech_min": float(speech.min()) if len(speech) else None,
        "speech_median": float(np.median(speech)) if len(speech) else None,
        "talking_clips": len(speech),
    }
    for name, key, sub in (("sharpness", "sharpness", "ratio"), ("au_fidelity", "au_fidelity", "overall"),
                           ("jitter", "stability", "jitter_ratio"), ("flicker", "stability", "flicker_ratio"),
                           ("warp_error", "stability", "warp_error_ratio"),
                           ("background_psnr", "background", "psnr_db"), ("identity_cos", "identity", "cosine")):  # fmt: skip
        v = vals(key, sub)
        out[f"{name}_min"] = float(v.min()) if len(v) else None
        out[f"{name}_median"] = float(np.median(v)) if len(v) else None
        out[f"{name}_max"] = float(v.max()) if len(v) else None
    out["bar_top_share"] = TOP_SHARE_BAR.get(emotion)
    return out


def markdown(result: dict) -> str:
    from facepipe.evaluation.table import markdown_table

    lines = [f"# Edit quality ({result['machine']['node']}, {result['machine']['cpus']} CPUs, first {result['max_frames']} "
             f"frames per clip, appearance {result['appearance']})", "",
             f"Clips measured: {len(result['clips_measured'])} of {len(result['clips_requested'])} "
             f"({', '.join(result['clips_measured'])}).", ""]  # fmt: skip
    lines += ["## Pooled", "",
              "| emotion | path | clips | face frames | top share before->after (bar) | P rose on | speech r min / median "
              "| sharp min / med | AU fid min / med | jitter max | flicker max | warp err max | bg PSNR min | identity cos min |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    f = lambda v, s=".2f": "n/a" if v is None else format(v, s)  # noqa: E731
    for key, p in result["pooled"].items():
        emotion, path = key.split("/")
        bar = f" (>= {p['bar_top_share']:.0%})" if p["bar_top_share"] else ""
        lines.append(
            f"| {emotion} | {path} | {p['clips']} | {p['face_frames']} | {p['top_share_before']:.0%} -> "
            f"{p['top_share_after']:.0%}{bar} | {p['clips_rose']}/{p['clips']} | {f(p['speech_min'])} / "
            f"{f(p['speech_median'])} ({p['talking_clips']} talking) | {f(p['sharpness_min'])} / {f(p['sharpness_median'])} | "
            f"{f(p['au_fidelity_min'])} / {f(p['au_fidelity_median'])} | {f(p['jitter_max'])} | {f(p['flicker_max'])} | "
            f"{f(p.get('warp_error_max'))} | "
            f"{f(p['background_psnr_min'], '.1f')} | {f(p['identity_cos_min'], '.3f')} |"
        )
    lines += ["", "## Per clip", ""]
    reports = result["reports"]
    lines.append(markdown_table(reports, [f"{r['requested']} {r['path']}" for r in reports]))
    if result["skipped"]:
        lines += ["", "Not scored:", ""] + [f"- {s}" for s in result["skipped"]]
    return "\n".join(lines) + "\n"


def write(args, reports: list[dict], skipped: list[str], emotions, paths: dict[str, dict], clips, seconds: float) -> None:
    result = {
        "machine": {"node": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "max_frames": args.max_frames,
        "appearance": args.appearance,
        "paths": paths,
        "codec": LOSSLESS_CODEC,
        "seconds": round(seconds, 1),
        "clips_requested": [c.name for c in clips],
        "clips_measured": sorted({r["clip"] for r in reports}),
        "pooled": {f"{e}/{p}": pooled([r for r in reports if r["path"] == p and r["requested"] == e], e)
                   for e in emotions for p in paths if any(r["path"] == p and r["requested"] == e for r in reports)},  # fmt: skip
        "reports": reports,
        "skipped": skipped,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1, default=str))
    args.json.with_suffix(".md").write_text(markdown(result))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--clips", nargs="*", type=Path, default=None, help="default: every shared clip")
    ap.add_argument("--emotions", default="happy,sad,surprised")
    ap.add_argument("--paths", default=DEFAULT_PATHS,
                    help="comma-separated edit paths (PATHS): warp (appearance 0), full (appearance transfer), "
                         "unsmoothed (full with smooth=0), neural (full + the neural renderer)")  # fmt: skip
    ap.add_argument("--define-path", action="append", type=parse_path_definition, default=[], metavar="NAME=JSON",
                    help="add or replace a path: NAME='{\"appearance\": 1.0}' (api.edit keywords); list it in --paths")
    ap.add_argument("--appearance", type=float, default=None, help="appearance strength of the full path (default: the edit's)")
    ap.add_argument("--max-frames", type=int, default=60)
    ap.add_argument("--renderer-minutes", type=float, default=3.0, help="training budget of the neural path's renderer per clip")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep-clips", type=Path, default=None)
    ap.add_argument("--no-identity", action="store_true")
    ap.add_argument("--resume", action="store_true", help="keep the clips already in --json and add the rest")
    args = ap.parse_args(argv)

    import tempfile

    from facepipe.defaults import APPEARANCE_STRENGTH as DEFAULT_APPEARANCE
    from facepipe.errors import FacepipeError

    if args.appearance is None:
        args.appearance = DEFAULT_APPEARANCE

    clips = args.clips or sorted(SHARED.glob("*.mp4"))
    if not clips:
        print(f"edit_quality: no clips (looked in {SHARED})", file=sys.stderr)
        return 2
    emotions = [e.strip() for e in args.emotions.split(",") if e.strip()]
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    kwargs = path_kwargs(paths, args.appearance, dict(args.define_path))
    reports, skipped = [], []
    if args.resume and args.json.exists():
        reports = json.loads(args.json.read_text())["reports"]
    done = {r["clip"] for r in reports}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="facepipe-editq-") as tmp:
        folder = args.keep_clips or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for clip in clips:
            if clip.name in done:
                continue
            src = trimmed_source(clip, folder, args.max_frames, args.workdir)
            for emotion in emotions:
                for path in paths:
                    try:
                        edit_kwargs, training = with_renderer(clip, kwargs[path], args.renderer_minutes, args.workdir)
                        r = edit_and_score(src, folder, emotion, path, edit_kwargs, args.workdir, not args.no_identity)
                        r["renderer_training"] = training
                    except FacepipeError as exc:
                        skipped.append(f"{clip.name} {emotion} {path}: {exc}")
                        print(skipped[-1], flush=True)
                        continue
                    r["clip"], r["requested"] = clip.name, emotion
                    reports.append(r)
                    e = r["emotion"]
                    print(f"{clip.name} {emotion} {path}: P {e.get('mean_before')}->{e.get('mean_after')} top "
                          f"{e.get('top_share_after')} speech {r['speech'].get('corr')} sharp {r['sharpness'].get('ratio')} "
                          f"AU {r['au_fidelity'].get('overall')} warp x{r['stability'].get('warp_error_ratio')} "
                          f"({r['edit_seconds']} s edit, {r['seconds']} s score)", flush=True)  # fmt: skip
            # written after every clip: a long run that is stopped keeps what it measured
            write(args, reports, skipped, emotions, kwargs, clips, time.perf_counter() - t0)
    print(markdown(json.loads(args.json.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
