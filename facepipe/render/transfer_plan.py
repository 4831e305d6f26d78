"""Appearance transfer planning: which donor frame each facial region shows, frame by frame.

Once per shot, on AU curves only (no pixels), :func:`plan_transfer` chooses per region
(:class:`~facepipe.face.regions.TransferRegion`) and frame the donor (a row of a
:class:`~facepipe.render.donors.DonorPool`) whose fitted AUs of that region are nearest the
planned target, subject to

- *better than the current frame*: the warp already shows the source frame's appearance, so a
  donor must be nearer the target than the source frame is (by ``min_gain`` and by the factor
  ``max_ratio``); never the current frame itself (``frame_rows``);
- *pose*: the head rotation of donor and current frame within ``max_pose_deg`` (a penalty
  grows towards that limit);
- *speech safety* (``speech_locked`` regions: the mouth): every speech AU of the donor
  (:data:`facepipe.face.facs.SPEECH_AUS` that the rig has: 17 18 22-27) within ``speech_tol`` of
  the *current source frame's* value, so the opening and lip shape always come from the current
  frame; regions without speech (cheeks, eyes, brows) skip this;
- *the actor's own business*: AUs the planner never changes but which shape a region (cheek
  puff AU34 for mouth and cheeks, jaw sideways AU30 for the mouth: the region's ``locked``)
  must match the current source frame's within ``lock_tol``;
- *no copied blinks*: the eye region refuses donors whose lids close (AU45 above 0.3, the
  region's ``donor_max``);
- *sharp donors*: with the pool's landmark speeds, a donor whose region moves fast (motion
  blur) costs more, and above ``max_speed`` is not allowed;
- *temporal coherence*: a Viterbi pass per region over the donors plus a "none" state (the
  current frame, cost = its own distance to the target), a constant ``switch_cost`` for every
  change, and a hard minimum span of ``min_hold`` frames (states carry a hold counter; the
  min-over-previous of each step uses the best and second-best score, so a step is O(M),
  :func:`viterbi_hold`); consecutive donors cross-fade over ``crossfade`` frames (each frame
  blends at most two donors, ``mix`` is donor_b's share), and where the region turns on or off
  its alpha eases in or out over ``crossfade`` frames inside the donor's span.

Where two donors cannot cross-fade (neither may be shown on the other's side of the change: a
"hard cut"), alpha dips to ~0 across the change instead, so teeth never pop.

The blend strength is ``alpha = ease(t) * weight(t) * strength``: 0 wherever the plan does
nothing, linear in the global appearance ``strength`` (the emotion / speech trade-off knob).
Frames where the plan acts on a region but no donor qualifies fall back (alpha 0) and
:meth:`TransferPlan.report` counts them, with the reasons. The result, a :class:`TransferPlan`,
is what :func:`facepipe.render.transfer.render_transfer` lays frame by frame.

Everything is torch on the CPU (the planner's tensors are small) or numpy.

Shapes: T frames of the current shot, M pool rows, K AUs, R regions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from facepipe.face.facs import SPEECH_AUS, columns_of
from facepipe.face.regions import TransferRegion, shipped_regions
from facepipe.render.donors import DonorPool


@dataclass(frozen=True)
class TransferConfig:
    """Donor choice and rendering settings (defaults in brackets).

    strength [1.0]: global appearance strength 0..1, multiplies every alpha.
    switch_cost [0.2]: Viterbi cost of any change of donor (or on/off), in units of the per-frame
        cost (a weighted mean squared AU error: 0.2 = 20 frames of 0.1 AU RMS better).
    min_hold [8]: frames a chosen donor (or the fallback) is held at least (a span cut by the
        shot's end may be shorter).
    crossfade [6]: frames over which consecutive donors cross-fade and alpha eases in/out.
    max_pose_deg [20]: donors whose head rotation differs more from the current frame's are not
        allowed; pose_weight [0.05]: cost added at that limit (quadratic in the angle).
    speech_tol [0.1]: speech-locked regions: every speech AU of the donor within this of the
        current source's; speech_aus: the FACS numbers that carry speech (the planner's).
    lock_tol [0.2]: a region's ``locked`` AUs (cheek puff, jaw sideways: the planner never changes
        them) of the donor within this of the current source's.
    min_gain [0.005], max_ratio [0.7]: a donor must be nearer the planned target than the current
        source frame by ``min_gain`` and by the factor ``max_ratio`` (else that frame falls back).
    speed_weight [0.01], speed_ref [0.01], max_speed [0.05]: with the pool's landmark speeds, a
        donor's region moving at ``speed_ref`` IOD/frame costs ``speed_weight`` (quadratic), above
        ``max_speed`` it is not allowed (motion blur).
    candidates [16]: with pools over 256 rows, the DP runs on the union of every frame's best
        ``candidates`` donors per region.
    feather [0.06]: alpha rises from 0 on the outline of the transferred area to 1 at this fraction
        of the face size (:func:`~facepipe.face.extent.bbox_scale`: sqrt of the edited mesh's
        bounding-box area) inside it.
    gain_sigma [0.2]: the colour gain's Gaussian, as a fraction of the region's size;
    max_gain [2.0]: the gain is clamped to [1/max_gain, max_gain].
    """

    strength: float = 1.0
    switch_cost: float = 0.2
    min_hold: int = 8
    crossfade: int = 6
    max_pose_deg: float = 20.0
    pose_weight: float = 0.05
    speech_tol: float = 0.1
    lock_tol: float = 0.2
    speech_aus: frozenset[int] = SPEECH_AUS
    min_gain: float = 0.005
    max_ratio: float = 0.7
    speed_weight: float = 0.01
    speed_ref: float = 0.01
    max_speed: float = 0.05
    candidates: int = 16
    feather: float = 0.06
    gain_sigma: float = 0.2
    max_gain: float = 2.0

    def __post_init__(self):
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength {self.strength} is outside 0..1")
        if self.min_hold < 1 or self.crossfade < 0:
            raise ValueError("min_hold must be >= 1 and crossfade >= 0")


@dataclass
class TransferPlan:
    """Per-region donor sequence of a shot.

    regions: R region names; donor_a, donor_b: (R,T) int64 pool rows (-1: none; donor_b is only set
    inside a cross-fade); mix: (R,T) float32 0..1 share of donor_b; alpha: (R,T) float32 blend
    strength (0 wherever donor_a is -1); fallback: (R,T) bool frames where the plan changes the
    region but no donor qualified; pool_clip, pool_frame: (M,) the pool's (clip, frame) per row;
    reasons: per region, why frames fell back, {reason: frames}; hard_cuts: per region, donor
    changes that could not cross-fade (the neighbouring donor was not allowed there).
    """

    regions: list
    donor_a: np.ndarray
    donor_b: np.ndarray
    mix: np.ndarray
    alpha: np.ndarray
    fallback: np.ndarray
    pool_clip: np.ndarray
    pool_frame: np.ndarray
    reasons: list = field(default_factory=list)
    hard_cuts: list = field(default_factory=list)

    def rows_used(self) -> np.ndarray:
        """(U,) int64 sorted unique pool rows any frame needs (the renderer decodes only these)."""
        on = self.alpha > 0
        rows = np.concatenate([self.donor_a[on], self.donor_b[on & (self.mix > 0)]])
        return np.unique(rows[rows >= 0]).astype(np.int64)

    def rows_at(self, t: int) -> np.ndarray:
        """(U,) int64 pool rows frame ``t`` needs."""
        on = self.alpha[:, t] > 0
        rows = np.concatenate([self.donor_a[on, t], self.donor_b[on & (self.mix[:, t] > 0), t]])
        return np.unique(rows[rows >= 0]).astype(np.int64)

    def report(self) -> dict:
        """Per region: frames_transferred (alpha > 0), frames_fallback (the plan changes the region
        but nothing qualified), donors (list of (clip, frame), in order of first use), switches
        (donor changes), hard_cuts and reason (a sentence)."""
        out = {}
        for r, name in enumerate(self.regions):
            on = self.alpha[r] > 0
            seq = np.where(on, self.donor_a[r], -1)
            donors = []
            for d in seq[on]:
                key = (int(self.pool_clip[d]), int(self.pool_frame[d]))
                if key not in donors:
                    donors.append(key)
            used = self.donor_a[r][self.donor_a[r] >= 0]
            switches = int((used[1:] != used[:-1]).sum()) if len(used) > 1 else 0
            reasons = self.reasons[r] if r < len(self.reasons) else {}
            n_fb = int(self.fallback[r].sum())
            if n_fb:
                why = "; ".join(f"{k}: {v} frames" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
                reason = f"fell back on {n_fb} frames ({why})"
            elif on.any():
                reason = "transferred wherever the plan changes the region"
            else:
                reason = "the plan does not change this region"
            out[name] = {
                "frames_transferred": int(on.sum()),
                "frames_fallback": n_fb,
                "donors": donors,
                "switches": switches,
                "hard_cuts": int(self.hard_cuts[r]) if r < len(self.hard_cuts) else 0,
                "reason": reason,
            }
        return out


def _quaternions(rotvec: torch.Tensor) -> torch.Tensor:
    """(...,3) axis-angle -> (...,4) unit quaternions (w, x, y, z)."""
    theta = rotvec.norm(dim=-1, keepdim=True)
    axis = rotvec / theta.clamp_min(1e-12)
    return torch.cat([torch.cos(0.5 * theta), axis * torch.sin(0.5 * theta)], -1)


def _columns(names: Sequence[str], au_names: Sequence[str]) -> list[int]:
    idx = {n: k for k, n in enumerate(au_names)}
    return [idx[n] for n in names if n in idx]


class _RegionCost:
    """Per-frame unary costs of one region: donors (T', M) and the current frame (T',)."""

    def __init__(self, region, pool, source, target, rotation, frame_rows, au_names, cfg, dev):
        names = [n for n in region.aus if n in au_names]
        w = [wt for n, wt in zip(region.aus, region.weights) if n in au_names]
        self.cols = _columns(names, au_names)
        wsum = max(sum(w), 1e-12)
        self.w = torch.tensor(w, device=dev, dtype=torch.float32) / wsum
        self.pool_au = torch.as_tensor(pool.au, device=dev)[:, self.cols]  # (M,k)
        self.source, self.target = source[:, self.cols], target[:, self.cols]
        self.q_pool = _quaternions(torch.as_tensor(pool.rotation, device=dev))
        self.q_cur = _quaternions(rotation)
        ok = torch.as_tensor(pool.usable, device=dev).clone()
        for name, top in region.donor_max:
            if name in au_names:
                ok &= torch.as_tensor(pool.au[:, au_names.index(name)], device=dev) <= top
        self.donor_ok = ok
        lock = {}
        if region.speech_locked:
            lock.update({c: cfg.speech_tol for c in columns_of(cfg.speech_aus, au_names)})
        for name in region.locked:
            if name in au_names:
                lock.setdefault(au_names.index(name), cfg.lock_tol)
        self.speech = sorted(lock)
        self.tol = torch.tensor([lock[c] for c in self.speech], device=dev, dtype=torch.float32)
        self.pool_speech = torch.as_tensor(pool.au, device=dev)[:, self.speech]
        self.source_speech = source[:, self.speech]
        self.frame_rows = frame_rows
        self.cfg = cfg
        self.speed_cost = torch.zeros(len(pool), device=dev)
        if pool.speed is not None:
            base = [i for i in region.vertex_ids.tolist() if i < pool.speed.shape[1]]
            sp = torch.as_tensor(pool.speed[:, base], device=dev).mean(1)
            self.donor_ok &= torch.isfinite(sp) & (sp <= cfg.max_speed)
            self.speed_cost = cfg.speed_weight * (sp.nan_to_num(0.0) / max(cfg.speed_ref, 1e-9)) ** 2

    def current(self) -> torch.Tensor:
        """(T,) the current source frame's cost (its distance to the target)."""
        return ((self.source - self.target) ** 2 * self.w).sum(-1)

    def __call__(self, t0: int, t1: int, rows: torch.Tensor | None = None):
        """Costs (t1-t0, M') of the donors (all, or ``rows``) at frames t0..t1-1, inf where not
        allowed, and the reason masks (t1-t0, M') bool: better, pose_ok, speech_ok."""
        cfg = self.cfg
        sel = slice(None) if rows is None else rows
        a = self.pool_au[sel]  # (M',k)
        g = self.target[t0:t1]  # (n,k)
        # sum_k w_k (a_k - g_k)^2 = w.a^2 - 2 (w g).a + w.g^2, as a matmul (n,M')
        au_cost = ((a * a) @ self.w)[None] - 2.0 * (g * self.w) @ a.T + ((g * g) @ self.w)[:, None]
        au_cost = au_cost.clamp_min(0.0)
        c0 = self.current()[t0:t1, None]
        better = (au_cost + cfg.min_gain <= c0) & (au_cost <= cfg.max_ratio * c0)
        dot = (self.q_cur[t0:t1] @ self.q_pool[sel].T).abs().clamp(max=1.0)
        angle = torch.rad2deg(2.0 * torch.acos(dot))
        pose_ok = angle <= cfg.max_pose_deg
        if self.speech:
            diff = (self.pool_speech[sel][None] - self.source_speech[t0:t1, None]).abs()
            speech_ok = (diff <= self.tol + 1e-6).all(-1)
        else:
            speech_ok = torch.ones_like(better)
        ok = better & pose_ok & speech_ok & self.donor_ok[sel][None]
        rows_idx = torch.arange(len(self.pool_au), device=a.device)[sel]
        fr = self.frame_rows[t0:t1, None]
        ok &= rows_idx[None] != fr  # never the current frame itself
        cost = au_cost + cfg.pose_weight * (angle / max(cfg.max_pose_deg, 1e-6)) ** 2 + self.speed_cost[sel][None]
        cost = torch.where(ok, cost, torch.full_like(cost, math.inf))
        return cost, better & self.donor_ok[sel][None] & (rows_idx[None] != fr), pose_ok, speech_ok


def viterbi_hold(unary: torch.Tensor, switch_cost: float, min_hold: int = 1) -> torch.Tensor:
    """The state sequence (T,) int64 minimising sum_t unary[t, s_t] + switch_cost * #changes,
    where every run of a state lasts at least ``min_hold`` frames (except one cut by the end).

    unary: (T,S) float, inf = state not allowed at that frame (some state must be finite on every
    frame). States carry a hold counter 1..min_hold; entering a state takes the best of all
    *other* states' held scores (best or second best: O(S) per frame), so the cost is O(T*S*H) time
    and the back-pointers O(T*S) bits.
    """
    T, S = unary.shape
    H = max(1, int(min_hold))
    dev = unary.device
    inf = torch.tensor(math.inf, device=dev)
    if T == 0:
        return torch.zeros(0, dtype=torch.long, device=dev)
    V = torch.full((S, H), math.inf, device=dev)
    V[:, 0] = unary[0]
    came_stay = torch.zeros(T, S, dtype=torch.bool, device=dev)  # held level: from H-1 (stay) vs H-2
    switched = torch.zeros(T, S, dtype=torch.bool, device=dev)  # H == 1: entered by a switch
    best = torch.zeros(T, 2, dtype=torch.long, device=dev)
    ar = torch.arange(S, device=dev)
    for t in range(1, T):
        held = V[:, H - 1]
        if S > 1:
            two = torch.topk(held, 2, largest=False)
            b1, b2 = two.indices[0], two.indices[1]
            enter = torch.where(ar == b1, held[b2], held[b1]) + switch_cost
        else:
            b1 = b2 = torch.tensor(0, device=dev)
            enter = torch.full((S,), math.inf, device=dev)
        best[t, 0], best[t, 1] = b1, b2
        u = unary[t]
        new = torch.empty_like(V)
        if H == 1:
            sw = enter < held
            switched[t] = sw
            new[:, 0] = torch.where(sw, enter, held) + u
        else:
            new[:, 0] = enter + u
            if H > 2:
                new[:, 1 : H - 1] = V[:, 0 : H - 2] + u[:, None]
            stay = held <= V[:, H - 2]
            came_stay[t] = stay
            new[:, H - 1] = torch.where(stay, held, V[:, H - 2]) + u
        V = torch.where(torch.isnan(new), inf, new)
    flat = V.reshape(-1)
    k = int(torch.argmin(flat))
    s, level = k // H, k % H
    out = torch.empty(T, dtype=torch.long)
    best_c, stay_c, sw_c = best.cpu(), came_stay.cpu(), switched.cpu()
    for t in range(T - 1, -1, -1):
        out[t] = s
        if t == 0:
            break
        if H == 1:
            if bool(sw_c[t, s]):
                b1, b2 = int(best_c[t, 0]), int(best_c[t, 1])
                s = b2 if b1 == s else b1
        elif level == H - 1:
            level = H - 1 if bool(stay_c[t, s]) else H - 2
        elif level > 0:
            level -= 1
        else:
            b1, b2 = int(best_c[t, 0]), int(best_c[t, 1])
            s, level = (b2 if b1 == s else b1), H - 1
    return out.to(dev)


def _spans(seq: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs (start, end exclusive, value) of a 1D sequence."""
    out, start = [], 0
    for t in range(1, len(seq) + 1):
        if t == len(seq) or seq[t] != seq[start]:
            out.append((start, t, int(seq[start])))
            start = t
    return out


def _crossfade(seq: np.ndarray, allowed, fade: int):
    """Donor pairs and mixes for a state sequence (T,) (-1 = none).

    allowed(t, d) -> bool: may donor d be shown at frame t. Each change between two donors A -> B
    at frame s cross-fades over up to ``fade`` frames around s: frames before s also need B
    allowed, frames after s A allowed (each side at most half its span). Returns donor_a,
    donor_b (T,) int64, mix (T,) float32 and the frames s of the hard cuts (changes where
    neither donor may be shown on the other's side: alpha dips to ~0 there instead, see
    :func:`_ease`).
    """
    T = len(seq)
    a = seq.astype(np.int64).copy()
    b = np.full(T, -1, np.int64)
    mix = np.zeros(T, np.float32)
    spans = _spans(seq)
    hard = []
    for (s0, s1, A), (_, e1, B) in itertools.pairwise(spans):
        if A < 0 or B < 0 or fade <= 0:
            continue
        s = s1
        cap_before, cap_after = (s1 - s0) // 2, (e1 - s) // 2
        nb = 0
        while nb < min(cap_before, fade) and allowed(s - 1 - nb, B):
            nb += 1
        na = 0
        while na < min(cap_after, fade) and allowed(s + na, A):
            na += 1
        before = min(nb, (fade + 1) // 2)
        after = min(na, fade - before)
        before = min(nb, fade - after)
        n = before + after
        if n == 0:
            hard.append(s)
            continue
        for i, t in enumerate(range(s - before, s + after)):
            a[t], b[t] = A, B
            x = (i + 1) / (n + 1)
            mix[t] = x * x * (3.0 - 2.0 * x)  # smoothstep
    return a, b, mix, hard


def _ease(on: np.ndarray, cuts: Sequence[int], fade: int) -> np.ndarray:
    """(T,) float32 0..1: 0 where ``on`` (T,) bool is False, easing (smoothstep) to 1 over
    ``fade`` frames away from every off frame and every hard cut (a cut at s sits between frames
    s-1 and s, which get half a frame's distance: alpha dips to ~0 across it, so one donor never
    replaces another at full strength)."""
    T = len(on)
    if fade <= 0:
        return on.astype(np.float32)
    ev = np.sort(np.r_[np.nonzero(~on)[0].astype(np.float64), np.asarray(cuts, np.float64) - 0.5])
    if len(ev) == 0:
        return np.ones(T, np.float32)
    n = np.arange(T, dtype=np.float64)
    i = np.searchsorted(ev, n)
    before = np.where(i > 0, n - ev[np.maximum(i - 1, 0)], np.inf)
    after = np.where(i < len(ev), ev[np.minimum(i, len(ev) - 1)] - n, np.inf)
    x = np.clip(np.minimum(np.abs(before), np.abs(after)) / (fade + 1.0), 0.0, 1.0)
    return np.where(on, x * x * (3.0 - 2.0 * x), 0.0).astype(np.float32)


def plan_transfer(
    pool: DonorPool,
    source_au,
    target_au,
    rotation,
    weight,
    au_names: Sequence[str],
    frame_rows=None,
    config: TransferConfig | None = None,
    regions: Sequence[TransferRegion] | None = None,
) -> TransferPlan:
    """Choose each region's donors over a shot.

    pool: the candidates; source_au, target_au: (T,K) the shot's fitted and planned AUs (columns
    ``au_names``, as the pool's); rotation: (T,3) the shot's head rotation (axis-angle); weight:
    (T,) plan weight 0..1; frame_rows: (T,) int pool row of each current frame (-1 none; default:
    row t when the pool's clip-0 rows are exactly this shot's frames 0..T-1, else none);
    regions: default :func:`~facepipe.face.regions.facemesh_regions` of the shipped rig. Numpy or
    torch inputs. Returns a :class:`TransferPlan` (numpy arrays).
    """
    cfg = config or TransferConfig()
    if regions is None:
        regions = shipped_regions()
    au_names = list(au_names)
    dev = torch.device("cpu")
    src, tgt, rot = _f32(source_au), _f32(target_au), _f32(rotation).reshape(-1, 3)
    w = _f32(weight).reshape(-1).clamp(0.0, 1.0)
    T, M = src.shape[0], len(pool)
    if pool.au.shape[1] != src.shape[1]:
        raise ValueError(f"the pool has {pool.au.shape[1]} AU columns, the shot {src.shape[1]}")
    fr_t = torch.as_tensor(_shot_frame_rows(pool, T, frame_rows), device=dev)

    R = len(regions)
    donor_a = np.full((R, T), -1, np.int64)
    donor_b = np.full((R, T), -1, np.int64)
    mix = np.zeros((R, T), np.float32)
    alpha = np.zeros((R, T), np.float32)
    fallback = np.zeros((R, T), bool)
    reasons, hard_cuts = [], []
    for r, region in enumerate(regions):
        rc = _RegionCost(region, pool, src, tgt, rot, fr_t, au_names, cfg, dev)
        donor_a[r], donor_b[r], mix[r], alpha[r], fallback[r], why, n_hard = _plan_region(rc, w, M, cfg)
        reasons.append(why)
        hard_cuts.append(n_hard)
    return TransferPlan(
        regions=[rg.name for rg in regions],
        donor_a=donor_a,
        donor_b=donor_b,
        mix=mix,
        alpha=alpha,
        fallback=fallback,
        pool_clip=pool.clip.copy(),
        pool_frame=pool.frame.copy(),
        reasons=reasons,
        hard_cuts=hard_cuts,
    )


def _f32(x) -> torch.Tensor:
    """Numpy or torch input -> float32 tensor on the CPU."""
    x = np.asarray(x.cpu() if torch.is_tensor(x) else x)
    return torch.as_tensor(x, dtype=torch.float32, device=torch.device("cpu"))


def _shot_frame_rows(pool: DonorPool, T: int, frame_rows) -> np.ndarray:
    """(T,) int64 the pool row of each of the shot's frames (see :func:`plan_transfer`)."""
    if frame_rows is not None:
        return np.asarray(frame_rows.cpu() if torch.is_tensor(frame_rows) else frame_rows, np.int64).reshape(T)
    own = np.nonzero(pool.clip == 0)[0]
    fr = np.full(T, -1, np.int64)
    if len(own) == T and (pool.frame[own] == np.arange(T)).all():
        fr = own
    return fr


#: Why a frame fell back: the first filter that left it no donor (:func:`_donor_costs`' codes).
_FALLBACK_REASONS = (
    "no donor nearer the target than the current frame",
    "pose too different",
    "speech (or an unplanned AU: puff, jaw) does not match",
    "held off (no donor worth a switch: min_hold, switch_cost, motion)",
)


def _plan_region(rc: _RegionCost, w: torch.Tensor, M: int, cfg: TransferConfig):
    """One region's plan over the shot: donor_a, donor_b (T,) int64, mix, alpha (T,) float32,
    fallback (T,) bool, {reason: frames} and the number of hard cuts."""
    c0 = rc.current()
    T = len(c0)
    chunk = max(1, (1 << 22) // max(1, M * 8))
    acts = (w > 0) & (c0 >= cfg.min_gain)
    rows = _candidate_rows(rc, T, M, chunk, cfg)
    cost, code = _donor_costs(rc, rows, T, chunk)
    # where the plan does not act on the region, nothing is transferred
    cost = torch.where(acts[:, None], cost, torch.full_like(cost, math.inf))
    unary = torch.cat([cost, c0[:, None]], 1)  # last state: none (the current frame)
    S = unary.shape[1]
    seq = viterbi_hold(unary, cfg.switch_cost, cfg.min_hold).numpy()
    row_of = np.r_[rows.numpy(), -1]
    finite = torch.isfinite(unary).numpy()
    inv = {int(rw): j for j, rw in enumerate(rows.numpy())}

    def allowed(t, d):
        return 0 <= t < T and bool(finite[t, inv[d]])

    a_r, b_r, m_r, hard = _crossfade(row_of[seq], allowed, cfg.crossfade)
    ease = torch.as_tensor(_ease(seq != S - 1, hard, cfg.crossfade))
    al = (ease * w * cfg.strength).numpy().astype(np.float32)
    al[seq == S - 1] = 0.0
    off = al <= 0
    a_r[off], b_r[off], m_r[off] = -1, -1, 0.0
    fallback = acts.numpy() & (seq == S - 1)
    fb_codes = code.numpy()[fallback]
    why = {_FALLBACK_REASONS[k]: int((fb_codes == k).sum()) for k in range(4) if (fb_codes == k).any()}
    return a_r, b_r, m_r, al, fallback, why, len(hard)


def _candidate_rows(rc: _RegionCost, T: int, M: int, chunk: int, cfg: TransferConfig) -> torch.Tensor:
    """(M',) int64 the pool rows the DP runs on: every frame's best ``cfg.candidates`` donors
    when the pool has over 256 rows, else all of them."""
    if M <= 256:
        return torch.arange(M)
    keep = torch.zeros(M, dtype=torch.bool)
    for t0 in range(0, T, chunk):
        cost = rc(t0, min(T, t0 + chunk))[0]
        k = min(cfg.candidates, M)
        val, idx = torch.topk(cost, k, dim=1, largest=False)
        keep[idx[torch.isfinite(val)]] = True
    return keep.nonzero().squeeze(1)


def _donor_costs(rc: _RegionCost, rows: torch.Tensor, T: int, chunk: int):
    """Costs (T,M') of the donor ``rows`` over the shot (``chunk`` frames at a time) and per
    frame (T,) the first filter that left no donor: 0 not better, 1 pose, 2 speech / locked AUs,
    3 donors existed (so a fallback there was held off by the Viterbi pass)."""
    parts, code = [], torch.zeros(T, dtype=torch.long)
    for t0 in range(0, T, chunk):
        t1 = min(T, t0 + chunk)
        cost, better, pose_ok, speech_ok = rc(t0, t1, rows)
        parts.append(cost)
        c = torch.full((t1 - t0,), 3, dtype=torch.long)
        c[~(better & pose_ok & speech_ok).any(1)] = 2
        c[~(better & pose_ok).any(1)] = 1
        c[~better.any(1)] = 0
        code[t0:t1] = c
    cost = torch.cat(parts) if parts else torch.zeros(T, 0)
    return cost, code
