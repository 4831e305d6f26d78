"""The smooth stage: the edit averaged along the face's motion where the source holds still."""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import torch

from facepipe.stages.composite import EditedChunk
from facepipe.stages.smooth import EditSmoother, MeshFlow, SmoothStage

H = W = 48
BOX = (8, 40, 8, 40)  # y0, y1, x0, x1: the matte's crop


def grid_mesh(shift=(0.0, 0.0), n=5):
    """(n*n, 2) vertices over the crop (moved by ``shift``) and the triangles of the grid."""
    ys, xs = np.meshgrid(np.linspace(10, 37, n), np.linspace(10, 37, n), indexing="ij")
    v = np.stack([xs.ravel() + shift[0], ys.ravel() + shift[1]], -1).astype(np.float32)
    tris = []
    for i in range(n - 1):
        for j in range(n - 1):
            a = i * n + j
            tris += [(a, a + 1, a + n), (a + 1, a + n + 1, a + n)]
    return v, np.array(tris, np.int64)


def make_chunk(plates, edits, first=0):
    T = len(plates)
    y0, y1, x0, x1 = BOX
    matte = torch.zeros(1, y1 - y0, x1 - x0)
    matte[:, 2:-2, 2:-2] = 1.0
    mattes = [(BOX, matte.clone()) for _ in range(T)]
    idx = np.arange(first, first + T)
    return EditedChunk(idx, idx, edits.clone(), plate=plates.clone(), mattes=mattes, held=np.zeros(T, bool))


def run_now(fn, *args) -> Future:
    done = Future()
    done.set_result(fn(*args))
    return done


def smoother(landmarks, tris, strength=1.0, window=2):
    return EditSmoother(landmarks, np.arange(len(landmarks)), tris, 1.0, strength, window, tolerance=0.02,
                        edit_tolerance=1.0, detail_px=0.0, work_px=32.0, submit=run_now)  # fmt: skip


def still_shot(T=12, seed=0):
    """A still plate and an edit whose delta wobbles frame to frame (render noise)."""
    g = torch.Generator().manual_seed(seed)
    plate = torch.rand(3, H, W, generator=g).expand(T, 3, H, W).clone()
    delta = torch.zeros(T, 3, H, W)
    delta[:, :, 12:36, 12:36] = 0.1 + 0.03 * torch.randn(T, 3, 1, 1, generator=g)
    return plate, (plate + delta).clamp(0, 1)


def test_render_noise_on_a_still_face_is_averaged_and_nothing_outside_the_matte_moves():
    plate, edit = still_shot()
    mesh, tris = grid_mesh()
    lms = np.repeat(mesh[None], len(plate), 0)
    out = smoother(lms, tris)(make_chunk(plate, edit)).frames
    inner = (slice(None), slice(None), slice(14, 34), slice(14, 34))
    before = (edit[1:] - edit[:-1])[inner].abs().mean()
    after = (out[1:] - out[:-1])[inner].abs().mean()
    assert after < 0.6 * before, (float(before), float(after))
    outside = torch.ones(H, W, dtype=torch.bool)
    outside[10:38, 10:38] = False  # the matte's support
    assert torch.equal(out[..., outside], edit[..., outside])


def test_where_the_source_changes_the_current_edit_stands():
    plate, edit = still_shot()
    plate[6:, :, 12:36, 12:36] = (plate[6:, :, 12:36, 12:36] + 0.5) % 1.0  # the source changes at frame 6
    edit = plate + (edit - still_shot()[0])
    mesh, tris = grid_mesh()
    out = smoother(np.repeat(mesh[None], len(plate), 0), tris)(make_chunk(plate, edit.clamp(0, 1))).frames
    assert torch.allclose(out[6, :, 14:34, 14:34], edit.clamp(0, 1)[6, :, 14:34, 14:34], atol=1e-5)


def test_the_previous_edit_is_carried_along_the_face_motion():
    """The face moves 3 px right per frame and its edit moves with it: the aligned previous
    frames agree with the current one, so the smoothed edit is the edit."""
    T = 6
    g = torch.Generator().manual_seed(1)
    texture = torch.rand(3, H, W + 3 * T, generator=g)
    plate = torch.stack([texture[:, :, 3 * T - 3 * t : 3 * T - 3 * t + W] for t in range(T)])
    delta = torch.zeros_like(plate)
    for t in range(T):
        delta[t, :, 14:34, 12 + 3 * t : 20 + 3 * t] = 0.2
    edit = (plate + delta).clamp(0, 1)
    lms = np.stack([grid_mesh((3.0 * t, 0.0))[0] for t in range(T)])
    out = smoother(lms, grid_mesh()[1])(make_chunk(plate, edit)).frames
    for t in range(1, 4):
        assert torch.allclose(out[t, :, 16:32, 14 + 3 * t : 18 + 3 * t], edit[t, :, 16:32, 14 + 3 * t : 18 + 3 * t], atol=0.02)


def test_a_chunk_with_window_frames_of_context_gives_the_same_frames():
    plate, edit = still_shot(T=10, seed=3)
    mesh, tris = grid_mesh()
    lms = np.repeat(mesh[None], len(plate), 0)
    whole = smoother(lms, tris)(make_chunk(plate, edit)).frames
    part = smoother(lms, tris)(make_chunk(plate[4:], edit[4:], first=4)).frames  # frames 4, 5 are context
    assert torch.equal(part[2:], whole[6:])


def test_mesh_flow_is_the_vertex_displacement():
    mesh, tris = grid_mesh()
    moved = mesh + np.float32([2.0, -1.0])
    flow = MeshFlow(torch.from_numpy(mesh), torch.from_numpy(tris), (8, 8, 40, 40), (16, 16))
    inner = flow.cover[0] > 0.99
    flow = flow.to(torch.from_numpy(moved))
    assert inner.float().mean() > 0.5
    assert torch.allclose(flow[0][inner], torch.tensor(2.0), atol=1e-4) and torch.allclose(flow[1][inner], torch.tensor(-1.0), atol=1e-4)


def test_strength_zero_is_off():
    from facepipe.stages.deblur import unchanged

    assert SmoothStage(strength=0.0).open(None, {}, 1.0) is unchanged


def test_the_lips_keep_the_current_frame_s_edit():
    """Inside the ``keep`` loop (the lips on the FaceMesh) nothing is averaged."""
    mesh, tris = grid_mesh()
    loop = (6, 7, 8, 13, 18, 17, 16, 11)  # the ring around the centre vertex of the 5x5 grid
    flow = MeshFlow(torch.from_numpy(mesh), torch.from_numpy(tris), (8, 8, 40, 40), (32, 32), keep=loop)
    centre = mesh[12] - 8  # the grid's centre vertex, in box pixels
    assert float(flow.cover[0, int(centre[1]), int(centre[0])]) == 0.0
    assert float(flow.cover[0, 4, 4]) > 0.9  # a corner of the mesh is smoothed
