"""The parametric face model: neutral template, per-shot identity, AU blendshapes.

    shape(identity, au) = template + identity_offset + sum_k au[k] * au_deltas[k]
                          + sum_p min(au[i_p], 1) * au[j_p] * combination_deltas[p]  (V,3)

The last sum holds the corrective shapes of AU pairs that FACS describes as more than the sum
of their parts (:data:`facepipe.face.rig.COMBINATIONS`, e.g. 1+4). A corrective takes the
yielding AU ``j``'s motion away where the dominant ``i`` acts, so its weight saturates with the
dominant at 1: an edit that drives AU1 above 1 (its gain, intensity > 1) removes all of AU4's
lowering at the inner brow, never more (the fit's AUs stay in [0, 1], where nothing changes).

All shapes live in the canonical model frame of :mod:`facepipe.face.camera` (X to the
subject's left, Y up, Z out of the face; unit = the template's inter-ocular distance). The
shipped rig (``data/face_rig.npz``) is made by :mod:`facepipe.face.build_rig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

RIG_PATH = Path(__file__).parent / "data" / "face_rig.npz"


@dataclass(frozen=True)
class FaceModel:
    """template (V,3) float32; triangles (F,3) int64 wound so normals face +Z;
    au_deltas (K,V,3) float32 displacement at intensity 1; mirror (V,) int64 mirror vertex;
    rigid_weights (V,) float32 how much a vertex can be trusted for rigid alignment
    (inverse of its expression variance on footage); au_sparsity (K,) float32 relative weight
    of each AU's sparsity prior in the fit; combination_pairs (P,2) int64 the AU columns of each
    corrective shape; combination_deltas (P,V,3) float32 its displacement at both intensities 1
    (scaled by the product of the two)."""

    template: np.ndarray
    triangles: np.ndarray
    au_names: tuple[str, ...]
    au_deltas: np.ndarray
    mirror: np.ndarray
    rigid_weights: np.ndarray
    au_sparsity: np.ndarray
    combination_pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    combination_deltas: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3), np.float32))

    @property
    def n_vertices(self) -> int:
        return len(self.template)

    def au_index(self, name: str) -> int:
        return self.au_names.index(name)

    def shape(self, identity: np.ndarray | None = None, au: np.ndarray | None = None) -> np.ndarray:
        """Model-space vertices: (V,3) for au (K,), or (T,V,3) for au (T,K).

        identity: (V,3) neutral shape of the actor (default: the template).
        """
        base = self.template if identity is None else np.asarray(identity, np.float32)
        if au is None:
            return base.copy()
        au = np.asarray(au, np.float32)
        # einsum, not tensordot: tensordot goes through BLAS, whose sums depend on its thread count
        # (OpenBLAS on AMD EPYC: a farm worker with 1 thread drew one pixel of a chunk 1 code value
        # off a 2-thread run); einsum's loops give the same bits everywhere, and are as fast here.
        out = base + np.einsum("...k,kvc->...vc", au, self.au_deltas)
        if len(self.combination_pairs):
            both = np.minimum(au[..., self.combination_pairs[:, 0]], 1.0) * au[..., self.combination_pairs[:, 1]]
            out = out + np.einsum("...p,pvc->...vc", both, self.combination_deltas)
        return out

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            template=self.template.astype(np.float32),
            triangles=self.triangles.astype(np.int16),
            au_names=np.array(self.au_names),
            au_deltas=self.au_deltas.astype(np.float32),
            mirror=self.mirror.astype(np.int16),
            rigid_weights=self.rigid_weights.astype(np.float32),
            au_sparsity=self.au_sparsity.astype(np.float32),
            combination_pairs=self.combination_pairs.astype(np.int16),
            combination_deltas=self.combination_deltas.astype(np.float32),
        )


@lru_cache(maxsize=4)
def load_model(path: str | Path | None = None) -> FaceModel:
    """The face model stored at ``path`` (default: the shipped rig).

    A rig saved before corrective shapes existed loads with none.
    """
    d = np.load(Path(path or RIG_PATH))
    combos = {}
    if "combination_pairs" in d:
        combos = {
            "combination_pairs": d["combination_pairs"].astype(np.int64).reshape(-1, 2),
            "combination_deltas": d["combination_deltas"].astype(np.float32),
        }
    return FaceModel(
        template=d["template"].astype(np.float32),
        triangles=d["triangles"].astype(np.int64),
        au_names=tuple(str(n) for n in d["au_names"]),
        au_deltas=d["au_deltas"].astype(np.float32),
        mirror=d["mirror"].astype(np.int64),
        rigid_weights=d["rigid_weights"].astype(np.float32),
        au_sparsity=d["au_sparsity"].astype(np.float32),
        **combos,
    )


def blend(base, au, deltas, pairs=None, combination_deltas=None):
    """Torch: base (V,3), au (T,K), deltas (K,V,3) -> vertices (T,V,3).

    pairs (P,2) long and combination_deltas (P,V,3): corrective shapes, as in ``FaceModel.shape``.
    """
    k, v, _ = deltas.shape
    flat = au @ deltas.reshape(k, v * 3)
    if pairs is not None and len(pairs):
        both = au[:, pairs[:, 0]].clamp(max=1.0) * au[:, pairs[:, 1]]
        flat = flat + both @ combination_deltas.reshape(len(pairs), v * 3)
    return base[None] + flat.reshape(-1, v, 3)
