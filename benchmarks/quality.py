"""Quality of an edit: the evaluation harness on one edited clip, or on a set of clips.

One edit (what ``facepipe eval`` does, plus a one-row markdown table)::

    python benchmarks/quality.py --source ORIG --edited EDITED --emotion happy --json OUT \
        [--plan PLAN.json] [--frames 40-120] [--codec h264] [--no-identity]

A set of clips: each clip's first ``--max-frames`` frames become the source, every edit in
``--edits`` is made from it and scored, and one markdown table covers them all::

    python benchmarks/quality.py --set [CLIP ...] --emotion happy --json benchmarks/results/quality.json \
        [--edits facepipe,passthrough,shift5,blur] [--max-frames 60]

Edits: ``facepipe`` (``facepipe edit --emotion E``; reported as skipped while synthesis cannot
make that edit), ``passthrough`` (``--emotion neutral --intensity 0``: must score as unchanged),
``shift5`` (frames 5 early: must lose speech correlation), ``blur`` (face blurred: must lose
sharpness, whatever the classifier says). With no CLIP the set is four shared clips
(``../shared/data/clips``). The trimmed sources and every edit are written losslessly (FFV1 in
.mkv, ``common.LOSSLESS_CODEC``), so a rerun scores the same pixels. Writes OUT (JSON) and a markdown table next to it (same name, ``.md``);
``benchmarks/README.md`` explains the columns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LOSSLESS_CODEC, LOSSLESS_EXT, SHARED  # noqa: E402

DEFAULT_SET = ("lp_d0_grin.mp4", "dpe_d_256_noaudio.mp4", "hdtf_aoc_talk.mp4", "lp_d5_pucker_smile.mp4")
EDITS = ("facepipe", "passthrough", "shift5", "blur")


def make_edit(kind: str, src: Path, folder: Path, emotion: str, workdir) -> Path:
    """Write edit ``kind`` of ``src`` into ``folder``, losslessly (LOSSLESS_CODEC); FacepipeError
    when it cannot be made."""
    from facepipe import api
    from facepipe.evaluation.breakers import blurred_face_edit, shifted_edit

    quiet = lambda m: None  # noqa: E731
    out = folder / f"{src.stem}.{kind}{LOSSLESS_EXT}"
    kw = dict(out=out, force=True, codec=LOSSLESS_CODEC, workdir=workdir, progress="off", log=quiet)
    if kind == "facepipe":
        return api.edit(src, emotion=emotion, **kw).output
    if kind == "passthrough":
        return api.edit(src, emotion="neutral", intensity=0.0, **kw).output
    if kind.startswith("shift"):
        return shifted_edit(src, out, int(kind[5:] or 5), codec=LOSSLESS_CODEC)
    if kind == "blur":
        from facepipe.jobs.analyze import run_analysis

        tracks = run_analysis(src, au=False, workdir=workdir, progress="off", log=quiet).tracks
        return blurred_face_edit(src, out, tracks.landmarks, codec=LOSSLESS_CODEC)
    raise SystemExit(f"unknown edit {kind!r}: use {', '.join(EDITS)}")


def trimmed_source(clip: Path, folder: Path, max_frames: int, workdir) -> Path:
    """The first ``max_frames`` frames of ``clip`` (all of them when it is shorter or
    ``max_frames`` <= 0) as a lossless pass-through edit (LOSSLESS_CODEC): every clip the
    benchmarks score is made from the same pixels, run after run."""
    from facepipe import api
    from facepipe.io.media import probe

    count = probe(clip).frame_count
    n = count if max_frames <= 0 else min(max_frames, count)
    return api.edit(
        clip,
        emotion="neutral",
        intensity=0.0,
        frames=f"0-{n - 1}",
        force=True,
        codec=LOSSLESS_CODEC,
        out=folder / f"{clip.stem}.first{n}{LOSSLESS_EXT}",
        workdir=workdir,
        progress="off",
        log=lambda m: None,
    ).output


def run_set(
    clips: list[Path], emotion: str, edits: list[str], max_frames: int, workdir, identity: bool, folder: Path
) -> dict:
    from facepipe.api import evaluate
    from facepipe.errors import FacepipeError

    rows, skipped = [], []
    for clip in clips:
        src = trimmed_source(clip, folder, max_frames, workdir)
        for kind in edits:
            t0 = time.perf_counter()
            try:
                edited = make_edit(kind, src, folder, emotion, workdir)
            except FacepipeError as exc:
                skipped.append({"clip": clip.name, "edit": kind, "reason": str(exc)})
                print(f"{clip.name} {kind}: skipped ({exc})", flush=True)
                continue
            report = evaluate(
                src,
                edited,
                emotion if kind == "facepipe" else _emotion_for(kind, emotion),
                identity=identity,
                workdir=workdir,
                log=lambda m: None,
            )
            report["edit"] = kind
            report["seconds_with_edit"] = round(time.perf_counter() - t0, 2)
            rows.append(report)
            print(f"{clip.name} {kind}: done in {report['seconds_with_edit']} s", flush=True)
    return {"emotion": emotion, "edits": edits, "max_frames": max_frames, "reports": rows, "skipped": skipped}


def _emotion_for(kind: str, emotion: str) -> str:
    # The broken edits are scored against the requested emotion too: the point is that an edit
    # may raise its probability (blur does) and still be caught by the other measures.
    return emotion


def markdown(result: dict) -> str:
    from facepipe.evaluation.table import markdown_table

    reports = result["reports"]
    lines = [
        f"Edit quality (emotion: {result['emotion']}; {platform.node() or 'this machine'})",
        "",
        markdown_table(reports, [r.get("edit") for r in reports]),
    ]
    warns = [(r, w) for r in reports for w in r.get("warnings", [])]
    if warns:
        lines += (
            ["Warnings:", ""]
            + [f"- {Path(r['source']).name} / {r.get('edit') or Path(r['edited']).name}: {w}" for r, w in warns]
            + [""]
        )
    if result.get("skipped"):
        lines += ["Not scored:", ""] + [f"- {s['clip']} / {s['edit']}: {s['reason']}" for s in result["skipped"]] + [""]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, help="the original clip (one-edit mode)")
    ap.add_argument("--edited", type=Path, help="the edited clip (one-edit mode)")
    ap.add_argument(
        "--set",
        dest="clips",
        nargs="*",
        type=Path,
        default=None,
        help="set mode: clips to edit and score (default: four shared clips)",
    )
    ap.add_argument("--emotion", required=True, help="the emotion the edit asks for")
    ap.add_argument("--json", type=Path, required=True, help="output JSON (a .md table is written next to it)")
    ap.add_argument("--plan", type=Path, default=None, help="the edit's plan, for AU fidelity (one-edit mode)")
    ap.add_argument("--frames", default=None, help="source frames the edited clip holds (one-edit mode)")
    ap.add_argument(
        "--codec", default=None, help="codec preset of the reference re-encode (default: the edited clip's)"
    )
    ap.add_argument("--edits", default=",".join(EDITS), help=f"set mode: comma-separated, from {', '.join(EDITS)}")
    ap.add_argument("--max-frames", type=int, default=60, help="set mode: frames of each clip to use (0 = all)")
    ap.add_argument(
        "--keep-clips",
        type=Path,
        default=None,
        help="set mode: keep the trimmed sources and edits in this folder (default: a temporary one)",
    )
    ap.add_argument("--workdir", type=Path, default=None, help="artifact cache (default: facepipe's)")
    ap.add_argument("--no-identity", action="store_true", help="skip the dlib identity measure")
    return ap


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)

    from facepipe.api import evaluate
    from facepipe.errors import FacepipeError

    args.json.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        if args.clips is not None:
            clips = args.clips or [SHARED / c for c in DEFAULT_SET]
            missing = [str(c) for c in clips if not c.is_file()]
            if missing:
                print(f"quality: not found: {', '.join(missing)}", file=sys.stderr)
                return 2
            import tempfile

            with tempfile.TemporaryDirectory(prefix="facepipe-quality-") as tmp:
                folder = args.keep_clips or Path(tmp)
                folder.mkdir(parents=True, exist_ok=True)
                result = run_set(
                    clips,
                    args.emotion,
                    [e.strip() for e in args.edits.split(",") if e.strip()],
                    args.max_frames,
                    args.workdir,
                    not args.no_identity,
                    folder,
                )
        else:
            if not (args.source and args.edited):
                ap.error("give --source and --edited, or --set [CLIP ...]")
            report = evaluate(
                args.source,
                args.edited,
                args.emotion,
                plan=args.plan,
                frames=args.frames,
                codec=args.codec,
                identity=not args.no_identity,
                workdir=args.workdir,
                log=lambda m: None,
            )
            result = {"emotion": args.emotion, "reports": [report], "skipped": []}
    except FacepipeError as exc:
        print(f"quality: error: {exc}", file=sys.stderr)
        return 2
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["machine"] = {"node": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()}
    args.json.write_text(json.dumps(result, indent=1))
    md = markdown(result)
    args.json.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
