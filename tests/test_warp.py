"""The warp field's two paths (compiled CPU loops, batched tensor ops) give the same field."""

from __future__ import annotations

import pytest
import torch

from facepipe.render import barycentric as bc
from facepipe.render import membrane, warp

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tensor_path(monkeypatch):
    """Make the CPU run the batched tensor ops (the GPU path) instead of the compiled loops."""
    for module in (bc, membrane, warp):
        monkeypatch.setattr(module, "use_kernel", lambda t: False)


@pytest.mark.parametrize("zero_sides", [(True, True, True, True), (False, True, True, False), (False,) * 4])
def test_sor_kernel_matches_tensor_sweeps(monkeypatch, zero_sides):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 23, 30, generator=g)
    fixed = torch.rand(23, 30, generator=g) < 0.2
    kernel = membrane.sor_sweeps(x, fixed, zero_sides, sweeps=7)
    tensor_path(monkeypatch)
    batched = membrane.sor_sweeps(x, fixed, zero_sides, sweeps=7)
    assert torch.allclose(kernel, batched, atol=1e-5)
    assert torch.equal(kernel[:, fixed], x[:, fixed])


def test_warp_field_is_the_same_on_both_paths(monkeypatch):
    from facepipe.face.model import load_model

    rig = load_model()
    tris = torch.tensor(rig.triangles)

    def mesh(au):
        v = torch.tensor(rig.template.copy())
        for name, val in au.items():
            v = v + val * torch.tensor(rig.au_deltas[rig.au_index(name)])
        return torch.stack([256 + 120 * v[:, 0], 240 - 120 * v[:, 1]], 1), -120 * v[:, 2]

    src, _ = mesh({"AU26": 0.3, "AU25": 0.4})
    dst, depth = mesh({"AU26": 0.5, "AU25": 0.6, "AU12R": 1.0, "AU12L": 1.0, "AU6": 1.0})
    kernel = warp.warp_field(src, dst, tris, (512, 512), depth)
    tensor_path(monkeypatch)
    batched = warp.warp_field(src, dst, tris, (512, 512), depth)
    assert kernel.box == batched.box and not kernel.is_identity
    assert float((kernel.flow - batched.flow).abs().max()) < 1e-4
    assert (kernel.edit_scale, kernel.smoothed, kernel.repaired) == (batched.edit_scale, batched.smoothed, batched.repaired)
    assert kernel.fill == pytest.approx(batched.fill, abs=1e-6)


@pytest.mark.parametrize("size", [(23, 30), (2, 30), (23, 2), (3, 3)])
def test_cubic_detail_kernel_matches_tensor_ops(monkeypatch, size):
    g = torch.Generator().manual_seed(1)
    h, w = size
    sampled = torch.rand(3, h, w, generator=g)
    # fractional positions that magnify (steps < 1) in places and shrink in others
    x = torch.arange(w, dtype=torch.float32)[None, :] * (0.6 + torch.rand(h, 1, generator=g)) + torch.rand(h, w, generator=g)
    y = torch.arange(h, dtype=torch.float32)[:, None] * (0.6 + torch.rand(1, w, generator=g)) + torch.rand(h, w, generator=g)
    before = sampled.clone()
    kernel = warp.restore_cubic_detail(sampled, x, y)
    assert torch.equal(sampled, before)  # the input is not changed in place
    tensor_path(monkeypatch)
    assert torch.equal(kernel, warp.restore_cubic_detail(sampled, x, y))
