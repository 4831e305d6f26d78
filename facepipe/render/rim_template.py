"""A shot's glasses rims as one template in the face mesh's own coordinates.

Found frame by frame (:func:`facepipe.render.occluders.rim_alpha`), the rim mask moved a pixel
or so between frames (frame-to-frame overlap 82% on lp_d19, worst 49%), and the hold-out
flickered where it moved (the glasses' zone, edit / source: lp_d19 surprised 1.51 -> 1.78);
the detection also doubled the render time. Rims are rigid with the head and the tracked mesh
follows the head, so the rims are found once per shot, on a few frames:

1. each frame's rim alpha is carried into a canonical layout of the mesh (the actor's neutral
   shape seen from the front, :func:`canonical_layout`) through that frame's source mesh,
   triangle by triangle (barycentric coordinates, :mod:`facepipe.render.barycentric`);
2. the frames' layouts are combined by their median (a rim must show in half the frames that
   see the pixel): a frame's missed stretch of rim or a passing crease does not count;
3. the brows, with :data:`BROW_MARGIN` around them, are cut out of it: the rims' grown edge
   had reached into the brows' lower rows and held 10-22% of their change back.

Each frame then renders the template back through its own source mesh (:meth:`RimTemplate.render`):
a rasterisation of the mesh over the eyes' zone and one bilinear lookup, no ridge filter. Rims
beyond the mesh (the temples' ends of the rims past the face's outline) are left out: there
the warp moves little.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from facepipe.composite.matte import polygon_mask
from facepipe.face import topology as topo
from facepipe.face.extent import Box
from facepipe.render.barycentric import interpolate, rasterize_barycentric
from facepipe.render.occluders import BROW_LOWER_L, BROW_LOWER_R, EyeAxes, rim_alpha, zone_box

#: Least share of the frames that see a layout pixel for it to count (fewer: left out).
MIN_VIEWS = 0.5
#: Brows are cut out of the template with this margin (px of the layout, about frame pixels):
#: the rim alpha's grown and feathered edge (occluders.GROW_PX, FEATHER_PX).
BROW_MARGIN = 2


def canonical_layout(shape: torch.Tensor, eye_px: float) -> torch.Tensor:
    """(N,2) the FaceMesh-topology vertices of ``shape`` (N,3) model space (y up) seen from the
    front, scaled so the eyes are ``eye_px`` wide (corner to corner), in the pixels of the
    layout's grid (:func:`occluders.zone_box` of it starts at (0, 0))."""
    xy = torch.stack([shape[:, 0], -shape[:, 1]], -1).float()
    xy = xy * (eye_px / EyeAxes(xy).width)
    x0, y0, _, _ = zone_box(xy)
    return xy - xy.new_tensor([x0, y0])


def _sample(image: torch.Tensor, pts: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """(C,h,w) image (C,H,W) at pts (2,h,w) pixel (x, y), bilinear; NaN where ``inside`` (h,w)
    is False or pts fall off the image."""
    H, W = image.shape[-2:]
    x, y = pts[0], pts[1]
    grid = torch.stack([x * (2.0 / max(1, W - 1)) - 1, y * (2.0 / max(1, H - 1)) - 1], -1)[None]
    out = F.grid_sample(image[None].float(), grid, align_corners=True)[0]
    seen = inside & (x >= 0) & (x <= W - 1) & (y >= 0) & (y <= H - 1)
    return torch.where(seen, out, torch.full_like(out, float("nan")))


@dataclass(frozen=True)
class RimTemplate:
    """A shot's rims: alpha (1,h,w) 0..1 over the grid of ``layout`` (N,2) (the mesh's vertices
    in that grid, :func:`canonical_layout`); triangles (F,3). Read-only once built: frames render
    from it in parallel."""

    layout: torch.Tensor
    alpha: torch.Tensor
    triangles: torch.Tensor

    def render(self, src: torch.Tensor, depth: torch.Tensor, box: Box) -> torch.Tensor:
        """(1,h,w) 0..1 the rims over ``box`` of a frame whose source mesh is src (N,2) frame
        pixels, depth (N,) (smaller = nearer: a turned head's nose hides the far eye's corner);
        only over the eyes' zone (0 elsewhere and off the mesh)."""
        x0, y0, x1, y1 = box
        out = torch.zeros(1, y1 - y0, x1 - x0, device=src.device)
        zx0, zy0, zx1, zy1 = zone_box(src)
        zx0, zy0, zx1, zy1 = max(x0, zx0), max(y0, zy0), min(x1, zx1), min(y1, zy1)
        if zx1 <= zx0 or zy1 <= zy0:
            return out
        raster = rasterize_barycentric(src - src.new_tensor([zx0, zy0]), self.triangles, (zy1 - zy0, zx1 - zx0), depth)
        pts = interpolate(self.layout.to(src.device), self.triangles, raster)  # (2,h,w) layout px
        alpha = _sample(self.alpha.to(src.device), pts, raster.mask).nan_to_num(0.0)
        out[:, zy0 - y0 : zy1 - y0, zx0 - x0 : zx1 - x0] = alpha
        return out


def build_rim_template(frames: list[torch.Tensor], srcs: list[torch.Tensor], shape: torch.Tensor,
                       triangles: torch.Tensor) -> RimTemplate:  # fmt: skip
    """The :class:`RimTemplate` of frames (each (3,H,W) 0..1) under their source meshes srcs
    (each (468,2) frame pixels), in the layout of ``shape`` (N,3) the actor's neutral shape in
    model space; triangles (F,3). Every frame should show the glasses
    (:func:`occluders.bridge_evidence`)."""
    dev = srcs[0].device
    tris = torch.as_tensor(triangles, device=dev).long()
    eye_px = max(EyeAxes(s).width for s in srcs)  # the sharpest frame's resolution
    layout = canonical_layout(torch.as_tensor(shape, device=dev)[: topo.N_VERTICES], eye_px)
    x0, y0, x1, y1 = zone_box(layout)
    size = (y1 - y0, x1 - x0)
    grid = rasterize_barycentric(layout, tris, size)
    views = []
    for frame, src in zip(frames, srcs):
        box = zone_box(src, tuple(frame.shape[-2:]))
        alpha = rim_alpha(frame, src, box)  # (1,h,w) over box
        pts = interpolate(src - src.new_tensor(box[:2]), tris, grid)  # (2,h,w) the layout's pixels in the box
        views.append(_sample(alpha, pts, grid.mask))
    stack = torch.stack(views)  # (T,1,h,w), NaN where a frame does not see the pixel
    seen = (~stack.isnan()).float().mean(0)
    alpha = torch.where(seen >= MIN_VIEWS, stack.nanquantile(0.5, dim=0), torch.zeros_like(seen))
    for upper, lower in ((topo.BROW_UPPER_R, BROW_LOWER_R), (topo.BROW_UPPER_L, BROW_LOWER_L)):
        brow = polygon_mask(layout[list(upper) + list(lower)[::-1]], size)
        brow = F.max_pool2d(brow[None], 2 * BROW_MARGIN + 1, stride=1, padding=BROW_MARGIN)[0]
        alpha = alpha * (1 - brow)
    return RimTemplate(layout, alpha.nan_to_num(0.0), tris)
