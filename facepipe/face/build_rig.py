"""Build the shipped face rig (``facepipe/face/data/face_rig.npz``) from footage.

    python -m facepipe.face.build_rig --clips ../shared/data/clips

1. FaceMesh landmarks of every clip (video mode, as the tracker runs it).
2. Template: generalised Procrustes alignment of all frames; in each clip the 30% of frames
   nearest the clip's median expression are averaged into that clip's neutral; the template is
   the per-vertex median of the clip neutrals, mirrored to be exactly symmetric, in the
   canonical frame with unit inter-ocular distance. Rigid weights = inverse within-clip
   variance of each vertex after alignment (nose and forehead high, lips and lids low).
3. Topology: triangles from mediapipe's tessellation edges, wound by the template's normals;
   mirror map by optimal assignment of each vertex to its reflection.
4. AU blendshapes authored from anatomy (:mod:`facepipe.face.rig`).
5. Calibration on footage (:func:`calibrate`): see AUS.md.
6. Corrective shapes of AU combinations (:data:`facepipe.face.rig.COMBINATIONS`) from the
   calibrated shapes.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from facepipe.face import topology as tp
from facepipe.face.mesh_landmarks import clip_landmarks
from facepipe.face.camera import image_to_camera, similarity_align
from facepipe.face.fit import FitConfig, fit_shot
from facepipe.face.model import RIG_PATH, FaceModel
from facepipe.face.rig import AU_NAMES, AU_SPECS, author_deltas, combination_deltas

# Shapes measured on footage, frames read off the contact sheets: (clip, expression frames,
# neutral frames of the same clip, AUs shown). Intensity 1 of those AUs is this expression.
# "~AU" names a partner (authored, or measured by an earlier anchor): its part of the motion
# is removed first, so the anchor's own AUs get the rest (the grin's lips part by AU25, not
# by AU12; the "O" mouth opens by AU25/26, so AU22 is only the funnel).
ANCHORS = (
    ("lp_d0_grin", (28, 62), (0, 12), ("AU12R", "AU12L", "AU6", "~AU25")),
    ("lp_d7_blink_brow", (70, 82), (10, 20), ("AU45R", "AU45L")),
    ("lp_d7_blink_brow", (132, 156), (10, 20), ("AU1", "AU2", "AU5")),
    ("lp_d8_frown_smile", (108, 124), (0, 27), ("AU4",)),
    ("lp_d9_cheeks_yaw", (210, 266), (0, 60), ("AU34",)),
    ("lp_d18_yawn", (68, 90), (0, 10), ("AU26",)),
    ("lp_d18_yawn", (120, 148), (0, 10), ("AU27", "~AU26")),
    ("lp_d5_pucker_smile", (40, 54), (0, 30), ("AU18",)),
    ("lp_d5_pucker_smile", (70, 88), (0, 30), ("AU22", "~AU26", "~AU25")),
)
# Lips part (AU25) is measured on speech: the per-vertex regression of the aligned shape on the
# lip gap over these talking clips; intensity 1 = a wide speech opening (99th percentile).
SPEECH = ("hdtf_aoc_talk", "hdtf_radio2_talk", "lp_d3_talk_glasses", "dpe_d_256_noaudio",
          "lp_d13_portrait_phone", "vr_face1_2213fps")  # fmt: skip
# Clips kept out of the template and the calibration, to check the rig on unseen actors.
HELD_OUT = ("hdtf_edmarkey_talk", "vr_face4_talk", "lp_d19_grin_glasses", "lp_s29_portrait_laugh")
GLOBAL_QUANTILE = 99.5  # AUs without an anchor: this percentile of intensity over all clips becomes 1
REGION_FULL = 0.3  # authored falloff weight from which a vertex fully takes the measured motion
SEEN_ENOUGH = 0.5  # raw extreme intensity below which an AU counts as not shown by the footage


# Vertices whose motion is expression (lips, lids, brows): neutral frames are those where these
# sit nearest their clip's median.
_EXPRESSIVE = list(
    tp.LIP_OUTER_UPPER + tp.LIP_OUTER_LOWER + tp.LIP_INNER_UPPER_ROW + tp.LIP_INNER_LOWER_ROW
    + tp.UPPER_LID_R + tp.LOWER_LID_R + tp.UPPER_LID_L + tp.LOWER_LID_L + tp.BROW_UPPER_R + tp.BROW_UPPER_L
)


def clip_shapes(clips_dir: Path) -> dict[str, np.ndarray]:
    """{clip stem: landmarks (T,468,3) of its face frames in the Y-up camera frame}."""
    out = {}
    for path in sorted(clips_dir.glob("*.mp4")):
        if path.stem in HELD_OUT:
            continue
        lm, conf, _ = clip_landmarks(str(path))
        out[path.stem] = image_to_camera(lm[conf > 0, : tp.N_VERTICES].astype(np.float64))
    return out


def estimate_template(shapes: dict[str, np.ndarray], iterations: int = 5):
    """(template (V,3), rigid_weights (V,), mirror (V,)) from per-clip shapes (T,V,3)."""
    first = next(iter(shapes.values()))[0]
    ref = first - first.mean(0)
    w = np.ones(tp.N_VERTICES)
    for _ in range(iterations):
        aligned = {k: _align_to(x, ref, w) for k, x in shapes.items()}
        ref = np.median(np.concatenate(list(aligned.values())), 0)
        ref = (ref - ref.mean(0)) / np.linalg.norm(ref[tp.EYE_OUTER_L] - ref[tp.EYE_OUTER_R])
        dev = np.concatenate([a - np.median(a, 0) for a in aligned.values()])
        sd = np.sqrt((dev**2).sum(-1).mean(0))
        w = 1.0 / (sd**2 + (0.3 * np.median(sd)) ** 2)
    neutrals = []
    for a in aligned.values():
        med = np.median(a, 0)
        d = np.linalg.norm(a[:, _EXPRESSIVE] - med[_EXPRESSIVE], axis=-1).mean(1)
        neutrals.append(a[d <= np.quantile(d, 0.3)].mean(0))
    neutrals = np.stack(neutrals)
    neutrals = _align_to(neutrals, ref, w)
    tmpl = _canonical(np.median(neutrals, 0))

    m = tmpl * (-1.0, 1.0, 1.0)
    cost = np.linalg.norm(m[:, None] - tmpl[None], axis=-1)
    _, mirror = linear_sum_assignment(cost + cost.T)
    tmpl = 0.5 * (tmpl + tmpl[mirror] * (-1.0, 1.0, 1.0))
    tmpl /= np.linalg.norm(tmpl[tp.EYE_OUTER_L] - tmpl[tp.EYE_OUTER_R])
    w = 0.5 * (w + w[mirror])
    return tmpl.astype(np.float32), (w / w.max()).astype(np.float32), mirror


def _align_to(x: np.ndarray, ref: np.ndarray, w: np.ndarray) -> np.ndarray:
    r, s, t = similarity_align(x, np.broadcast_to(ref, x.shape), w)
    return s[:, None, None] * np.einsum("tij,tvj->tvi", r, x) + t[:, None]


def _canonical(shape: np.ndarray) -> np.ndarray:
    """Rotate/centre a frontal shape into the canonical frame: X along the symmetric pairs (to
    the subject's left), Y from chin to forehead, Z = X x Y out of the face; unit IOD."""
    pairs = [(tp.EYE_OUTER_R, tp.EYE_OUTER_L), (tp.EYE_INNER_R, tp.EYE_INNER_L),
             (tp.MOUTH_CORNER_R, tp.MOUTH_CORNER_L), (tp.NOSE_ALA_R, tp.NOSE_ALA_L), (234, 454)]
    x = sum(shape[l] - shape[r] for r, l in pairs)
    x /= np.linalg.norm(x)
    y = shape[tp.FOREHEAD] - shape[tp.CHIN]
    y -= x * (y @ x)
    y /= np.linalg.norm(y)
    rot = np.stack([x, y, np.cross(x, y)])
    out = (shape - shape.mean(0)) @ rot.T
    return out / np.linalg.norm(out[tp.EYE_OUTER_L] - out[tp.EYE_OUTER_R])


def mesh_triangles(template: np.ndarray) -> np.ndarray:
    """Triangles (F,3) from mediapipe's FACEMESH_TESSELATION, wound to face +Z on ``template``."""
    # lazy: mediapipe is heavy and chatty; clip_landmarks has set its log level by now
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    return tp.orient_triangles(tp.triangles_from_edges(FACEMESH_TESSELATION), template)


def aligned_shapes(model: FaceModel, landmarks: np.ndarray) -> np.ndarray:
    """Landmarks (T,478,3) px -> (T,V,3) similarity-aligned onto the template (model space)."""
    x = image_to_camera(landmarks[:, : model.n_vertices].astype(np.float64))
    return _align_to(x, model.template.astype(np.float64), model.rigid_weights)


def measure_speech_opening(model: FaceModel, clips: dict) -> np.ndarray:
    """AU25 deltas (V,3): the mouth-opening motion of speech inside AU25's authored region."""
    shapes, gaps, openings = [], [], []
    for clip in SPEECH:
        lm = clips[clip][0]
        iod = np.linalg.norm(lm[:, tp.EYE_OUTER_L] - lm[:, tp.EYE_OUTER_R], axis=-1)
        gap = np.linalg.norm(lm[:, tp.LIP_INNER_UPPER] - lm[:, tp.LIP_INNER_LOWER], axis=-1) / iod
        x = aligned_shapes(model, lm)
        shapes.append(x - x.mean(0))  # centred per clip: the actors' shapes differ
        gaps.append(gap - gap.mean())
        openings.append(gap - np.percentile(gap, 1))
    x, g = np.concatenate(shapes), np.concatenate(gaps)
    slope = np.einsum("t,tvi->vi", g, x) / (g @ g)  # (V,3) shape change per unit of lip gap
    span = np.percentile(np.concatenate(openings), 99)
    k = model.au_index("AU25")
    w = np.linalg.norm(model.au_deltas[k], axis=-1)
    return slope * span * _reach(w / w.max())[:, None]


def _reach(w: np.ndarray) -> np.ndarray:
    """How fully a vertex with authored falloff weight w takes measured motion: smoothstep up
    to REGION_FULL, so a measured AU is full inside its region and fades at the border."""
    r = np.clip(w / REGION_FULL, 0, 1)
    return r * r * (3 - 2 * r)


def measure_anchors(model: FaceModel, clips: dict) -> tuple[np.ndarray, set]:
    """AU deltas (K,V,3) with the anchored AUs replaced by their measured shapes.

    The mean aligned shape of the expression frames minus that of the neutral frames is the
    motion. Partners' parts are removed first: their intensities are the joint least-squares
    fit of their shapes to the motion on the vertices only they move (on a partner's whole
    region when the anchor's AUs share it). Each anchored AU then takes
    the motion inside its authored region, shared with the anchor's other AUs in proportion
    to their authored falloff weights.
    """
    deltas = model.au_deltas.astype(np.float64).copy()
    weight = np.linalg.norm(deltas, axis=-1)
    weight /= weight.max(1, keepdims=True)  # (K,V) authored falloff, 1 at each AU's peak
    deltas[model.au_index("AU25")] = measure_speech_opening(model, clips)
    done = {"AU25"}
    for clip, (a, b), (c, d), names in ANCHORS:
        shapes = aligned_shapes(model, clips[clip][0])
        motion = shapes[a : b + 1].mean(0) - shapes[c : d + 1].mean(0)  # (V,3)
        ks = [model.au_index(n) for n in names if not n.startswith("~")]
        own = weight[ks].sum(0)
        partners = [model.au_index(n[1:]) for n in names if n.startswith("~")]
        if partners:
            # Fit the partners jointly where they act (where only they act, if anywhere).
            where = np.zeros(model.n_vertices, bool)
            for p in partners:
                only = (weight[p] > REGION_FULL) & (own < 0.05)
                where |= only if only.any() else weight[p] > REGION_FULL
            basis = deltas[partners][:, where].reshape(len(partners), -1).T
            gains = np.clip(np.linalg.lstsq(basis, motion[where].ravel(), rcond=None)[0], 0, None)
            motion = motion - np.tensordot(gains, deltas[partners], axes=1)
        w = weight[ks]
        share = np.where(own > 0, w / np.where(own > 0, own, 1), 0.0)
        for k, sh in zip(ks, share):
            deltas[k] = motion * (sh * _reach(own))[:, None]
        done.update(model.au_names[k] for k in ks)
    return symmetrise(model, deltas), done


def calibrate(model: FaceModel, clips: dict, rounds: int = 2, log=print) -> tuple[FaceModel, dict]:
    """Measure the anchored AUs' shapes on footage, then scale the other AUs' authored shapes
    so that their extreme over all clips is intensity 1.

    clips: {stem: (landmarks (T,478,3), confidence (T,), (W,H))}.
    """
    deltas, measured = measure_anchors(model, clips)
    model = replace(model, au_deltas=deltas.astype(np.float32))
    free = [k for k, n in enumerate(model.au_names) if n not in measured]
    factor = np.ones(len(model.au_names))
    for r in range(rounds):
        # Raised bound, so an AU whose authored magnitude is too small shows by how far it goes.
        # The fit settings the shipped rig was calibrated with (FitConfig's defaults moved later).
        config = FitConfig(au_max=4.0, z_weight=0.25, au_l1=20.0)
        raw = np.concatenate([fit_shot(lm, c, wh, model, config).au for lm, c, wh in clips.values()])
        # An AU that never gets near its authored extreme in these clips keeps the authored
        # magnitude: the footage does not show it, so it cannot calibrate it.
        extreme = np.percentile(raw, GLOBAL_QUANTILE, axis=0)
        extreme = np.maximum(extreme, extreme[_twins(model)])  # left/right pairs stay mirror images
        step = np.where(extreme >= SEEN_ENOUGH, extreme, 1.0)
        step[[k for k in range(len(step)) if k not in free]] = 1.0
        factor *= step
        model = replace(model, au_deltas=(model.au_deltas * step[:, None, None]).astype(np.float32))
        log(f"calibration round {r + 1}: " + " ".join(f"{model.au_names[k]} x{step[k]:.2f}" for k in free))
    report = calibration_report(model, clips)
    report["magnitude_factor"] = {model.au_names[k]: round(float(factor[k]), 3) for k in free}
    return model, report


def _twins(model: FaceModel) -> np.ndarray:
    """(K,) index of each AU's mirror AU (AU12L <-> AU12R; a bilateral AU is its own)."""
    names = list(model.au_names)
    flip = {"L": "R", "R": "L"}
    return np.array([names.index(n[:-1] + flip[n[-1]] if n[-1] in flip else n) for n in names])


def symmetrise(model: FaceModel, deltas: np.ndarray) -> np.ndarray:
    """Make bilateral AUs mirror-symmetric and left/right pairs mirror images of each other."""
    mirrored = deltas[:, model.mirror] * np.array([-1.0, 1.0, 1.0])  # each AU's shape reflected
    return 0.5 * (deltas + mirrored[_twins(model)])


def calibration_report(model: FaceModel, clips: dict) -> dict:
    """Plain fit of every clip: median residual, and each anchor's mean fitted intensities."""
    fits = {k: fit_shot(lm, c, wh, model) for k, (lm, c, wh) in clips.items()}
    anchors = []
    for clip, (a, b), (c, d), names in ANCHORS:
        au = fits[clip].au
        names = [n.lstrip("~") for n in names]
        anchors.append({
            "clip": clip, "frames": [a, b], "neutral": [c, d],
            "at_expression": {n: round(float(au[a : b + 1, model.au_index(n)].mean()), 3) for n in names},
            "at_neutral": {n: round(float(au[c : d + 1, model.au_index(n)].mean()), 3) for n in names},
        })  # fmt: skip
    return {
        "median_residual_iod": {k: round(float(np.nanmedian(f.residual)), 5) for k, f in fits.items()},
        "anchors": anchors,
    }


def build(clips_dir: Path, out: Path) -> FaceModel:
    shapes = clip_shapes(clips_dir)
    template, rigid_w, mirror = estimate_template(shapes)
    tris = mesh_triangles(template)
    sparsity = np.array([spec.sparsity for spec in AU_SPECS], np.float32)
    model = FaceModel(template, tris, AU_NAMES, np.zeros(0), mirror.astype(np.int64), rigid_w, sparsity)
    # Mirror-symmetric from the start, so every AU's region is too.
    deltas = symmetrise(model, author_deltas(template, tris, mirror).astype(np.float64))
    model = replace(model, au_deltas=deltas.astype(np.float32))
    clips = {p.stem: clip_landmarks(str(p)) for p in sorted(clips_dir.glob("*.mp4")) if p.stem not in HELD_OUT}
    model, report = calibrate(model, clips)
    # Correctives come last: they are defined on the final, calibrated AU shapes.
    pairs, combos = combination_deltas(model.au_names, model.au_deltas)
    model = replace(model, combination_pairs=pairs, combination_deltas=combos)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    out.with_suffix(".calibration.json").write_text(json.dumps(report, indent=1))
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data/clips")
    ap.add_argument("--out", type=Path, default=RIG_PATH)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # a build runs beside other work; one core is plenty
    model = build(args.clips, args.out)
    print(json.dumps({"out": str(args.out), "vertices": model.n_vertices, "triangles": len(model.triangles),
                      "aus": list(model.au_names)}))


if __name__ == "__main__":
    main()
