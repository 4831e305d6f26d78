"""The membrane: harmonic interpolation of a field from the pixels where it is known.

Laplace's equation on a grid, solved for the pixels that are not ``fixed``, with the fixed ones
as they are and, outside the grid, 0 on the flagged sides (left, top, right, bottom) and a zero
normal derivative on the others. :func:`harmonic_fill` solves it by cascadic multigrid (the
coarse solution is the initial guess for a few sweeps at each finer level); :func:`sor_sweeps`
are its red-black successive over-relaxation sweeps (on the CPU a compiled loop,
:func:`facepipe.render.barycentric.use_kernel`; elsewhere tensor ops, with the same result up to
float rounding). The warp (:mod:`facepipe.render.warp`) fills its displacement field with it
where the mesh gives none, so the field decays smoothly to 0 at its box's edge.

Shapes: a field (C,h,w) float32, ``fixed`` (h,w) bool.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
import torch.nn.functional as F

from facepipe.render.barycentric import use_kernel

_OMEGA = 1.6  # SOR over-relaxation of the membrane sweeps


def harmonic_fill(
    value: torch.Tensor, fixed: torch.Tensor, zero_sides, iters: int = 12, warm: bool = False
) -> torch.Tensor:
    """Harmonic fill: value (C,h,w) where ``fixed`` (h,w) bool, Laplace's equation elsewhere, 0 on
    the flagged box sides (others: zero normal derivative). Cascadic multigrid: the coarse solution
    is the initial guess for ``iters`` SOR sweeps at each finer level; ``warm``: ``value`` is
    already a good guess everywhere (only small patches changed), so just sweep."""
    _, h, w = value.shape
    if not bool(fixed.any()):
        return torch.zeros_like(value)
    if warm:
        init, sweeps = value, iters
    elif min(h, w) > 8:
        ph, pw = h % 2, w % 2
        fv = F.pad((value * fixed)[None], (0, pw, 0, ph), mode="replicate")
        ff = F.pad(fixed[None, None].to(value.dtype), (0, pw, 0, ph), mode="replicate")
        fc = F.avg_pool2d(ff, 2)[0, 0]
        vc = F.avg_pool2d(fv, 2)[0] / fc.clamp_min(1e-6)
        coarse = harmonic_fill(vc, fc >= 0.5, zero_sides, iters)
        init = F.interpolate(coarse[None], size=(h + ph, w + pw), mode="bilinear", align_corners=False)[0, :, :h, :w]
        sweeps = iters
    else:
        init = torch.zeros_like(value)
        sweeps = 4 * max(h, w)  # tiny grid (<= 8 across): converge by brute force
    return sor_sweeps(torch.where(fixed, value, init), fixed, zero_sides, sweeps)


def sor_sweeps(x: torch.Tensor, fixed: torch.Tensor, zero_sides, sweeps: int) -> torch.Tensor:
    """``sweeps`` red-black SOR sweeps of Laplace's equation on x (C,h,w) (a new tensor):
    ``fixed`` (h,w) bool pixels keep their value; outside the grid, 0 on the flagged sides
    (left, top, right, bottom), else the edge value (zero normal derivative). Red pixels
    (row + column even) first; within a colour every update reads only the other colour, so
    updating in place (the compiled CPU loop) equals updating all at once (the tensor ops)."""
    x = x.contiguous().clone()
    if use_kernel(x):
        _sor_kernel(x.numpy(), (~fixed).numpy(), *zero_sides, _OMEGA, sweeps)
        return x
    h, w = fixed.shape
    ii = torch.arange(h, device=fixed.device)[:, None] + torch.arange(w, device=fixed.device)[None]
    colours = [(ii % 2 == c) & ~fixed for c in (0, 1)]
    buf = x.new_zeros(x.shape[0], h + 2, w + 2)
    for _ in range(sweeps):
        for m in colours:
            nb = _neighbours(buf, x, zero_sides)
            x = torch.where(m, x + _OMEGA * (nb - x), x)
    return x


def _neighbours(buf: torch.Tensor, x: torch.Tensor, zero_sides) -> torch.Tensor:
    """Mean of the 4 neighbours of every pixel of x (C,h,w), with the boundary of
    :func:`sor_sweeps`; buf: (C,h+2,w+2) scratch."""
    buf[:, 1:-1, 1:-1] = x
    left, top, right, bottom = zero_sides
    buf[:, 1:-1, 0] = 0 if left else x[:, :, 0]
    buf[:, 1:-1, -1] = 0 if right else x[:, :, -1]
    buf[:, 0, 1:-1] = 0 if top else x[:, 0, :]
    buf[:, -1, 1:-1] = 0 if bottom else x[:, -1, :]
    nb = buf[:, :-2, 1:-1] + buf[:, 2:, 1:-1]
    nb += buf[:, 1:-1, :-2]
    nb += buf[:, 1:-1, 2:]
    return nb.mul_(0.25)


@numba.njit(cache=True, nogil=True)
def _sor_kernel(x, free, left, top, right, bottom, omega, sweeps):
    """:func:`sor_sweeps` in place on the CPU: x (C,h,w) float32, free (h,w) bool (not fixed);
    the neighbour sum in the order of :func:`_neighbours` (up + down + left + right)."""
    C, h, w = x.shape
    om, zero, quarter = np.float32(omega), np.float32(0.0), np.float32(0.25)
    for _ in range(sweeps):
        for colour in range(2):
            for c in range(C):
                for i in range(h):
                    for j in range((colour + i) % 2, w, 2):
                        if not free[i, j]:
                            continue
                        v = x[c, i, j]
                        up = x[c, i - 1, j] if i > 0 else (zero if top else v)
                        down = x[c, i + 1, j] if i < h - 1 else (zero if bottom else v)
                        lf = x[c, i, j - 1] if j > 0 else (zero if left else v)
                        rt = x[c, i, j + 1] if j < w - 1 else (zero if right else v)
                        nb = (up + down + lf + rt) * quarter
                        x[c, i, j] = v + om * (nb - v)
