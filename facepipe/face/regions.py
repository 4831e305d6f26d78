"""Facial regions for appearance transfer, on the 468-vertex FaceMesh topology.

A :class:`TransferRegion` is a set of mesh triangles transferred from one donor frame at a time
(see :mod:`facepipe.render.transfer`), with the AUs that decide its donor. :func:`facemesh_regions`
chooses the four default regions from the geometry of the model's template. Distances are on
the template, unit = inter-ocular distance (IOD), "geodesic" = shortest edge path over the mesh,
which goes around the eye and mouth holes; a triangle belongs to a region when all three of its
vertices do.

No region has a triangle touching a lid contour (the lids' margins), so the eye openings, lid
margins, iris / gaze and blinks are never transferred.

- ``mouth`` (speech locked): vertices within 0.14 geodesic of the outer lip contour or inside it
  (the lips plus the first ring of skin around them), plus the mouth interior: a fan of the
  inner-lip loop around an added centroid vertex (index 468 of the extended vertex array), so
  teeth come along. The fan is left out of the colour statistics (bright teeth must not darken
  the lips).
- ``cheeks`` (cheeks and nasolabial area): vertices between 0.25 IOD below the lip corners and
  0.07 below the lowest lower-lid vertex, at least 0.16 IOD from the midline (the nose dorsum
  stays, the wings and the folds from them to the lip corners come), never strictly inside the
  outer lip contour (the lips carry speech): the cheeks reach the contour, overlapping the mouth's
  skin ring.
- ``eyes`` (skin around the eyes only): vertices up to 0.30 IOD geodesic from the lid contours,
  below the eye corners or lateral of the outer corner (up to 0.12 above it): lower-lid bulge and
  crow's feet, never the upper lid.
- ``brows`` (brows and forehead): vertices at least 0.10 IOD above the eye corners (above the
  upper-lid crease) and 0.08 geodesic from the lids.

Each region's AUs are those that shape its appearance, planned or not; its other triangles of the
mesh are its occluders (the z-buffer of a turned head).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from facepipe.face import topology as topo
from facepipe.face.extent import points_in_polygon
from facepipe.face.model import load_model


@dataclass(frozen=True, eq=False)
class TransferRegion:
    """A facial region transferred from one donor at a time.

    name: e.g. ``"mouth"``; triangles: (F_r,3) int64 vertex indices into the *extended* vertex
    array (the N mesh vertices followed by the extra vertices below, see :meth:`extend`);
    aus / weights: the AU names that decide the donor and their weights in the cost (AUs the rig
    lacks are ignored); speech_locked: the donor's speech AUs must match the current source
    frame's (within ``speech_tol``, see :class:`facepipe.render.transfer_plan.TransferConfig`);
    locked: AUs the plan never changes that shape the region (cheek puff, jaw sideways): the
    donor's must match the current source frame's within ``lock_tol``; n_vertices: N, the mesh
    the indices refer to; extra_vertices: per extra vertex the base vertices it is the mean of
    (the mouth centroid); interior: (F_r,) bool triangles left out of the colour statistics (the
    mouth interior), or None; donor_max: (AU name, value) pairs a donor may not exceed (the eyes:
    no closing lids); occluders: (F_o,3) the other triangles of the mesh (base vertex indices):
    when the renderer gives per-vertex depth they join the z-buffer, so a part of the region
    hidden behind the face (the far cheek behind the nose on a turned head) is not transferred;
    None: no occlusion.
    """

    name: str
    triangles: np.ndarray
    aus: tuple[str, ...]
    weights: tuple[float, ...]
    speech_locked: bool = False
    locked: tuple[str, ...] = ()
    n_vertices: int = topo.N_VERTICES
    extra_vertices: tuple[tuple[int, ...], ...] = ()
    interior: np.ndarray | None = None
    donor_max: tuple[tuple[str, float], ...] = ()
    occluders: np.ndarray | None = None

    def __post_init__(self):
        if len(self.aus) != len(self.weights):
            raise ValueError(f"region {self.name}: {len(self.aus)} AUs but {len(self.weights)} weights")
        tris = np.asarray(self.triangles, np.int64).reshape(-1, 3)
        if tris.size and (tris.min() < 0 or tris.max() >= self.n_vertices + len(self.extra_vertices)):
            raise ValueError(f"region {self.name}: triangle index out of range")
        object.__setattr__(self, "triangles", tris)
        if self.occluders is not None:
            occ = np.asarray(self.occluders, np.int64).reshape(-1, 3)
            if occ.size and (occ.min() < 0 or occ.max() >= self.n_vertices):
                raise ValueError(f"region {self.name}: occluder index out of range")
            object.__setattr__(self, "occluders", occ)

    @property
    def vertex_ids(self) -> np.ndarray:
        """(U,) the sorted extended-vertex indices the region's triangles use."""
        return np.unique(self.triangles)

    def extend(self, vertices: torch.Tensor) -> torch.Tensor:
        """Vertices (N,C) -> (N + E, C): the extra vertices (means of base vertices) appended."""
        v = torch.as_tensor(vertices)
        if len(v) != self.n_vertices:
            raise ValueError(f"region {self.name}: {len(v)} vertices, expected {self.n_vertices}")
        if not self.extra_vertices:
            return v
        extra = torch.stack([v[list(ids)].mean(0) for ids in self.extra_vertices])
        return torch.cat([v, extra.to(v.dtype)])


def _tris_of(tris: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return tris[keep[tris].all(1)]


@lru_cache(maxsize=4)
def _facemesh_regions_cached(template_bytes: bytes, tris_bytes: bytes, shape) -> tuple[TransferRegion, ...]:
    # The AUs of a region: those that shape its appearance, planned or not. AUs the planner never
    # changes (cheek puff 34, jaw sideways 30) have target == source, so they only keep donors
    # that differ from the current frame there (a puffed cheek) from being chosen.
    v = np.frombuffer(template_bytes, np.float32).reshape(shape)
    tris = np.frombuffer(tris_bytes, np.int64).reshape(-1, 3)
    n = len(v)
    x, y = v[:, 0], v[:, 1]
    ax = np.abs(x)
    outer, inner = topo.LIP_OUTER_LOOP, topo.LIP_INNER_LOOP
    lids = [*topo.EYE_LOOP_R, *topo.EYE_LOOP_L]
    d_lid = topo.geodesic_distances(v, tris, lids)
    d_lip = topo.geodesic_distances(v, tris, list(outer))
    in_lips = points_in_polygon(torch.tensor(v[:, :2]), torch.tensor(v[list(outer), :2])).numpy()
    in_lips |= np.isin(np.arange(n), outer)
    y_corner_eye = float(v[[topo.EYE_OUTER_R, topo.EYE_OUTER_L], 1].mean())
    y_lower_lid = float(v[[*topo.LOWER_LID_R, *topo.LOWER_LID_L], 1].min())
    y_mouth = float(v[[topo.MOUTH_CORNER_R, topo.MOUTH_CORNER_L], 1].mean())
    x_outer = float(np.abs(v[[topo.EYE_OUTER_R, topo.EYE_OUTER_L], 0]).mean())
    margin = d_lid > 0.01  # triangles touching the lid contours (the lids' margins) never come
    lips = in_lips & (d_lip > 0)  # strictly inside the outer lip contour

    # mouth: lips + the first ring of skin, and a fan of the inner-lip loop around its centroid
    mouth_v = (in_lips | (d_lip <= 0.14)) & margin
    mouth_t = _tris_of(tris, mouth_v)
    c = n  # the added centroid vertex
    loop = list(inner)
    fan = np.array([(loop[i], loop[(i + 1) % len(loop)], c) for i in range(len(loop))], np.int64)
    mouth_tris = np.concatenate([mouth_t, fan])
    interior = np.r_[np.zeros(len(mouth_t), bool), np.ones(len(fan), bool)]

    # cheeks reach the outer lip contour (overlapping the mouth's skin ring), never inside it
    cheek_v = (y >= y_mouth - 0.25) & (y <= y_lower_lid - 0.07) & (ax >= 0.16) & ~lips & margin
    eye_v = margin & (d_lid <= 0.30) & ((y <= y_corner_eye) | (ax >= x_outer)) & (y <= y_corner_eye + 0.12)
    brow_v = margin & (d_lid >= 0.08) & (y >= y_corner_eye + 0.10)

    regions = (
        TransferRegion(
            "mouth", mouth_tris,
            ("AU10", "AU12R", "AU12L", "AU14R", "AU14L", "AU15", "AU20", "AU9", "AU6",
             "AU17", "AU18", "AU22", "AU23", "AU24", "AU25", "AU26", "AU27", "AU28",
             "AU34", "AU30R", "AU30L"),
            (1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 1.0, 0.3, 0.3,
             0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
             1.0, 0.5, 0.5),
            speech_locked=True, locked=("AU34", "AU30R", "AU30L"), n_vertices=n, extra_vertices=(tuple(loop),),
            interior=interior,
        ),
        TransferRegion(
            "cheeks", _tris_of(tris, cheek_v),
            ("AU6", "AU12R", "AU12L", "AU14R", "AU14L", "AU10", "AU9", "AU11", "AU13", "AU15", "AU20",
             "AU25", "AU26", "AU34", "AU30R", "AU30L"),
            (1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.2, 0.2, 1.0, 0.3, 0.3),
            locked=("AU34",), n_vertices=n,
        ),
        TransferRegion(
            "eyes", _tris_of(tris, eye_v),
            ("AU6", "AU7", "AU12R", "AU12L", "AU9"),
            (1.0, 1.0, 0.3, 0.3, 0.3),
            n_vertices=n, donor_max=(("AU43", 0.3), ("AU45", 0.3), ("AU45R", 0.3), ("AU45L", 0.3)),
        ),
        TransferRegion(
            "brows", _tris_of(tris, brow_v),
            ("AU1", "AU2", "AU4", "AU9"),
            (1.0, 1.0, 1.0, 0.3),
            n_vertices=n,
        ),
    )
    out = []
    for r in regions:
        own = {tuple(sorted(t)) for t in r.triangles.tolist()}
        occ = np.array([t for t in tris.tolist() if tuple(sorted(t)) not in own], np.int64).reshape(-1, 3)
        out.append(dataclasses.replace(r, occluders=occ))
    return tuple(out)


def facemesh_regions(model) -> tuple[TransferRegion, ...]:
    """The four default regions (mouth, cheeks, eyes, brows) of the 468-vertex FaceMesh topology,
    chosen from the geometry of ``model``'s template (a :class:`~facepipe.face.model.FaceModel`;
    see the module docstring for the rules). Cached per model."""
    v = np.ascontiguousarray(model.template, np.float32)
    if len(v) != topo.N_VERTICES:
        raise ValueError(f"facemesh_regions needs the {topo.N_VERTICES}-vertex FaceMesh topology, got {len(v)}")
    t = np.ascontiguousarray(model.triangles, np.int64)
    return _facemesh_regions_cached(v.tobytes(), t.tobytes(), v.shape)


def shipped_regions() -> tuple[TransferRegion, ...]:
    """:func:`facemesh_regions` of the shipped rig (the default regions of a transfer)."""
    return facemesh_regions(load_model())
