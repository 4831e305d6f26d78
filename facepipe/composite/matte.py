"""Face mattes from the fitted mesh: rasterised coverage, eroded and feathered, temporally stable.

Conventions: vertices are 2D pixel coordinates ``(x, y)`` with pixel centres at integers (pixel
``[i, j]`` is the point ``x = j, y = i``); a pixel is covered when its centre lies inside a
triangle (edges included, so neighbouring triangles leave no cracks). Everything is torch on the
device of ``vertices``; no OpenGL.

The soft matte is 0 on and outside the mesh outline (the face silhouette of the tracker's mesh,
forehead to chin, so no hair or background), 0 up to ``erode`` x face size inside it and rises to
1 over a further ``feather`` x face size (smoothstep), face size = sqrt(area of the vertices'
bounding box) (:func:`facepipe.face.extent.bbox_scale`). It is computed at a reduced resolution
where the feather is a few pixels wide (it is smooth, so nothing is lost) and multiplied by the
full-resolution coverage, which keeps it exactly 0 outside the mesh.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from facepipe.composite.filters import dilate_binary, gaussian_blur, support_box
from facepipe.face.extent import bbox_scale, face_box

_BUDGET = 1 << 22  # candidate pixel tests per rasterisation chunk


def _as_float(v) -> torch.Tensor:
    return torch.as_tensor(v).float()


def rasterize_triangles(vertices: torch.Tensor, triangles: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Binary coverage of a 2D triangle mesh.

    vertices: (N,2) float pixels (x, y); triangles: (F,3) int vertex indices (either winding);
    size: (H, W). Returns (1,H,W) float32, 1 where a pixel centre is inside any triangle.
    """
    H, W = size
    v = _as_float(vertices)
    dev = v.device
    out = torch.zeros(H * W, device=dev)
    tri = torch.as_tensor(triangles, device=dev).long()
    if tri.numel() == 0:
        return out.view(1, H, W)
    p = v[tri]  # (F,3,2)
    lo = p.min(1).values.ceil()
    hi = p.max(1).values.floor()
    lo = torch.maximum(lo, torch.zeros(2, device=dev))
    hi = torch.minimum(hi, torch.tensor([W - 1.0, H - 1.0], device=dev))
    ext = (hi - lo + 1).clamp_min(0)  # (F,2) bbox width, height in pixels
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    area2 = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]
    keep = (ext[:, 0] > 0) & (ext[:, 1] > 0) & (area2.abs() > 1e-9)
    if not bool(keep.any()):
        return out.view(1, H, W)
    p, lo, ext, area2 = p[keep], lo[keep], ext[keep].long(), area2[keep]
    order = (ext[:, 0] * ext[:, 1]).argsort()
    p, lo, ext, sign = p[order], lo[order], ext[order], area2[order].sign()
    ext_cpu = ext.cpu()
    i, n = 0, len(p)
    while i < n:
        # grow the chunk while (triangles x its largest bbox) stays under the budget
        bw, bh = int(ext_cpu[i, 0]), int(ext_cpu[i, 1])
        j = i + 1
        while j < n:
            nbw, nbh = max(bw, int(ext_cpu[j, 0])), max(bh, int(ext_cpu[j, 1]))
            if (j + 1 - i) * nbw * nbh > _BUDGET:
                break
            bw, bh, j = nbw, nbh, j + 1
        pc, loc, sc = p[i:j], lo[i:j], sign[i:j]
        gx = loc[:, 0, None, None] + torch.arange(bw, device=dev).view(1, 1, -1)  # (f,1,bw)
        gy = loc[:, 1, None, None] + torch.arange(bh, device=dev).view(1, -1, 1)  # (f,bh,1)
        inside = torch.ones(len(pc), bh, bw, dtype=torch.bool, device=dev)
        for e in range(3):
            a, b = pc[:, e], pc[:, (e + 1) % 3]
            ax, ay = a[:, 0, None, None], a[:, 1, None, None]
            ex, ey = (b[:, 0] - a[:, 0])[:, None, None], (b[:, 1] - a[:, 1])[:, None, None]
            edge = (ex * (gy - ay) - ey * (gx - ax)) * sc[:, None, None]
            inside &= edge >= 0
        inside &= (gx < W) & (gy < H)
        idx = (gy * W + gx).expand_as(inside)[inside].long()
        out[idx] = 1.0
        i = j
    return out.view(1, H, W)


def polygon_mask(points: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Filled polygon (even-odd rule) at pixel centres.

    points: (P,2) float pixels, an ordered closed loop; size: (H, W). Returns (1,H,W) float32.
    """
    H, W = size
    pts = _as_float(points)
    dev = pts.device
    out = torch.zeros(1, H, W, device=dev)
    if len(pts) < 3:
        return out
    x0 = max(0, math.ceil(float(pts[:, 0].min())))
    x1 = min(W - 1, math.floor(float(pts[:, 0].max())))
    y0 = max(0, math.ceil(float(pts[:, 1].min())))
    y1 = min(H - 1, math.floor(float(pts[:, 1].max())))
    if x1 < x0 or y1 < y0:
        return out
    a, b = pts, pts.roll(-1, 0)
    ay, by = a[:, 1].view(1, -1), b[:, 1].view(1, -1)
    ax, bx = a[:, 0].view(1, -1), b[:, 0].view(1, -1)
    width = x1 - x0 + 1
    # Per row: where each edge crosses it; a pixel is inside when an odd number of crossings lie
    # to its right. Counting them by a histogram of crossing columns and a cumulative sum costs
    # rows x (edges + width), not rows x edges x width.
    ys = torch.arange(y0, y1 + 1, device=dev, dtype=pts.dtype).view(-1, 1)
    straddle = (ay > ys) != (by > ys)  # (R,P)
    t = (ys - ay) / torch.where(by == ay, torch.ones_like(by), by - ay)
    col = torch.ceil(ax + t * (bx - ax)) - x0  # first pixel column at or right of the crossing
    col = col.clamp(0, width).long()
    hist = torch.zeros(len(ys), width + 1, device=dev, dtype=torch.int32)
    hist.scatter_add_(1, col, straddle.int())
    left_or_at = hist.cumsum(1, dtype=torch.int32)[:, :width]  # crossings at or left of each pixel centre
    # the parity of the crossings to the right (a count >= 0: & 1 is % 2, several times faster)
    right = straddle.sum(1, keepdim=True, dtype=torch.int32) - left_or_at
    out[0, y0 : y1 + 1, x0 : x1 + 1] = (right & 1).float()
    return out


def face_matte(
    vertices: torch.Tensor,
    triangles: torch.Tensor,
    size: tuple[int, int],
    erode: float = 0.03,
    feather: float = 0.08,
    work_feather_px: float = 8.0,
    outlines: Sequence[Sequence[int]] | None = None,
) -> torch.Tensor:
    """Soft face matte (1,H,W) float32 in [0,1].

    vertices: (N,2) float pixels; triangles: (F,3) int; size: (H, W). ``erode`` and ``feather``
    are fractions of the face size (:func:`facepipe.face.extent.bbox_scale`): the matte is 0
    within ``erode`` of the mesh outline and reaches 1 at ``erode + feather`` inside it (exact
    for straight outlines, via a Gaussian of the coverage). ``work_feather_px``: the feather
    width in pixels at the reduced resolution the soft part is computed at. Exactly 0 wherever
    the full-resolution coverage is 0.
    outlines: ordered vertex loops whose polygons' union covers the same area as the triangles
    (e.g. :func:`facepipe.face.topology.outer_boundary` of each mesh): the coverage is then
    filled from them, about 10x faster than rasterising every triangle.
    """
    H, W = size
    v = _as_float(vertices)
    out = torch.zeros(1, H, W, device=v.device)
    # work on the vertices' bounding box (plus a pixel): the matte is 0 outside it
    x0, y0, x1, y1 = face_box([v], 1.0, (H, W))
    if x1 <= x0 or y1 <= y0:
        return out
    H, W = y1 - y0, x1 - x0
    v = v - torch.tensor([x0, y0], device=v.device, dtype=v.dtype)
    def coverage(pts: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if outlines is None:
            return rasterize_triangles(pts, triangles, size)
        masks = [polygon_mask(pts[torch.as_tensor(list(loop), device=pts.device).long()], size) for loop in outlines]
        return torch.stack(masks).amax(0)

    cover = coverage(v, (H, W))
    s = bbox_scale(v)
    erode_px, feather_px = max(0.0, erode * s), max(1e-3, feather * s)
    scale = min(1.0, work_feather_px / feather_px)
    if scale < 1.0:
        h, w = max(1, round(H * scale)), max(1, round(W * scale))
        sx, sy = w / W, h / H
        vs = torch.stack([(v[:, 0] + 0.5) * sx - 0.5, (v[:, 1] + 0.5) * sy - 0.5], 1)
        low = coverage(vs, (h, w))
    else:
        sx = sy = 1.0
        low = cover
    k = math.sqrt(sx * sy)
    sigma = 0.5 * (erode_px + feather_px) * k
    blurred = gaussian_blur(low[None], sigma, border="replicate")
    lo_t = _phi(erode_px * k / sigma)
    hi_t = _phi((erode_px + feather_px) * k / sigma)
    x = ((blurred - lo_t) / (hi_t - lo_t)).clamp(0.0, 1.0)
    soft = x * x * (3.0 - 2.0 * x)
    if scale < 1.0:
        soft = F.interpolate(soft, size=(H, W), mode="bilinear", align_corners=False)
    out[:, y0:y1, x0:x1] = (soft[0] * cover).clamp(0.0, 1.0)
    return out


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def region_masks(
    vertices: torch.Tensor,
    regions: Mapping[str, Sequence[int] | Sequence[Sequence[int]]],
    size: tuple[int, int],
    grow_px: int = 0,
    feather_px: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Masks (1,H,W) float32 of regions bounded by vertex loops (mouth interior, eyes...).

    vertices: (N,2) float pixels. ``regions`` maps a name to one ordered loop of vertex indices
    (e.g. the inner lip contour) or to several loops (both eyes), which are united. The mask is
    grown by ``grow_px`` (square dilation) and then feathered by a Gaussian of ``feather_px``.
    """
    v = _as_float(vertices)
    out = {}
    for name, loops in regions.items():
        loops = list(loops)
        if loops and not isinstance(loops[0], (list, tuple)) and getattr(loops[0], "ndim", 0) == 0:
            loops = [loops]  # a single loop of vertex indices
        m = torch.zeros(1, *size, device=v.device)
        for loop in loops:
            idx = torch.as_tensor([int(i) for i in loop], device=v.device)
            m = torch.maximum(m, polygon_mask(v[idx], size))
        m = dilate_binary(m[None], grow_px)
        out[name] = gaussian_blur(m, feather_px, border="zeros")[0].clamp(0.0, 1.0)
    return out


class MatteStabilizer:
    """Mattes averaged over the last ``window`` frames, motion-compensated, streamable.

    ``out_t = [m_t > 0] * sum_k alpha^k shift_k(m_{t-k}) / sum_k alpha^k`` over k = 0 ..
    ``window`` - 1 (the frames seen since the last :meth:`restart`): each earlier matte is moved
    with the face (by the change of ``centers``, bilinear) before averaging, and the result never
    extends beyond the current frame's matte (so it is still exactly 0 outside the face). The
    weights are an exponential moving average's, cut after ``window`` frames: a frame's result
    depends on that many frames only, so a chunk that starts with ``window - 1`` frames of
    context gives the same mattes as one long run.
    """

    def __init__(self, alpha: float = 0.5, window: int = 4):
        if not 0.0 <= alpha < 1.0:
            raise ValueError("alpha must be in [0, 1)")
        if window < 1:
            raise ValueError("window must be at least 1")
        self.alpha = alpha
        self.history: deque[tuple[torch.Tensor, torch.Tensor | None]] = deque(maxlen=window - 1)  # (matte, centre)

    def restart(self) -> None:
        """Forget the earlier mattes (an edit pause, a cut)."""
        self.history.clear()

    def __call__(self, mattes: torch.Tensor, centers: torch.Tensor | None = None) -> torch.Tensor:
        """mattes: (T,1,H,W) float in [0,1]; centers: (T,2) face positions in pixels or None.

        Returns (T,1,H,W) float32.
        """
        out = []
        for t in range(mattes.shape[0]):
            m = mattes[t].float()
            c = None if centers is None else torch.as_tensor(centers[t], device=m.device).float()
            box = support_box(m[None])
            earlier = [(p, pc) for p, pc in self.history if p.shape == m.shape]
            if not earlier or box is None:
                s = m
            else:
                # work on the current matte's support only: the result is 0 everywhere else
                y0, y1, x0, x1 = box
                cur = m[:, y0:y1, x0:x1]
                acc, total, weight = cur.clone(), 1.0, 1.0
                for prev, prev_c in reversed(earlier):
                    weight *= self.alpha
                    moved = prev[:, y0:y1, x0:x1]
                    if c is not None and prev_c is not None and bool(((c - prev_c).abs() > 1e-6).any()):
                        moved = _translate(prev, c - prev_c, box)
                    acc += weight * moved
                    total += weight
                s = torch.zeros_like(m)
                s[:, y0:y1, x0:x1] = acc / total * (cur > 0)
            out.append(s)
            if self.history.maxlen:
                self.history.append((m, c))
        return torch.stack(out)


def _translate(m: torch.Tensor, d: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    """(1,H,W) moved by d = (dx, dy) pixels (bilinear, zeros from outside), over ``box``
    (y0, y1, x0, x1) only: (1,y1-y0,x1-x0). Output pixel (y, x) reads m at (y - dy, x - dx),
    pixel centres on integers: a whole-pixel shift plus one two-tap blend per axis."""
    _, H, W = m.shape
    y0, y1, x0, x1 = box
    dx, dy = float(d[0]), float(d[1])
    ix, iy = math.floor(dx), math.floor(dy)
    fx, fy = dx - ix, dy - iy
    # the source window: rows y0-iy-1 .. y1-iy-1, columns likewise, zeros outside the frame
    ya, xa = y0 - iy - 1, x0 - ix - 1
    h, w = y1 - y0 + 1, x1 - x0 + 1
    src = m.new_zeros(1, h, w)
    sy0, sy1, sx0, sx1 = max(0, ya), min(H, ya + h), max(0, xa), min(W, xa + w)
    if sy1 > sy0 and sx1 > sx0:
        src[:, sy0 - ya : sy1 - ya, sx0 - xa : sx1 - xa] = m[:, sy0:sy1, sx0:sx1]
    rows = fy * src[:, :-1] + (1.0 - fy) * src[:, 1:]  # (1,h-1,w): rows y-iy-1 and y-iy
    return fx * rows[..., :-1] + (1.0 - fx) * rows[..., 1:]
