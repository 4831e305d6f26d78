"""Compositing the edited face onto the plate: mattes, re-blur, seamless blend (pure torch)."""

from facepipe.composite.blend import composite, laplacian_blend, match_color, match_grain
from facepipe.composite.matte import MatteStabilizer, face_matte, rasterize_triangles, region_masks
from facepipe.composite.reblur import face_velocity, motion_kernels, reblur

__all__ = [
    "MatteStabilizer", "composite", "face_matte", "face_velocity", "laplacian_blend", "match_color",
    "match_grain", "motion_kernels", "rasterize_triangles", "reblur", "region_masks",
]
