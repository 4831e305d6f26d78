"""FACS action-unit blendshapes authored from facial anatomy on the FaceMesh topology.

Each AU is a sum of *handles*. A handle names the vertices a muscle acts on (``sources``), the
displacement those vertices get at intensity 1 (``move``, model units = inter-ocular distance,
in the canonical frame: X to the subject's left, Y up, Z out of the face) and a geodesic
falloff radius ``sigma``. The displacement of any vertex is the strongest source's contribution
``c_s * exp(-0.5 (g(v, s) / sigma)^2)``, cut to zero below ``CUTOFF``, so every AU has a compact
region and distances go around the mouth and eye openings (an upper-lip handle never drags the
lower lip). ``profile="arc"`` tapers the source weights along an open contour (an eyelid moves
most in its middle, not at the corners). The jaw AUs are rotations of the mandible about the
temporomandibular axis instead. Handles are written for the subject's right side and mirrored
for the left. The authored shapes fix each AU's region and a first, anatomical guess of its
motion; :mod:`facepipe.face.build_rig` then replaces the motion of the AUs that labelled
footage shows by the measured one (inside the same region) and scales the others (AUS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facepipe.face import topology as tp

CUTOFF = 0.03  # fraction of a handle's peak below which a vertex is outside the AU's region


@dataclass(frozen=True)
class Handle:
    sources: tuple[int, ...]  # subject's right-side vertices (midline ones allowed)
    move: tuple[float, float, float]  # displacement at intensity 1 (right side; X mirrored for the left)
    sigma: float  # geodesic falloff, model units
    profile: str = "flat"  # "flat" or "arc" (sine taper along the source list)


@dataclass(frozen=True)
class Jaw:
    """Rigid motion of the mandible: rotation about the TMJ axis (X) plus a sideways shift."""

    angle: float  # radians, positive opens the mouth
    shift: float = 0.0  # model units along X (to the subject's left)


@dataclass(frozen=True)
class AUSpec:
    name: str
    title: str
    muscles: str
    side: str = "both"  # "both" (symmetric), "R" or "L" (one side only)
    handles: tuple[Handle, ...] = ()
    jaw: Jaw | None = None
    #: Relative weight of the AU's sparsity prior. The speech AUs (25, 26) are on most of the
    #: time in dialogue, so mouth opening should cost less as them than as any other mix;
    #: upper-lip raising (10) and special lip, jaw and cheek shapes (18, 22, 30, 34) are rare
    #: in dialogue, so they cost more.
    sparsity: float = 1.0


def _lid(upper: bool) -> tuple[int, ...]:
    return tp.UPPER_LID_R if upper else tp.LOWER_LID_R


# Subject's-right vertex groups the handles act on (mediapipe indices).
_INNER_BROW = (107, 66, 55, 65)
_OUTER_BROW = (70, 63, 46, 53)
_CORNER = (tp.MOUTH_CORNER_R, tp.LIP_INNER_CORNER_R)
_UPPER_LIP = tp.LIP_OUTER_UPPER[:5] + tp.LIP_INNER_UPPER_ROW[:5]
_LOWER_LIP = tp.LIP_OUTER_LOWER[:5] + tp.LIP_INNER_LOWER_ROW[:5]
_CHEEK_APEX = (119, 118, 101)
_CHEEK_LOW = (205, 50, 36)
_NOSE_SIDE = (tp.NOSE_ALA_R, 236, 198, 217)
_CHIN_BOSS = (199, 200, 175, 208)
_BUCCAL = (216, 207, 212)

AU_SPECS: tuple[AUSpec, ...] = (
    AUSpec("AU1", "inner brow raiser", "frontalis, pars medialis",
           handles=(Handle(_INNER_BROW, (0.0, 0.07, 0.0), 0.12), Handle((108, 151), (0.0, 0.03, 0.0), 0.10))),
    AUSpec("AU2", "outer brow raiser", "frontalis, pars lateralis",
           handles=(Handle(_OUTER_BROW, (0.0, 0.07, 0.0), 0.12), Handle((104, 69), (0.0, 0.03, 0.0), 0.10))),
    AUSpec("AU4", "brow lowerer", "corrugator supercilii, depressor supercilii, procerus",
           handles=(Handle(_INNER_BROW, (0.03, -0.05, 0.01), 0.12), Handle((105, 52), (0.01, -0.03, 0.0), 0.10),
                    Handle((tp.GLABELLA,), (0.0, -0.02, 0.0), 0.08))),
    AUSpec("AU5", "upper lid raiser", "levator palpebrae superioris",
           handles=(Handle(_lid(True), (0.0, 0.03, 0.0), 0.04, "arc"),)),
    AUSpec("AU6", "cheek raiser", "orbicularis oculi, pars orbitalis",
           handles=(Handle(_CHEEK_APEX, (0.0, 0.04, 0.01), 0.12), Handle(_lid(False), (0.0, 0.025, 0.0), 0.04, "arc"),
                    Handle((tp.EYE_OUTER_R,), (0.01, 0.005, 0.0), 0.06), Handle(_OUTER_BROW[:2], (0.0, -0.015, 0.0), 0.08))),
    AUSpec("AU7", "lid tightener", "orbicularis oculi, pars palpebralis",
           handles=(Handle(_lid(False), (0.0, 0.03, 0.005), 0.035, "arc"), Handle(_lid(True), (0.0, -0.015, 0.0), 0.035, "arc"))),
    AUSpec("AU9", "nose wrinkler", "levator labii superioris alaeque nasi",
           handles=(Handle(_NOSE_SIDE, (0.0, 0.04, 0.0), 0.08), Handle(_INNER_BROW[:2], (0.01, -0.02, 0.0), 0.08),
                    Handle(tp.LIP_OUTER_UPPER[2:5], (0.0, 0.015, 0.0), 0.06))),
    AUSpec("AU10", "upper lip raiser", "levator labii superioris",
           handles=(Handle(_UPPER_LIP, (0.0, 0.05, 0.01), 0.07), Handle((tp.NOSE_ALA_R,), (0.0, 0.015, 0.0), 0.06)), sparsity=2.0),
    AUSpec("AU12R", "lip corner puller (right)", "zygomaticus major", side="R",
           handles=(Handle(_CORNER, (-0.07, 0.06, -0.04), 0.20), Handle(_CHEEK_LOW, (-0.01, 0.02, 0.01), 0.10))),
    AUSpec("AU12L", "lip corner puller (left)", "zygomaticus major", side="L",
           handles=(Handle(_CORNER, (-0.07, 0.06, -0.04), 0.20), Handle(_CHEEK_LOW, (-0.01, 0.02, 0.01), 0.10))),
    AUSpec("AU14R", "dimpler (right)", "buccinator", side="R",
           handles=(Handle(_CORNER, (-0.02, 0.0, -0.05), 0.08),)),
    AUSpec("AU14L", "dimpler (left)", "buccinator", side="L",
           handles=(Handle(_CORNER, (-0.02, 0.0, -0.05), 0.08),)),
    AUSpec("AU15", "lip corner depressor", "depressor anguli oris (triangularis)",
           handles=(Handle(_CORNER, (-0.01, -0.05, 0.0), 0.10),)),
    AUSpec("AU17", "chin raiser", "mentalis",
           handles=(Handle(_CHIN_BOSS, (0.0, 0.04, 0.02), 0.10), Handle(_LOWER_LIP, (0.0, 0.03, 0.01), 0.06, "arc"))),
    AUSpec("AU18", "lip pucker", "incisivii labii superioris and inferioris",
           handles=(Handle(_CORNER, (0.07, 0.0, 0.04), 0.12), Handle(_UPPER_LIP + _LOWER_LIP, (0.0, 0.0, 0.04), 0.08)), sparsity=2.0),
    AUSpec("AU20", "lip stretcher", "risorius, platysma",
           handles=(Handle(_CORNER, (-0.06, -0.01, 0.0), 0.12),)),
    AUSpec("AU22", "lip funneler", "orbicularis oris",
           handles=(Handle(_CORNER, (0.05, 0.0, 0.02), 0.08), Handle(_UPPER_LIP, (0.0, 0.02, 0.04), 0.06, "arc"),
                    Handle(_LOWER_LIP, (0.0, -0.02, 0.04), 0.06, "arc")), sparsity=2.0),
    AUSpec("AU23", "lip tightener", "orbicularis oris",
           handles=(Handle(tp.LIP_OUTER_UPPER[:5], (0.0, -0.02, 0.0), 0.04, "arc"),
                    Handle(tp.LIP_OUTER_LOWER[:5], (0.0, 0.02, 0.0), 0.04, "arc"), Handle(_CORNER, (0.01, 0.0, 0.0), 0.04))),
    AUSpec("AU24", "lip pressor", "orbicularis oris",
           handles=(Handle(_UPPER_LIP, (0.0, -0.015, -0.01), 0.06, "arc"), Handle(_LOWER_LIP, (0.0, 0.015, -0.01), 0.06, "arc"),
                    Handle(_CORNER, (0.015, 0.0, 0.0), 0.06))),
    AUSpec("AU25", "lips part", "depressor labii inferioris, relaxed mentalis / orbicularis oris",
           handles=(Handle(tp.LIP_INNER_LOWER_ROW[:5], (0.0, -0.05, 0.0), 0.10, "arc"),
                    Handle(tp.LIP_INNER_UPPER_ROW[:5], (0.0, 0.015, 0.0), 0.05, "arc")), sparsity=0.25),
    AUSpec("AU26", "jaw drop", "masseter / temporalis relaxed, mandible lowered", jaw=Jaw(angle=0.18), sparsity=0.25),
    AUSpec("AU27", "mouth stretch", "pterygoids, digastric",
           handles=(Handle(_CORNER, (0.03, -0.01, 0.0), 0.08), Handle(tp.LIP_INNER_UPPER_ROW[:5], (0.0, 0.02, 0.0), 0.05, "arc")),
           jaw=Jaw(angle=0.30)),
    AUSpec("AU30R", "jaw sideways (to the subject's right)", "lateral pterygoid", side="R", jaw=Jaw(angle=0.0, shift=-0.06), sparsity=2.0),
    AUSpec("AU30L", "jaw sideways (to the subject's left)", "lateral pterygoid", side="L", jaw=Jaw(angle=0.0, shift=0.06), sparsity=2.0),
    AUSpec("AU34", "cheek puff", "buccinator relaxed, air pressure",
           handles=(Handle(_BUCCAL, (-0.05, 0.0, 0.04), 0.16),), sparsity=2.0),
    AUSpec("AU45R", "blink / eye closure (right)", "orbicularis oculi relaxed levator", side="R",
           handles=(Handle(_lid(True), (0.0, -0.09, 0.01), 0.035, "arc"), Handle(_lid(False), (0.0, 0.01, 0.0), 0.03, "arc"))),
    AUSpec("AU45L", "blink / eye closure (left)", "orbicularis oculi relaxed levator", side="L",
           handles=(Handle(_lid(True), (0.0, -0.09, 0.01), 0.035, "arc"), Handle(_lid(False), (0.0, 0.01, 0.0), 0.03, "arc"))),
)

AU_NAMES: tuple[str, ...] = tuple(s.name for s in AU_SPECS)


@dataclass(frozen=True)
class Combination:
    """A corrective shape for two AUs acting together, weighted by the product of their intensities.

    FACS describes some pairs as more than the sum of their parts: where ``dominant`` acts, its
    motion along ``axes`` wins over ``yielding``'s. The corrective removes ``yielding``'s motion
    along those axes in proportion to ``dominant``'s falloff (1 at its peak, 0 outside its region).
    """

    dominant: str
    yielding: str
    axes: tuple[int, ...]


#: 1+4 (sad, fear): the inner brows rise and are drawn together (FACS Manual 2002, "1+4"). Summed
#: linearly, AU4's lowering cancels AU1's raise (1D+4C lifts the inner brow 0.011 IOD against
#: 0.033 for 1D alone), so AU1 wins vertically where it acts; AU4 keeps its pull toward the
#: midline and still lowers the brow's outer part: the oblique brow of sadness.
COMBINATIONS: tuple[Combination, ...] = (Combination("AU1", "AU4", axes=(1,)),)


def combination_deltas(au_names, au_deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The correctives of :data:`COMBINATIONS` for a rig's final AU shapes.

    au_names (K,); au_deltas (K,V,3). Returns pairs (P,2) int64 rig columns (dominant, yielding)
    and deltas (P,V,3) float32, to be added as ``au[pair0] * au[pair1] * delta``. Combinations
    whose AUs the rig lacks are left out.
    """
    names = list(au_names)
    pairs, deltas = [], []
    for combo in COMBINATIONS:
        if combo.dominant not in names or combo.yielding not in names:
            continue
        i, j = names.index(combo.dominant), names.index(combo.yielding)
        reach = np.linalg.norm(au_deltas[i], axis=-1)
        reach = reach / max(float(reach.max()), 1e-12)
        delta = np.zeros_like(au_deltas[j], dtype=np.float32)
        axes = list(combo.axes)
        delta[:, axes] = -reach[:, None] * au_deltas[j][:, axes]
        pairs.append((i, j))
        deltas.append(delta)
    n_vertices = au_deltas.shape[1]
    return np.array(pairs, np.int64).reshape(-1, 2), np.array(deltas, np.float32).reshape(-1, n_vertices, 3)


# Mandible pivot (temporomandibular joint) in the canonical frame: in front of the ear, at about
# the height of the nose tip, well behind the face surface.
TMJ_PIVOT = np.array([0.0, -0.05, -0.75])


def author_deltas(template: np.ndarray, triangles: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Authored displacement of every vertex for every AU at intensity 1: (K,V,3) float32.

    template (V,3) canonical neutral shape; triangles (F,3); mirror (V,) mirror-vertex map.
    """
    mandible = mandible_weight(template, triangles)
    out = np.zeros((len(AU_SPECS), len(template), 3), np.float64)
    for k, spec in enumerate(AU_SPECS):
        sides = ("R", "L") if spec.side == "both" else (spec.side,)
        for side in sides:
            for h in spec.handles:
                out[k] += handle_field(template, triangles, mirror, h, side)
        if spec.jaw is not None:
            out[k] += _jaw_field(template, mandible, spec.jaw)
    return out.astype(np.float32)


def handle_field(template, triangles, mirror, h: Handle, side: str) -> np.ndarray:
    """(V,3) displacement of handle ``h`` on ``side`` ("R" as written, "L" mirrored) at intensity 1:
    template (V,3), triangles (F,3), mirror (V,) as in :func:`author_deltas`."""
    src = np.asarray(h.sources)
    move = np.asarray(h.move, np.float64)
    if side == "L":
        src = mirror[src]
        move = move * (-1.0, 1.0, 1.0)
    n = len(src)
    coef = np.sin(np.pi * (np.arange(n) + 1) / (n + 1)) if h.profile == "arc" else np.ones(n)
    # One geodesic distance field per source; a vertex takes its strongest source.
    w = np.zeros(len(template))
    for s, c in zip(src, coef):
        g = tp.geodesic_distances(template, triangles, [s])
        w = np.maximum(w, c * np.exp(-0.5 * (g / h.sigma) ** 2))
    w[w < CUTOFF] = 0.0
    return w[:, None] * move[None, :]


def _jaw_field(template, mandible, jaw: Jaw) -> np.ndarray:
    c, s = np.cos(jaw.angle), np.sin(jaw.angle)
    # Opening turns the chin (in front of and below the pivot) down and back: +angle about X.
    rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    p = template - TMJ_PIVOT
    moved = p @ rot.T + TMJ_PIVOT + np.array([jaw.shift, 0.0, 0.0])
    return mandible[:, None] * (moved - template)


def mandible_weight(template: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V,) how much each vertex follows the mandible: 1 on the lower lip, chin and jaw line.

    Below the mouth-corner line the soft tissue rides the jaw; the upper lip (geodesically
    nearer the upper lip rows than the lower ones) never does; the cheeks blend in between.
    """
    y = template[:, 1]
    y_corner = template[[tp.MOUTH_CORNER_R, tp.MOUTH_CORNER_L], 1].mean()
    band = np.clip((y_corner + 0.08 - y) / 0.22, 0.0, 1.0)
    band = band * band * (3 - 2 * band)  # smoothstep
    d_up = tp.geodesic_distances(template, triangles, list(tp.LIP_INNER_UPPER_ROW + tp.LIP_OUTER_UPPER))
    d_lo = tp.geodesic_distances(template, triangles, list(tp.LIP_INNER_LOWER_ROW + tp.LIP_OUTER_LOWER))
    lower_lip = np.clip((d_up - d_lo) / 0.08, 0.0, 1.0)  # 1 where clearly on the lower-lip side
    near_mouth = np.exp(-0.5 * (np.minimum(d_up, d_lo) / 0.12) ** 2)
    w = np.maximum(band, lower_lip * near_mouth)
    w = np.where(d_up < d_lo, np.minimum(w, band * np.clip((d_up - 0.05) / 0.1, 0, 1)), w)
    w[w < CUTOFF] = 0.0
    return w
