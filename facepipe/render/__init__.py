"""Re-rendering the edited face: barycentric rasterisation, the mesh-driven backward warp of a
frame (:mod:`~facepipe.render.warp`, filled by the membrane of :mod:`~facepipe.render.membrane`),
the source and edited meshes (:mod:`~facepipe.render.geometry`), the layers laid over the warp
(the interior of eyes it opens, :mod:`~facepipe.render.eye_interior`; glasses rims held out of it,
:mod:`~facepipe.render.occluders` with :mod:`~facepipe.render.rim_template`), and appearance
transfer from donor frames (:mod:`~facepipe.render.transfer`, planned by
:mod:`~facepipe.render.transfer_plan` over the pool of :mod:`~facepipe.render.donors`)."""

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
    "grid_to_box",
    "interpolate",
    "jacobian_det",
    "limit_foldover",
    "rasterize_barycentric",
    "warp_field",
    "warp_frames",
]
