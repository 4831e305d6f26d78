"""Landmark accuracy of every tracking backend that can run here, against 68-point annotations.

    python benchmarks/landmarks.py ../shared/data/landmarks --json benchmarks/results/landmarks.json

DIR holds images with iBUG 300-W ``.pts`` files of the same stem (68 points, 1-based pixels).
For each image each backend finds the faces (tiled detection, so small faces in group photos
are found), keeps the one that overlaps the annotation best and maps its points to the 68-point
scheme. The score is the NME: mean point-to-point error divided by the inter-ocular distance
(outer eye corners, points 37 and 46 in 1-based numbering). Writes OUT (JSON) and a markdown
table next to it (same name, ``.md``).

For the mesh backends it also reports, for context, the NME of a plain one-vertex-per-point
mapping of the kind many projects use (``VERTEX_MAPPING`` below); facepipe's mapping is in
``facepipe/tracking/schemes.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

GROUPS = {"jaw": (0, 17), "brows": (17, 27), "nose": (27, 36), "eyes": (36, 48), "mouth": (48, 68)}

#: A plain vertex-per-point mesh -> iBUG mapping, common in public code (for comparison only).
VERTEX_MAPPING = (
    127, 234, 93, 132, 58, 172, 136, 150, 152, 377, 379, 365, 397, 288, 323, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
)  # fmt: skip


def _box(p: np.ndarray) -> np.ndarray:
    return np.array([*np.nanmin(p[:, :2], 0), *np.nanmax(p[:, :2], 0)])


def evaluate_backend(backend, pairs, log=print) -> dict:
    from facepipe.tracking.geometry import box_iou
    from facepipe.tracking.metrics import load_rgb, per_point_errors, read_pts
    from facepipe.tracking.schemes import to_ibug68

    rows = []
    for img_path, pts_path in pairs:
        image = load_rgb(img_path)
        gt = read_pts(pts_path)
        if len(gt) != 68:
            log(f"  {img_path.name}: {len(gt)} points, not 68; skipped")
            continue
        t0 = time.perf_counter()
        faces = backend.image_faces(image, max_faces=32, tiled=True)
        seconds = time.perf_counter() - t0
        best, best_iou, best68 = None, 0.0, None
        for f in faces:
            p68 = to_ibug68(f.points, backend.scheme)
            iou = float(box_iou(_box(gt), _box(p68))[0, 0])
            if iou > best_iou:
                best, best_iou, best68 = f, iou, p68
        row = {"image": img_path.name, "size": [int(image.shape[1]), int(image.shape[0])], "faces_found": len(faces),
               "seconds": round(seconds, 4)}  # fmt: skip
        if best is None or best_iou < 0.3:
            row.update(found=False, nme=None)
            log(f"  {img_path.name:24s} annotated face not found ({len(faces)} faces)")
        else:
            err = per_point_errors(best68, gt)
            row.update(found=True, nme=float(err.mean()), iou=round(best_iou, 3), score=round(float(best.score), 4),
                       groups={g: float(err[a:b].mean()) for g, (a, b) in GROUPS.items()})  # fmt: skip
            if backend.scheme.n_points >= 468:
                plain = per_point_errors(np.asarray(best.points)[list(VERTEX_MAPPING)], gt)
                row["nme_plain_vertex_mapping"] = float(plain.mean())
            log(f"  {img_path.name:24s} NME {100 * row['nme']:6.2f}%")
        rows.append(row)
    found = [r for r in rows if r["found"]]
    summary = {
        "images": len(rows),
        "found": len(found),
        "mean_nme": float(np.mean([r["nme"] for r in found])) if found else None,
        "median_nme": float(np.median([r["nme"] for r in found])) if found else None,
        "groups": {g: float(np.mean([r["groups"][g] for r in found])) for g in GROUPS} if found else {},
        "mean_seconds_per_image": float(np.mean([r["seconds"] for r in rows])) if rows else None,
    }
    if found and "nme_plain_vertex_mapping" in found[0]:
        summary["mean_nme_plain_vertex_mapping"] = float(np.mean([r["nme_plain_vertex_mapping"] for r in found]))
    return {"backend": backend.name, "scheme": backend.scheme.name, "summary": summary, "images": rows}


def markdown(report: dict) -> str:
    runs = report["backends"]
    lines = [f"# Landmark NME on `{report['dir']}`", "",
             "NME = mean point error / inter-ocular distance (outer eye corners), in %.", ""]  # fmt: skip
    names = [r["backend"] for r in runs]
    lines.append("| image | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    images = [row["image"] for row in runs[0]["images"]] if runs else []
    for i, name in enumerate(images):
        cells = []
        for r in runs:
            v = r["images"][i]["nme"]
            cells.append("miss" if v is None else f"{100 * v:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    mean = [f"**{100 * r['summary']['mean_nme']:.2f}**" if r["summary"]["mean_nme"] is not None else "-" for r in runs]
    lines.append("| **mean** | " + " | ".join(mean) + " |")
    lines.append("| found | " + " | ".join(f"{r['summary']['found']}/{r['summary']['images']}" for r in runs) + " |")
    for g in GROUPS:
        lines.append(
            f"| {g} | " + " | ".join(f"{100 * r['summary']['groups'].get(g, float('nan')):.2f}" for r in runs) + " |"
        )
    lines.append("| s/image | " + " | ".join(f"{r['summary']['mean_seconds_per_image']:.3f}" for r in runs) + " |")
    plain = [r for r in runs if "mean_nme_plain_vertex_mapping" in r["summary"]]
    if plain:
        lines += ["", "Plain vertex-per-point mesh mapping (for comparison): "
                  + ", ".join(f"{r['backend']} {100 * r['summary']['mean_nme_plain_vertex_mapping']:.2f}%" for r in plain)]  # fmt: skip
    skipped = report.get("skipped", {})
    if skipped:
        lines += ["", "Backends that could not run here:"] + [f"- {k}: {v}" for k, v in skipped.items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path, help="folder of images with 68-point .pts files")
    ap.add_argument("--json", type=Path, required=True, help="output JSON (a .md table is written next to it)")
    ap.add_argument(
        "--backends", default="auto", help="comma-separated backend names, or 'auto' (every one that can run)"
    )
    args = ap.parse_args(argv)

    from facepipe.errors import FacepipeError
    from facepipe.tracking.backends import available_backends, get_backend
    from facepipe.tracking.metrics import annotated_images

    try:
        pairs = annotated_images(args.dir)
    except FacepipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not pairs:
        print(f"error: no image with a .pts file in {args.dir}", file=sys.stderr)
        return 2
    avail = available_backends()
    names = [n for n in avail] if args.backends == "auto" else args.backends.split(",")
    report = {"dir": str(args.dir), "backends": [], "skipped": {}}
    for name in names:
        if avail.get(name, "unknown backend"):
            report["skipped"][name] = avail.get(name, "unknown backend")
            print(f"{name}: skipped ({report['skipped'][name]})")
            continue
        print(f"{name}:")
        try:
            backend = get_backend(name)
        except FacepipeError as exc:
            report["skipped"][name] = str(exc)
            continue
        with backend:
            run = evaluate_backend(backend, pairs)
        report["backends"].append(run)
        s = run["summary"]
        mean = "-" if s["mean_nme"] is None else f"{100 * s['mean_nme']:.2f}%"
        print(f"{name}: mean NME {mean} over {s['found']}/{s['images']} images")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    md = args.json.with_suffix(".md")
    md.write_text(markdown(report))
    print(f"wrote {args.json} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
