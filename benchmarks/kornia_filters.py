"""The image filter facepipe keeps hand-written next to kornia's: why the blend's pyramid stays.

    python benchmarks/kornia_filters.py --json benchmarks/results/kornia_filters.json [--repeats 20]

On one thread (as the renderer's workers run torch) and on face-sized crops, times one
Laplacian-pyramid level down and up of ``composite.blend`` (a polyphase 5-tap binomial that
computes only the kept samples, and a normalised expand that is exactly 0 where its input is,
which the blend's "untouched outside the matte" guarantee needs) against
``kornia.geometry.transform.pyrdown`` / ``pyrup`` (a full-resolution blur, then bilinear
upsampling: a different operation, so their outputs are not compared).

The Gaussian blur and the scan stage's luma were hand-written too; kornia replaced them
(``gaussian_blur2d``: the same taps, 2-3x faster on one thread, results equal to 2e-7;
``rgb_to_grayscale``: as fast, equal to 1e-7), see the closing note of issue 17.
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
    ours = lambda: collapse(laplacian_pyramid(x, 2))  # noqa: E731
    theirs = lambda: kornia.geometry.transform.pyrup(kornia.geometry.transform.pyrdown(x))  # noqa: E731
    return [{"filter": "pyramid level down + up", "size": size, "facepipe_ms": round(best_ms(ours, repeats), 3),
             "kornia_ms": round(best_ms(theirs, repeats), 3)}]  # fmt: skip


def markdown(report: dict) -> str:
    lines = [f"# The blend's pyramid vs kornia's ({report['machine']['cpu']}, 1 torch thread, best of {report['repeats']})",
             "", "| filter | crop | facepipe ms | kornia ms | kornia / facepipe |", "|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['filter']} | {r['size']}² | {r['facepipe_ms']} | {r['kornia_ms']} | "
                     f"{r['kornia_ms'] / r['facepipe_ms']:.2f} |")  # fmt: skip
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
