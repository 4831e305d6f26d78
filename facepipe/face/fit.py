"""Fit the face model to a shot's tracked landmarks: identity, per-frame pose and AU intensities.

One joint optimisation over the whole shot, batched over frames in torch:

    minimise  sum_t w_t * sum_v rho(|P_t(template + identity + sum_k a_tk D_k + sum_p a_ti a_tj C_p)_v - x_tv| / iod_t)
            + pose_smooth * |d/dt pose|^2 + au_smooth * |d/dt a|^2 + au_l1 * sum_k s_k a_k
            + identity_l2 * |identity|^2 + identity_smooth * |L identity|^2
    subject to 0 <= a_tk <= 1

P_t is the weak-perspective camera of :mod:`facepipe.face.camera`, s_k the rig's per-AU sparsity
weight, rho a Charbonnier (smooth L1) penalty, w_t the landmark confidence (0 for frames without
a usable face: their parameters are interpolated from the neighbouring fitted frames afterwards,
held at the ends). Adam with a
fixed iteration count and a fixed learning-rate schedule, AUs projected onto [0,1] after each
step: no randomness, so the same input gives the same fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from facepipe.face import topology as tp
from facepipe.face.camera import (
    image_to_camera,
    matrix_to_rotvec,
    project,
    similarity_align,
)
from facepipe.face.model import FaceModel, blend, load_model
from facepipe.pipeline.device import one_cpu_thread


@dataclass(frozen=True)
class FitConfig:
    iterations: int = 300
    # FaceMesh depth is the network's guess, yet at full weight (with au_l1 30) AU25+AU26 track
    # the lip gap better than at 0.25 (au_l1 20): lp_d13_portrait_phone 0.885 -> 0.922, the
    # other talking clips kept above 0.9 (empirical; the rig was calibrated with 0.25 / 20).
    z_weight: float = 1.0
    min_confidence: float = 0.5  # frames below this get no weight and interpolated parameters
    # The data term counts (residual / noise)^2 per vertex per frame, with noise = robust_scale
    # (IOD) and linear growth beyond it; the weights below are then inverse prior variances.
    robust_scale: float = 0.01
    pose_smooth: float = 1e4  # frame-to-frame pose change ~ 0.01 (rad, IOD, log scale)
    au_smooth: float = 50.0  # frame-to-frame AU change ~ 0.15
    au_l1: float = 30.0  # an AU must explain more than this to switch on (sparsity; 20 with z at 0.25)
    identity_l2: float = 20.0  # identity offset ~ 0.2 IOD per coordinate: actors differ freely
    identity_smooth: float = 100.0  # ... but smoothly over the mesh
    au_max: float = 1.0  # upper bound of AU intensity (calibration fits with it raised)
    lr: float = 0.02


@dataclass
class ShotFit:
    """Per-shot fit of the face model.

    identity: (V,3) float32 the actor's neutral shape in model space (template + offset).
    rotation: (T,3) float32 head rotation, axis-angle radians (model -> camera frame).
    translation: (T,3) float32 pixels; scale: (T,) float32 pixels per model unit.
    au: (T,K) float32 AU intensities in [0,1], named by ``au_names``.
    residual: (T,) float32 mean image-plane landmark error / inter-ocular distance (NaN where
    the frame had no usable landmarks); valid: (T,) uint8 1 where the frame was fitted.
    image_size: [width, height] of the frames the landmarks are in.
    """

    identity: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    scale: np.ndarray
    au: np.ndarray
    residual: np.ndarray
    valid: np.ndarray
    au_names: list = field(default_factory=list)
    image_size: list = field(default_factory=list)

    def vertices(self, model: FaceModel, frames=None) -> np.ndarray:
        """Model-space vertices (T',V,3) of ``frames`` (default all)."""
        idx = slice(None) if frames is None else np.asarray(frames)
        return model.shape(self.identity, self.au[idx])

    def image_vertices(self, model: FaceModel, frames=None) -> np.ndarray:
        """Image-space vertices (T',V,3) px of ``frames`` (default all)."""
        idx = np.arange(len(self.au)) if frames is None else np.atleast_1d(np.asarray(frames))
        v = torch.from_numpy(self.vertices(model, idx))
        p = project(v, *(torch.from_numpy(np.asarray(a)[idx]) for a in (self.rotation, self.translation, self.scale)))
        return p.numpy()


def fit_shot(
    landmarks: np.ndarray,
    confidence: np.ndarray,
    image_size: tuple[int, int],
    model: FaceModel | None = None,
    config: FitConfig | None = None,
    device="cpu",
    progress: Callable[[int], None] | None = None,
    cuts=(),
    identity: np.ndarray | None = None,
) -> ShotFit:
    """Fit identity, pose and AUs to landmarks (T,N>=468,3) float32 px (NaN rows: no face),
    confidence (T,) in [0,1], image_size (W,H). ``progress(n)`` is called with iterations done.
    cuts: positions t where a new camera shot starts: no temporal smoothing or interpolation
    across them (the identity stays shared: the tracker follows one actor).
    identity: (V,3) a known neutral shape of the actor (e.g. from another fit of the same
    actor): held fixed, so an expression held over the whole shot cannot hide in the identity.
    """
    dev = torch.device(device)
    with one_cpu_thread(dev):
        return _fit(landmarks, confidence, image_size, model or load_model(), config or FitConfig(), dev, progress, cuts,
                    identity)


def _fit(landmarks, confidence, image_size, model: FaceModel, cfg: FitConfig, dev, progress, cuts, identity) -> ShotFit:
    lm, conf, valid, segment = _usable_frames(landmarks, confidence, model, cfg, cuts)

    def fill(x):
        return _fill(x, valid, segment)

    iod = fill(np.where(valid, np.linalg.norm(lm[:, tp.EYE_OUTER_L] - lm[:, tp.EYE_OUTER_R], axis=-1), np.nan))
    pose0 = tuple(fill(p) for p in initial_pose(lm, valid, model))
    terms = _FitTerms.build(lm, conf, valid, segment, iod, pose0, model, cfg, dev)
    params, opt = _parameters(terms, pose0[0], len(model.au_names), identity, cfg)
    _optimise(terms, params, opt, cfg, progress)
    return _result(terms, params, lm, iod, valid, fill, model, image_size)


def _usable_frames(landmarks, confidence, model: FaceModel, cfg: FitConfig, cuts):
    """(landmarks (T,V,3) float32 of the model's vertices, confidence (T,) float32, valid (T,)
    bool: frames the fit uses, segment (T,) int64: camera shot of each frame)."""
    lm = np.asarray(landmarks, np.float32)[:, : model.n_vertices]
    conf = np.nan_to_num(np.asarray(confidence, np.float32))
    valid = (conf >= cfg.min_confidence) & np.isfinite(lm).all(axis=(1, 2))
    if not valid.any():
        raise ValueError("no frame of the shot has usable face landmarks")
    segment = np.zeros(len(lm), np.int64)
    for c in cuts:
        if 0 < c < len(lm):
            segment[c:] += 1
    return lm, conf, valid, segment


@dataclass
class _FitTerms:
    """The fixed tensors of the objective (see the module doc), on the fit's device.

    target: (T,V,3) landmarks (0 on unused frames); weight: (T,) normalised confidence; iod:
    (T,); axis_w: (3,) x, y, z weights; template (V,3), deltas (K,V,3), pairs (P,2), combos
    (P,V,3), sparsity (K,), lap (V,V): the model; scale0 (T,), trans0 (T,3): the initial pose's
    scale and translation; same_shot: (T-1,) 0 across a cut.
    """

    target: object
    weight: object
    iod: object
    axis_w: object
    template: object
    deltas: object
    pairs: object
    combos: object
    sparsity: object
    lap: object
    scale0: object
    trans0: object
    same_shot: object

    @classmethod
    def build(cls, lm, conf, valid, segment, iod, pose0, model: FaceModel, cfg: FitConfig, dev) -> _FitTerms:
        f32 = {"dtype": torch.float32, "device": dev}
        weight = torch.as_tensor(np.where(valid, conf, 0.0), **f32)
        return cls(
            target=torch.as_tensor(np.where(valid[:, None, None], lm, 0.0), **f32),
            weight=weight / weight.sum(),
            iod=torch.as_tensor(iod, **f32),
            axis_w=torch.tensor([1.0, 1.0, cfg.z_weight], **f32),
            template=torch.as_tensor(model.template, **f32),
            deltas=torch.as_tensor(model.au_deltas, **f32),
            pairs=torch.as_tensor(model.combination_pairs, dtype=torch.long, device=dev),
            combos=torch.as_tensor(model.combination_deltas, **f32),
            sparsity=torch.as_tensor(model.au_sparsity, **f32),
            lap=torch.as_tensor(tp.laplacian(model.n_vertices, model.triangles), **f32),
            scale0=torch.as_tensor(pose0[2], **f32),
            trans0=torch.as_tensor(pose0[1], **f32),
            same_shot=torch.as_tensor(segment[1:] == segment[:-1], **f32),
        )


def _parameters(terms: _FitTerms, rot0: np.ndarray, n_aus: int, identity, cfg: FitConfig):
    """The optimised parameters (dict: rot, d_trans, d_logscale, au, d_identity) and their Adam
    optimiser. A given ``identity`` is held fixed (d_identity is then a constant)."""
    f32 = {"dtype": torch.float32, "device": terms.template.device}
    n_frames = len(rot0)
    p = {
        "rot": torch.as_tensor(rot0, **f32).requires_grad_(),
        "d_trans": torch.zeros(n_frames, 3, **f32, requires_grad=True),  # IOD units, so steps are scale-free
        "d_logscale": torch.zeros(n_frames, **f32, requires_grad=True),
        "au": torch.zeros(n_frames, n_aus, **f32, requires_grad=True),
    }
    groups = [
        {"params": [p["rot"]], "lr": cfg.lr * 0.5},
        {"params": [p["d_trans"], p["d_logscale"]], "lr": cfg.lr * 0.5},
        {"params": [p["au"]], "lr": cfg.lr * 2.5},
    ]
    if identity is None:
        p["d_identity"] = torch.zeros(terms.template.shape[0], 3, **f32, requires_grad=True)
        groups.append({"params": [p["d_identity"]], "lr": cfg.lr * 0.15})
    else:
        p["d_identity"] = torch.as_tensor(np.asarray(identity, np.float32), **f32) - terms.template
    return p, torch.optim.Adam(groups)


def _loss(terms: _FitTerms, p: dict, cfg: FitConfig):
    """The objective of the module doc at the current parameters ``p`` (a scalar tensor)."""
    eps = cfg.robust_scale
    scale = terms.scale0 * torch.exp(p["d_logscale"])
    trans = terms.trans0 + p["d_trans"] * terms.iod[:, None]
    verts = blend(terms.template + p["d_identity"], p["au"], terms.deltas, terms.pairs, terms.combos)
    pred = project(verts, p["rot"], trans, scale)
    r2 = (((pred - terms.target) / terms.iod[:, None, None]) ** 2 * terms.axis_w).sum(-1)  # (T,V)
    data = (terms.weight * (2 * (torch.sqrt(1 + r2 / eps**2) - 1)).sum(-1)).sum()
    pose = torch.cat([p["rot"], p["d_trans"], p["d_logscale"][:, None]], 1)
    same_shot, au, d_identity = terms.same_shot, p["au"], p["d_identity"]
    return (
        data
        + cfg.pose_smooth * (same_shot * (pose[1:] - pose[:-1]).pow(2).sum(-1)).mean()
        + cfg.au_smooth * (same_shot * (au[1:] - au[:-1]).pow(2).sum(-1)).mean()
        + cfg.au_l1 * (au * terms.sparsity).sum(-1).mean()
        + cfg.identity_l2 * d_identity.pow(2).sum()
        + cfg.identity_smooth * (terms.lap @ d_identity).pow(2).sum()
    )


def _optimise(terms: _FitTerms, p: dict, opt, cfg: FitConfig, progress) -> None:
    """``cfg.iterations`` Adam steps on ``p`` (in place), AUs clamped to [0, au_max] after each."""
    base_lrs = [g["lr"] for g in opt.param_groups]
    for it in range(cfg.iterations):
        # Cosine decay to 5%: big steps first, a settled answer at the end.
        f = 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * it / cfg.iterations))
        for g, lr in zip(opt.param_groups, base_lrs):
            g["lr"] = lr * f
        opt.zero_grad(set_to_none=True)
        _loss(terms, p, cfg).backward()
        opt.step()
        with torch.no_grad():
            p["au"].clamp_(0.0, cfg.au_max)
        if progress is not None:
            progress(1)


def _result(terms: _FitTerms, p: dict, lm, iod, valid, fill, model: FaceModel, image_size) -> ShotFit:
    """The ShotFit of the optimised parameters: unused frames interpolated (``fill``), residuals."""
    with torch.no_grad():
        scale = (terms.scale0 * torch.exp(p["d_logscale"])).cpu().numpy()
        trans = (terms.trans0 + p["d_trans"] * terms.iod[:, None]).cpu().numpy()
        out = ShotFit(
            identity=(terms.template + p["d_identity"]).cpu().numpy(),
            rotation=fill(p["rot"].cpu().numpy()),
            translation=fill(trans),
            scale=fill(scale),
            au=fill(p["au"].cpu().numpy()),
            residual=np.zeros(len(lm), np.float32),
            valid=valid.astype(np.uint8),
            au_names=list(model.au_names),
            image_size=[int(image_size[0]), int(image_size[1])],
        )
    out.residual = landmark_residual(out.image_vertices(model), lm, iod, valid)
    return out


def initial_pose(lm: np.ndarray, valid: np.ndarray, model: FaceModel):
    """Per-frame similarity of the template onto landmarks (T,V,3) px, weighted towards rigid
    vertices -> rotvec (T,3), translation (T,3), scale (T,); NaN where not ``valid``."""
    cam = image_to_camera(lm[valid].astype(np.float64))
    r, s, t = similarity_align(model.template, cam, model.rigid_weights)
    rot = np.full((len(lm), 3), np.nan)
    trans = np.full((len(lm), 3), np.nan)
    scale = np.full(len(lm), np.nan)
    rot[valid] = matrix_to_rotvec(r)
    trans[valid] = image_to_camera(t)
    scale[valid] = s
    return rot, trans, scale


def landmark_residual(pred: np.ndarray, lm: np.ndarray, iod: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(T,) mean image-plane distance between pred and lm (T,V,>=2) px over vertices, / iod (T,);
    NaN where not ``valid``."""
    d = np.linalg.norm(pred[..., :2] - lm[..., :2], axis=-1).mean(-1) / iod
    return np.where(valid, d, np.nan).astype(np.float32)


def _fill(values: np.ndarray, valid: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """values (T,...) as float32, rows where not ``valid`` linearly interpolated from the valid
    rows of the same segment (held at its ends; from the whole shot if it has none)."""
    values = np.asarray(values, np.float64).copy()
    if valid.all():
        return values.astype(np.float32)
    flat = values.reshape(len(values), -1)
    t = np.arange(len(values))
    for s in np.unique(segment):
        rows = segment == s
        src = rows & valid if (rows & valid).any() else valid
        for col in flat.T:
            col[rows] = np.interp(t[rows], t[src], col[src])
    return values.astype(np.float32)
