"""Rigid occluders held out of the warp: glasses rims stay where the source shows them.

The warp (:mod:`facepipe.render.warp`) moves every pixel between the brows and the eyes with
the edited skin, glasses rims included: sad's inner-brow raise bent the top rim into a kink,
surprise pushed the rims up (issue 18; lp_d9, lp_d19, looked at). Glasses are rigid and move
with the head, not with the expression, and the source and edited meshes share the head pose,
so a rim pixel's right place in the edit is exactly its place in the source.

1. the rims are found in a source frame (:func:`rim_alpha`): thin, bright or dark line
   structure (a multi-scale Hessian ridge filter, :func:`ridge_strength`) inside a zone built
   from the source mesh (an ellipse around each eye out to the temples, the nose bridge between
   them: :func:`rim_zone`), outside the eye openings with their lid creases and outside the
   brows (thick, textured hair); a soft alpha (about a pixel of feather) covers the rim's
   anti-aliased edge. The render stage does this on a few frames of a shot only and keeps one
   template of the rims in mesh coordinates (:mod:`facepipe.render.rim_template`);
2. per frame, the warp's copy of the rim, which it moved with the skin, is painted over with the
   skin around it (:func:`paint_over_rims`: the source with its rims filled from their
   surroundings, warped by the same field);
3. the source's rim pixels are laid, unwarped, where the warp changed the frame
   (:func:`hold_rims`).

The appearance transfer (:mod:`facepipe.stages.appearance`) lays skin from other frames of the
actor, through the mesh, between steps 2 and 3: its donor frames' own rims are erased first
(:func:`erase_rims`), or they showed as a second rim where the donor's rim fell on the edited
frame's mesh (lp_d9 happy: a ghost rim ~8 px inside the lens by the temple).

Whether a shot wears glasses at all is decided from the nose bridge, where bare skin shows no
long line across it and glasses show their bridge (:func:`bridge_evidence`): per shot from a
few frames (:func:`shot_has_rims`, so the decision does not flicker and a farm chunk decides
as the whole shot does); of those, the frames at a lower bar (:data:`FRAME_BRIDGE`) make the
template. Faces without glasses are left bit for bit as the warp drew them.
"""

from __future__ import annotations

import math

import kornia
import torch

from facepipe.composite.filters import gaussian_blur, luma
from facepipe.composite.matte import polygon_mask
from facepipe.face import topology as topo
from facepipe.face.extent import Box
from facepipe.render.warp import EYE_L, EYE_R, WarpField, apply_warp, distance_to_loop

#: The brows' lower rows (their upper rows are :data:`topology.BROW_UPPER_R` / ``_L``), outer to inner.
BROW_LOWER_R = (46, 53, 52, 65, 55)
BROW_LOWER_L = (276, 283, 282, 295, 285)
#: Semi-axes of the zone around an eye (along and across the corner axis), in eye widths (corner
#: to corner): glasses' lenses reach about 0.9 eye widths from the eye's centre towards the
#: temple and 0.7 up and down (lp_d9, lp_d19).
ZONE_AXES = (1.35, 1.3)
#: Band of the nose bridge across, in eye widths above (negative) and below the inner corners.
BRIDGE_BAND = (-0.45, 0.25)
#: Eye openings are left out with this much around them, in eye widths: the lid margin, the
#: lashes and the upper lid's crease are long thin lines too, and they move with the edit.
EYE_CLEARANCE = 0.2
#: Ridge filter scales in eye widths (at least :data:`MIN_SIGMA` px): a rim is 1.5-3 mm wide, an
#: eye about 30 mm.
RIDGE_SIGMAS = (0.015, 0.025)
MIN_SIGMA = 0.6
#: Scale-normalised ridge strength (luma 0..1) above which a pixel is a line across the nose
#: bridge (bare skin's strongest lines there, frown lines, are below it: they cross 0.00-0.05 of
#: its columns on hdtf_aoc, vr_face4, lp_d3 (no glasses on in it); glasses 0.37-1.0 on lp_d9,
#: lp_d19).
BRIDGE_THRESHOLD = 0.04
#: A lens' rim is traced this far from its eye's centre (eye widths), at this many angles.
RIM_RADII = (0.3, 1.35)
RIM_ANGLES = 240
#: Rim pixels lie within this many eye widths (at least a pixel) of the traced loop, and are at
#: least this share of the loop's median strength.
RIM_HALF_WIDTH = 0.04
RIM_SUPPORT = 0.35
#: The strength a traced rim gains per angle is capped at this quantile of the zone's.
RIM_SATURATION = 0.85
#: Least area of a connected line, px per eye width (1.5: a line 2 px across, 0.75 eye widths
#: long): a rim runs a few eye widths around its lens; pores, skin texture and the lenses'
#: reflections of it are short.
MIN_LINE_AREA = 1.5
#: Share of the nose bridge's columns a line crosses: a shot has glasses where at least
#: :data:`SHOT_SHARE` of its sampled frames reach :data:`SHOT_BRIDGE`; a sampled frame of such a
#: shot shows them where it reaches :data:`FRAME_BRIDGE` (lp_d19's frames reach 0.37-0.72, bare
#: skin at most 0.05).
SHOT_BRIDGE = 0.35
FRAME_BRIDGE = 0.15
SHOT_SHARE = 0.25
#: How far the rim mask grows (px: its anti-aliased edge, held in full), and the feather beyond
#: that (Gaussian sigma, px).
FEATHER_PX = 0.7
GROW_PX = 1
#: Radius (Gaussian sigma, px) of the skin a warped rim is painted over with.
FILL_SIGMA = 2.5


class EyeAxes:
    """The eyes of a FaceMesh-topology mesh src (468,2) in frame pixels: width (px, the mean of
    both eyes' corner distances), centres (2,2), u (2,) the unit axis from the right eye's
    centre to the left's, v (2,) its normal pointing down the face."""

    def __init__(self, src: torch.Tensor):
        corners = [src[list(eye.anchor)] for eye in (EYE_R, EYE_L)]
        self.width = float(sum((c[0] - c[1]).norm() for c in corners)) / 2
        self.centres = torch.stack([c.mean(0) for c in corners])
        u = self.centres[1] - self.centres[0]
        self.u = u / u.norm().clamp_min(1e-6)
        self.v = torch.stack([-self.u[1], self.u[0]])
        self.inner = src[[topo.EYE_INNER_R, topo.EYE_INNER_L]]


def _pixel_grid(box: Box, device) -> torch.Tensor:
    """(h,w,2) the pixel centres (x, y) of box."""
    x0, y0, x1, y1 = box
    ys, xs = torch.meshgrid(torch.arange(y0, y1, dtype=torch.float32, device=device),
                            torch.arange(x0, x1, dtype=torch.float32, device=device), indexing="ij")  # fmt: skip
    return torch.stack([xs, ys], -1)


def bridge_zone(axes: EyeAxes, pts: torch.Tensor) -> torch.Tensor:
    """(...,) bool: points (...,2) on the nose bridge: between the inner eye corners along the
    eyes' axis, within :data:`BRIDGE_BAND` of them across it."""
    a, b = (axes.inner @ axes.u).tolist()
    across = ((pts - axes.inner.mean(0)) @ axes.v) / axes.width
    along = pts @ axes.u
    return (along > min(a, b)) & (along < max(a, b)) & (across > BRIDGE_BAND[0]) & (across < BRIDGE_BAND[1])


def rim_zone(src: torch.Tensor, box: Box) -> torch.Tensor:
    """(h,w) bool over ``box``: where glasses rims are looked for, from the source mesh src
    (468,2): an ellipse (:data:`ZONE_AXES`) around each eye and the nose bridge, less the eye
    openings with :data:`EYE_CLEARANCE` around them and the brows."""
    axes = EyeAxes(src)
    pts = _pixel_grid(box, src.device)
    zone = bridge_zone(axes, pts)
    for c in axes.centres:
        rel = pts - c
        zone |= ((rel @ axes.u) / (ZONE_AXES[0] * axes.width)) ** 2 + ((rel @ axes.v) / (ZONE_AXES[1] * axes.width)) ** 2 < 1
    x0, y0, x1, y1 = box
    flat = pts.reshape(-1, 2)
    for eye in (EYE_R, EYE_L):
        loop = src[list(eye.loop)]
        near = (loop.amin(0) - EYE_CLEARANCE * axes.width <= flat).all(1) & (flat <= loop.amax(0) + EYE_CLEARANCE * axes.width).all(1)
        clear = torch.ones(len(flat), dtype=torch.bool, device=src.device)
        clear[near] = distance_to_loop(flat[near], loop) > EYE_CLEARANCE * axes.width
        inside = polygon_mask(loop - loop.new_tensor([x0, y0]), (y1 - y0, x1 - x0))[0] > 0
        zone &= clear.reshape(zone.shape) & ~inside
    for upper, lower in ((topo.BROW_UPPER_R, BROW_LOWER_R), (topo.BROW_UPPER_L, BROW_LOWER_L)):
        brow = src[list(upper) + list(lower)[::-1]] - src.new_tensor([x0, y0])
        zone &= polygon_mask(brow, (y1 - y0, x1 - x0))[0] == 0
    return zone


def ridge_strength(luma: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    """(H,W) the strongest scale-normalised line response of luma (1,1,H,W) over ``sigmas`` (px):
    per scale, sigma^2 (|l1| - |l2|) of the Hessian's eigenvalues (|l1| >= |l2|): large across a
    thin bright or dark line, small on flat skin, on blobs (both large) and at a step's centre."""
    best = torch.zeros_like(luma[0, 0])
    for s in sigmas:
        d = kornia.filters.spatial_gradient(gaussian_blur(luma, s, "reflect"), mode="diff", order=2)[0, 0]  # (3,H,W) xx, xy, yy
        dxx, dxy, dyy = d[0], d[1], d[2]
        half = torch.sqrt(((dxx - dyy) / 2) ** 2 + dxy**2)
        mid = (dxx + dyy) / 2
        l1, l2 = mid + half, mid - half
        best = torch.maximum(best, s * s * ((l1.abs() - l2.abs()).abs()))
    return best


def _sigmas(width: float) -> list[float]:
    return [max(MIN_SIGMA, f * width) for f in RIDGE_SIGMAS]


def zone_box(src: torch.Tensor, size: tuple[int, int] | None = None) -> Box:
    """The pixel box (x0, y0, x1, y1) of the eyes' zones of the mesh src (468,2), within a frame
    of ``size`` (H, W) (None: unclipped)."""
    axes = EyeAxes(src)
    reach = ZONE_AXES[0] * axes.width + 2
    lo, hi = axes.centres.amin(0) - reach, axes.centres.amax(0) + reach
    box = math.floor(lo[0]), math.floor(lo[1]), math.ceil(hi[0]) + 1, math.ceil(hi[1]) + 1
    if size is None:
        return box
    H, W = size
    return max(0, box[0]), max(0, box[1]), min(W, box[2]), min(H, box[3])


def bridge_evidence(frame: torch.Tensor, src: torch.Tensor) -> float:
    """The share (0..1) of the nose bridge's columns (along the eyes' axis, its middle 60%) that
    a line crosses in frame (3,H,W) under the source mesh src (468,2): about 1 where glasses
    bridge the nose, near 0 on bare skin (its frown lines run along the nose, across few columns)."""
    axes = EyeAxes(src)
    box = zone_box(src, tuple(frame.shape[-2:]))
    x0, y0, x1, y1 = box
    pts = _pixel_grid(box, src.device)
    line = ridge_strength(luma(frame[:, y0:y1, x0:x1])[None, None], _sigmas(axes.width)) > BRIDGE_THRESHOLD
    a, b = sorted((axes.inner @ axes.u).tolist())
    lo, hi = a + 0.2 * (b - a), b - 0.2 * (b - a)
    cols = torch.arange(math.floor(lo), math.ceil(hi), device=src.device, dtype=torch.float32)
    if len(cols) == 0:
        return 0.0
    on = line & bridge_zone(axes, pts)
    along = pts[on] @ axes.u
    hit = (along[None] - cols[:, None]).abs().lt(0.5).any(1)
    return float(hit.float().mean())


def shot_has_rims(evidence: list[float]) -> bool:
    """Whether a shot wears glasses, from :func:`bridge_evidence` of some of its frames."""
    return len(evidence) > 0 and sum(e >= SHOT_BRIDGE for e in evidence) >= SHOT_SHARE * len(evidence)


def _ramp(x: torch.Tensor, bar: torch.Tensor) -> torch.Tensor:
    """x (...,) above ``bar``, softly: 0 at half of it, 1 at one and a half times it."""
    return (x / bar.clamp_min(1e-6) - 0.5).clamp(0, 1)


def trace_rim(strength: torch.Tensor, allowed: torch.Tensor, axes: EyeAxes, eye: int, box: Box) -> torch.Tensor:
    """(h,w) 0..1 over ``box``: the rim of the lens around eye ``eye`` (0 right, 1 left).

    strength: (h,w) :func:`ridge_strength`; allowed: (h,w) bool where a rim may run
    (:func:`rim_zone`). A rim is a smooth closed loop around the eye, so it is traced as one: the
    strength is sampled in polar coordinates about the eye's centre (:data:`RIM_RADII` eye widths,
    :data:`RIM_ANGLES` angles, a pixel a step) and the loop of greatest total strength whose radius
    changes by at most a step from one angle to the next is found by dynamic programming (1.5
    turns, the last full one kept: the loop closes). Kept are the pixels within
    :data:`RIM_HALF_WIDTH` of it, at angles where it runs on a line (:data:`RIM_SUPPORT` of its
    median strength), that are lines themselves, each test a ramp (:func:`_ramp`); pixel-wise
    thresholds alone let lid creases, under-eye folds and the lenses' reflections in, and missed
    thin rims (lp_d19)."""
    dev = strength.device
    x0, y0, x1, y1 = box
    r_lo, r_hi = (f * axes.width for f in RIM_RADII)
    radii = torch.arange(r_lo, r_hi, 1.0, device=dev)
    theta = torch.arange(RIM_ANGLES, device=dev) * (2 * math.pi / RIM_ANGLES)
    direction = torch.cos(theta)[:, None] * axes.u + torch.sin(theta)[:, None] * axes.v  # (K,2)
    pts = axes.centres[eye] + radii[None, :, None] * direction[:, None]  # (K,J,2) frame px
    # saturated: a rim is the loop that runs on a line at most angles, not the one through the
    # strongest few (lid creases, lashes and under-eye folds are stronger than a thin wire rim)
    norm = (strength / strength[allowed].quantile(RIM_SATURATION).clamp_min(1e-6)).clamp(max=1) * allowed
    value = norm[None, None]
    h, w = strength.shape
    grid = torch.stack([(pts[..., 0] - x0) * (2.0 / max(1, w - 1)) - 1, (pts[..., 1] - y0) * (2.0 / max(1, h - 1)) - 1], -1)
    polar = torch.nn.functional.grid_sample(value, grid[None], align_corners=True)[0, 0]  # (K,J), 0 outside
    turns = torch.cat([polar, polar[: RIM_ANGLES // 2]])
    score, step = turns[0].clone(), []
    for row in turns[1:]:
        pad = torch.nn.functional.pad(score[None, None], (1, 1), value=-1.0)[0, 0]
        best, arg = torch.stack([pad[:-2], pad[1:-1], pad[2:]]).max(0)
        step.append(arg - 1)
        score = best + row
    j = int(score.argmax())
    path = [j]
    for back in reversed(step):
        j = j + int(back[j])
        path.append(j)
    path = torch.tensor(path[::-1], device=dev)[-RIM_ANGLES:]  # the last full turn, angles rolled
    k = (torch.arange(len(turns), device=dev) % RIM_ANGLES)[-RIM_ANGLES:]
    ring = torch.empty(RIM_ANGLES, device=dev, dtype=torch.long)
    ring[k] = path
    on = polar[torch.arange(RIM_ANGLES, device=dev), ring]
    bar = RIM_SUPPORT * on.median()
    rel = _pixel_grid(box, dev) - axes.centres[eye]
    ang = torch.atan2(rel @ axes.v, rel @ axes.u) % (2 * math.pi)
    ki = (ang / (2 * math.pi / RIM_ANGLES)).round().long() % RIM_ANGLES
    # every test a ramp, not a step: a pixel near a bar goes in and out gradually from frame to
    # frame (with steps, an eighth of the rim toggled between held and warped per frame: flicker)
    near = (max(1.0, RIM_HALF_WIDTH * axes.width) + 0.5 - (rel.norm(dim=-1) - radii[ring[ki]]).abs()).clamp(0, 1)
    return near * _ramp(on[ki], bar) * _ramp(norm, bar)


def long_lines(line: torch.Tensor, width: float) -> torch.Tensor:
    """(h,w) bool: the pixels of line (h,w) bool whose connected line (8-neighbours, followed
    for at most ``2 width`` steps) covers at least :data:`MIN_LINE_AREA` px per eye width."""
    if not bool(line.any()):
        return line
    labels = kornia.contrib.connected_components(line[None, None].float(), num_iterations=max(1, int(2 * width)))
    _, inverse, counts = labels[0, 0].long()[line].unique(return_inverse=True, return_counts=True)
    out = torch.zeros_like(line)
    out[line] = counts[inverse] >= MIN_LINE_AREA * width
    return out


def rim_alpha(frame: torch.Tensor, src: torch.Tensor, box: Box) -> torch.Tensor:
    """(1,h,w) 0..1 the glasses rims of frame (3,H,W) over ``box``, from the source mesh src
    (468,2): each lens' rim (:func:`trace_rim`) and the long lines across the nose bridge
    (:func:`long_lines`), grown by :data:`GROW_PX` and feathered by :data:`FEATHER_PX` (the rim's
    anti-aliased edge)."""
    axes = EyeAxes(src)
    x0, y0, x1, y1 = box
    strength = ridge_strength(luma(frame[:, y0:y1, x0:x1])[None, None], _sigmas(axes.width))
    allowed = rim_zone(src, box)
    rims = long_lines((strength > BRIDGE_THRESHOLD) & allowed & bridge_zone(axes, _pixel_grid(box, src.device)), axes.width)
    rims = torch.maximum(rims.float(), torch.maximum(*(trace_rim(strength, allowed, axes, eye, box) for eye in (0, 1))))
    m = torch.nn.functional.max_pool2d(rims[None, None], 2 * GROW_PX + 1, stride=1, padding=GROW_PX)
    return torch.maximum(m, gaussian_blur(m, FEATHER_PX))[0].clamp(0, 1)  # the feather falls off outside


def fill_rims(image: torch.Tensor, rims: torch.Tensor) -> torch.Tensor:
    """(C,h,w) float: image (C,h,w) with its rims rims (1,h,w) 0..1 filled from the skin around
    them (normalised convolution, :data:`FILL_SIGMA`)."""
    image = image.float()
    fill = gaussian_blur((image * (1 - rims))[None], FILL_SIGMA)[0] / gaussian_blur((1 - rims)[None], FILL_SIGMA)[0].clamp_min(1e-6)
    return torch.lerp(image, fill, rims)


def erase_rims(frames: list[torch.Tensor], srcs: list[torch.Tensor]) -> list[torch.Tensor]:
    """frames (each (3,h,w) 0..1) of one shot under their source meshes srcs (each (468,2) px in
    the frame's coordinates), each with its glasses rims (:func:`rim_alpha`, found in that frame)
    filled from the skin around them where the shot wears glasses (:func:`shot_has_rims` of these
    frames); the frames themselves where it does not.

    For frames whose appearance is carried onto other frames through the mesh (the appearance
    transfer's donors): a donor's rims sit elsewhere on the mesh than the edited frame's (the rims
    stand off the face, so they shift over it as the head turns: 5-10 px at the temple on lp_d9),
    and came out as a second, ghost rim inside the lens. Each frame is searched itself, not
    through the shot's template, for that reason."""
    if not shot_has_rims([bridge_evidence(f, s) for f, s in zip(frames, srcs)]):
        return frames
    out = []
    for frame, src in zip(frames, srcs):
        x0, y0, x1, y1 = box = zone_box(src, tuple(frame.shape[-2:]))
        erased = frame.clone()
        erased[:, y0:y1, x0:x1] = fill_rims(frame[:, y0:y1, x0:x1], rim_alpha(frame, src, box)).to(frame.dtype)
        out.append(erased)
    return out


def paint_over_rims(face: torch.Tensor, frame: torch.Tensor, rims: torch.Tensor, field: WarpField) -> torch.Tensor | None:
    """Paint the warp's copy of the glasses rims rims (1,h,w) 0..1 over the warp ``field``'s box
    (the shot's rims in this frame: :meth:`facepipe.render.rim_template.RimTemplate.render`) of the
    source frame (3,H,W) over in the warped ``face`` (3,H,W), in place, where the warp changed the
    frame (nothing outside its box, nor where its flow is 0, is touched). Returns the rims to hold
    there (:func:`hold_rims`): (1,h,w) rims where the warp moved the frame, or None where it moved
    no rim pixel (face untouched)."""
    if field.is_identity:
        return None
    x0, y0, x1, y1 = field.box
    moved = (field.flow != 0).any(0, keepdim=True)  # (1,h,w)
    alpha = rims * moved
    if not bool(alpha.any()):
        return None
    H, W = frame.shape[-2:]
    reach = math.ceil(float(field.flow.abs().max())) + 2
    ys, xs = rims[0].nonzero(as_tuple=True)
    # the output pixels the warp can carry a rim pixel to (the rims' bounding box and the flow's
    # reach), and the source pixels apply_warp reads for them: all that is worked on
    sx0, sy0 = max(x0, x0 + int(xs.min()) - reach), max(y0, y0 + int(ys.min()) - reach)
    sx1, sy1 = min(x1, x0 + int(xs.max()) + 1 + reach), min(y1, y0 + int(ys.max()) + 1 + reach)
    cx0, cy0, cx1, cy1 = max(0, sx0 - reach), max(0, sy0 - reach), min(W, sx1 + reach), min(H, sy1 + reach)
    a = torch.zeros(1, cy1 - cy0, cx1 - cx0, device=frame.device)
    ix0, iy0, ix1, iy1 = max(x0, cx0), max(y0, cy0), min(x1, cx1), min(y1, cy1)
    a[:, iy0 - cy0 : iy1 - cy0, ix0 - cx0 : ix1 - cx0] = rims[:, iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
    # the source with its rims filled, warped by the same field: it paints over the copy of the
    # rim the warp carried along with the skin
    sub = WarpField((sx0 - cx0, sy0 - cy0, sx1 - cx0, sy1 - cy0), field.flow[:, sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0])
    filled = fill_rims(frame[:, cy0:cy1, cx0:cx1], a)
    warped = apply_warp(torch.cat([filled, a])[None], sub)[0, :, sy0 - cy0 : sy1 - cy0, sx0 - cx0 : sx1 - cx0]
    patch = face[:, sy0:sy1, sx0:sx1]
    out = torch.lerp(patch.float(), warped[:3], warped[3:].clamp(0, 1))
    patch.copy_(torch.where(moved[:, sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0], out.to(face.dtype), patch))
    return alpha


def hold_rims(face: torch.Tensor, frame: torch.Tensor, held: torch.Tensor, box: Box) -> None:
    """Lay the source frame (3,H,W)'s rim pixels, unwarped, over ``face`` (3,H,W) in place, where
    held (1,h,w) 0..1 over ``box`` (:func:`paint_over_rims`' answer) is above 0 (nothing else is
    touched). Last of the layers the render stage lays: the rims are in front of all of them."""
    x0, y0, x1, y1 = box
    patch = face[:, y0:y1, x0:x1]
    out = torch.lerp(patch.float(), frame[:, y0:y1, x0:x1].float(), held)
    patch.copy_(torch.where(held > 0, out.to(face.dtype), patch))
