"""The rasteriser's two paths (compiled CPU loop, batched tensor ops) give the same raster."""

from __future__ import annotations

import pytest
import torch

from facepipe.render import barycentric as bc

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def both_paths(monkeypatch, fn):
    """fn() with the compiled CPU loops, then with the batched tensor ops (the GPU path)."""
    kernel = fn()
    monkeypatch.setattr(bc, "use_kernel", lambda t: False)
    return kernel, fn()


def overlapping_mesh(seed: int, n: int = 60, size: float = 40.0):
    """Random triangles over a (size x size) raster, overlapping, of both windings, some
    degenerate or partly outside, with random per-vertex depth: (3n,2), (n,3), (3n,)."""
    g = torch.Generator().manual_seed(seed)
    verts = torch.rand(3 * n, 2, generator=g) * (size + 10.0) - 5.0
    verts[:6] = verts[:6].round()  # corners on pixel centres: pixels exactly on an edge
    verts[7] = verts[6]  # a degenerate triangle
    return verts, torch.arange(3 * n).reshape(n, 3), torch.rand(3 * n, generator=g)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("with_depth", [True, False])
def test_kernel_and_batched_rasters_agree(monkeypatch, seed, with_depth):
    verts, tris, depth = overlapping_mesh(seed)
    depth = depth if with_depth else None
    attr = torch.randn(len(verts), 3)

    def run():
        r = bc.rasterize_barycentric(verts, tris, (40, 36), depth)
        return r, bc.interpolate(attr, tris, r)

    (rk, ik), (rb, ib) = both_paths(monkeypatch, run)
    assert bool(rk.mask.any())
    assert torch.equal(rk.tri, rb.tri)
    assert torch.allclose(rk.bary, rb.bary, atol=1e-6)
    assert torch.equal(rk.depth.isinf(), rb.depth.isinf())
    assert torch.allclose(rk.depth[rk.mask], rb.depth[rb.mask], atol=1e-6)
    assert torch.allclose(ik, ib, atol=1e-5)
    assert bool((ik[:, ~rk.mask] == 0).all())


def test_empty_inputs_on_the_kernel_path():
    verts = torch.tensor([[1.0, 1.0], [5.0, 1.0], [1.0, 5.0]])
    none = bc.rasterize_barycentric(verts, torch.zeros(0, 3, dtype=torch.long), (8, 8))
    off = bc.rasterize_barycentric(verts + 100.0, torch.tensor([[0, 1, 2]]), (8, 8))
    for r in (none, off):
        assert not bool(r.mask.any()) and bool(r.depth.isinf().all())
        assert not bool(bc.interpolate(verts, torch.tensor([[0, 1, 2]]), r).any())
