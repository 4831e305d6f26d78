"""What the neural renderer sees of a frame: an aligned square face crop and renders of the
frame's mesh in it.

A crop is a square ``(cx, cy, side)`` in frame pixels around the mesh, resampled to ``size`` px
(pixel centres at integers in both, as everywhere in facepipe). The conditioning maps
(MAP_CHANNELS, S, S), all in 0..1:

- 0-2 NMFC: each pixel's position on the *mean* face (the model template, normalised to its
  bounding box), so the net knows which part of the face a pixel is, whatever the pose;
- 3-5 normals of the posed mesh (x, y, depth), mapped from -1..1: how light falls on the new shape;
- 6 mouth: the opening inside the inner lip loop (the mouth's own map);
- 7 eyes: the openings inside the lid loops;
- 8 matte: where the mesh (its holes closed) covers the crop.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from facepipe.composite.matte import polygon_mask
from facepipe.face import topology as tp
from facepipe.face.extent import finite_points, square_around
from facepipe.render.barycentric import Raster, box_to_grid, grid_to_box, interpolate, rasterize_barycentric

MAP_CHANNELS = 9
MATTE, MOUTH = 8, 6
#: How much larger than the mesh's bounding box the crop's side is (the chin and brow need room).
CROP_GROW = 1.15


class Crop(NamedTuple):
    """A square crop: centre (cx, cy) and side in frame pixels."""

    cx: float
    cy: float
    side: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1): its edges, as :func:`~facepipe.render.barycentric.box_to_grid` takes a box."""
        half = self.side / 2
        return (self.cx - half, self.cy - half, self.cx + half, self.cy + half)


def crop_around(vertices) -> Crop:
    """The square crop around a mesh's vertices (N,>=2) frame px."""
    v = finite_points(vertices)
    lo, hi = v.amin(0), v.amax(0)
    return Crop(*square_around((*lo.tolist(), *hi.tolist()), CROP_GROW))


def to_crop(points: torch.Tensor, crop: Crop, size: int) -> torch.Tensor:
    """Frame pixels (...,2) -> crop pixels of a ``size`` px crop."""
    return box_to_grid(points, crop.box, (size, size))


def grid_coordinates(points: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pixels (...,2) of an image of ``size`` (H, W) -> grid_sample coordinates (align_corners=False)."""
    H, W = size
    return torch.stack([(points[..., 0] + 0.5) * 2 / W - 1, (points[..., 1] + 0.5) * 2 / H - 1], -1)


def sample_at(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """image (C,H,W) sampled bilinearly at pixel positions points (h,w,2) -> (C,h,w), 0 outside."""
    grid = grid_coordinates(points, image.shape[-2:])[None]
    return F.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


def crop_pixels(crop: Crop, size: int, device=None) -> torch.Tensor:
    """(size,size,2) frame pixel position of every pixel of the crop."""
    c = torch.arange(size, dtype=torch.float32, device=device)
    return grid_to_box(torch.stack(torch.meshgrid(c, c, indexing="xy"), -1), crop.box, (size, size))


def cut(image: torch.Tensor, crop: Crop, size: int) -> torch.Tensor:
    """image (C,H,W) -> the crop (C,size,size), bilinear (area-averaged first when shrinking a
    lot, so the crop does not alias), 0 outside the image."""
    factor = int(crop.side / size)
    if factor >= 2:
        image = F.avg_pool2d(image[None].float(), factor)[0]
        crop = Crop(crop.cx / factor, crop.cy / factor, crop.side / factor)  # a crop's centre and side are in edge units
    return sample_at(image, crop_pixels(crop, size, image.device))


def carry(image: torch.Tensor, vertices: torch.Tensor, raster: Raster, triangles: torch.Tensor) -> torch.Tensor:
    """image (C,S,S) of a crop whose mesh is ``vertices`` (N,2) crop px, carried into another
    crop along the mesh: each pixel that ``raster`` (the other crop's mesh, over ``triangles``)
    covers reads the image where the same mesh point is -> (C,S,S), 0 where the raster does not cover."""
    where = interpolate(vertices, triangles, raster).permute(1, 2, 0)  # (S,S,2) image px
    return sample_at(image.float(), where) * raster.mask.float()


def closed_triangles(triangles) -> torch.Tensor:
    """(F',3) int64: the mesh's triangles plus fans closing its mouth and eye holes (FaceMesh
    topology), so renders and warps cover the openings too."""
    tris = torch.as_tensor(np.asarray(triangles), dtype=torch.long)
    if int(tris.max()) >= tp.N_VERTICES:
        return tris
    fans = [(loop[0], loop[k], loop[k + 1]) for loop in (tp.LIP_INNER_LOOP, tp.EYE_LOOP_R, tp.EYE_LOOP_L)
            for k in range(1, len(loop) - 1)]
    return torch.cat([tris, torch.tensor(fans, dtype=torch.long)])


def vertex_normals(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """Unit area-weighted vertex normals (N,3) of a mesh (N,3), either winding (z made to face
    the camera: smaller depth = nearer, so normals point to -z)."""
    p = vertices[triangles]  # (F,3,3)
    n = torch.linalg.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    n = torch.where(n[:, 2:3] > 0, -n, n)
    out = torch.zeros_like(vertices).index_add_(0, triangles.reshape(-1), n.repeat_interleave(3, 0))
    return F.normalize(out, dim=1)


def template_coordinates(template) -> torch.Tensor:
    """(N,3) the mean face normalised to 0..1 per axis: the NMFC colours."""
    t = torch.as_tensor(np.asarray(template), dtype=torch.float32)
    lo, hi = t.amin(0), t.amax(0)
    return (t - lo) / (hi - lo).clamp_min(1e-6)


def mesh_maps(vertices: torch.Tensor, depth: torch.Tensor, nmfc: torch.Tensor, triangles: torch.Tensor,
              size: int) -> tuple[torch.Tensor, Raster]:  # fmt: skip
    """The conditioning maps (MAP_CHANNELS,size,size) of a mesh and its raster.

    vertices: (N,2) crop px; depth: (N,) in crop px (smaller = nearer); nmfc: (N,3)
    :func:`template_coordinates`; triangles: :func:`closed_triangles`."""
    v = vertices.float()
    raster = rasterize_barycentric(v, triangles, (size, size), depth)
    normals = vertex_normals(torch.cat([v, depth.float()[:, None]], 1), triangles)
    colour = interpolate(torch.cat([nmfc, normals * 0.5 + 0.5], 1).to(v.device), triangles, raster)
    matte = raster.mask.float()[None]
    return torch.cat([colour.to(v.device), hole_map(v, tp.LIP_INNER_LOOP, size),
                      hole_map(v, tp.EYE_LOOP_R, size).maximum(hole_map(v, tp.EYE_LOOP_L, size)), matte]), raster


def hole_map(vertices: torch.Tensor, loop, size: int) -> torch.Tensor:
    """(1,size,size) the filled polygon of a FaceMesh hole ``loop`` (0 for other topologies)."""
    if len(vertices) < tp.N_VERTICES:
        return torch.zeros(1, size, size, device=vertices.device)
    return polygon_mask(vertices[list(loop)], (size, size))
