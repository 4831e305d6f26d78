"""Geometric re-render: barycentric rasterisation and the mesh-driven backward warp of a frame."""

from facepipe.render.barycentric import (
    Raster,
    box_to_grid,
    grid_to_box,
    interpolate,
    rasterize_barycentric,
)
from facepipe.render.warp import (
    FACEMESH_REGIONS,
    Region,
    WarpField,
    apply_warp,
    face_box,
    jacobian_det,
    limit_foldover,
    warp_field,
    warp_frames,
)

__all__ = [
    "FACEMESH_REGIONS",
    "Raster",
    "Region",
    "WarpField",
    "apply_warp",
    "box_to_grid",
    "face_box",
    "grid_to_box",
    "interpolate",
    "jacobian_det",
    "limit_foldover",
    "rasterize_barycentric",
    "warp_field",
    "warp_frames",
]
