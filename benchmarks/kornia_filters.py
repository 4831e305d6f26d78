"""Hand-written image filters next to kornia's: which ones facepipe keeps, and why.

    python benchmarks/kornia_filters.py --json benchmarks/results/kornia_filters.json [--repeats 20]

On one thread (as the renderer's workers run torch) and on face-sized crops, times the
composite's own filters against the kornia call that would replace them, and says how far
their outputs differ (max absolute difference on 0..1 images):

- Gaussian blur (``composite.filters.gaussian_blur``, a sum of shifted slices) vs
  ``kornia.filters.gaussian_blur2d`` with the same taps and border;
- one Laplacian-pyramid level down and up (``composite.blend``: a polyphase 5-tap binomial
  that computes only the kept samples, and a normalised expand that is exactly 0 where its
  input is) vs ``kornia.geometry.transform.pyrdown`` / ``pyrup``;
- luma of RGB (the scan stage) vs ``kornia.color.rgb_to_grayscale``.

A kornia call replaces a hand-written one where it is as fast and gives the same result; the
edit's output must not change (the blend's zero-outside-the-matte guarantee included).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import kornia
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_report  # noqa: E402

from facepipe.composite.blend import collapse, laplacian_pyramid  # noqa: E402
from facepipe.composite.filters import gaussian_blur, gaussian_kernel1d  # noqa: E402


def best_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * min(times)


def rows(size: int, repeats: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, size, size, generator=g)
    out = []
    for sigma in (1.0, 3.0, 8.0):
        k = gaussian_kernel1d(sigma).numel()
        ours = lambda: gaussian_blur(x, sigma)  # noqa: E731
        theirs = lambda: kornia.filters.gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="replicate")  # noqa: E731
        out.append(row(f"gaussian blur sigma {sigma:g}", size, ours, theirs, repeats))
    out.append(row("pyramid level down + up", size, lambda: collapse(laplacian_pyramid(x, 2)),
                   lambda: kornia.geometry.transform.pyrup(kornia.geometry.transform.pyrdown(x)), repeats))  # fmt: skip
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    out.append(row("luma", size, lambda: (x * weights).sum(1, keepdim=True),
                   lambda: kornia.color.rgb_to_grayscale(x), repeats))  # fmt: skip
    return out


def row(name: str, size: int, ours, theirs, repeats: int) -> dict:
    a, b = ours(), theirs()
    diff = float((a - b).abs().max()) if a.shape == b.shape else None
    t_ours, t_theirs = best_ms(ours, repeats), best_ms(theirs, repeats)
    return {"filter": name, "size": size, "facepipe_ms": round(t_ours, 3), "kornia_ms": round(t_theirs, 3),
            "kornia_vs_facepipe": round(t_theirs / t_ours, 2), "max_abs_diff": diff}  # fmt: skip


def markdown(report: dict) -> str:
    lines = [f"# Hand-written filters vs kornia ({report['machine']['cpu']}, 1 torch thread, best of {report['repeats']})",
             "", "| filter | crop | facepipe ms | kornia ms | kornia / facepipe | max abs diff |", "|---|---|---|---|---|---|"]
    for r in report["rows"]:
        diff = "n/a (not the same operation)" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.2g}"
        lines.append(f"| {r['filter']} | {r['size']}² | {r['facepipe_ms']} | {r['kornia_ms']} | {r['kornia_vs_facepipe']} | {diff} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    started = time.time()
    report = {"machine": machine(), "repeats": args.repeats, "rows": [r for s in (256, 512) for r in rows(s, args.repeats)]}
    write_report(report, args.json, markdown, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
