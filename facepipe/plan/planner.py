"""The expression plan: per-frame target AU intensities from the actor's own AUs and a request.

For every frame ``t`` and rig AU ``k``::

    a_i(t)      = intensity_i * schedule_i(t) * fade(t)          one per keyframe i
    delta(t, k) = sum_i a_i(t) * (P_i[k] - base(t, k))           emotional AUs only
    target      = source + smooth_t(delta)                       (0 where no keyframe acts)
    target      = lerp(target, override value, override weight)  --au overrides win

- ``P_i`` is keyframe i's EMFACS prototype expanded onto the rig (0 for the emotional AUs it
  does not name, so ``neutral``, an empty prototype, relaxes the actor's emotional AUs to 0).
- ``schedule_i`` eases in and out with a smoothstep over ``ramp`` frames inside the keyframe's
  span; two keyframes that touch cross-fade over ``ramp`` frames centred on their boundary (the
  weights sum to 1 there, so happy -> sad never passes through the source); a span that starts
  at the clip's first frame (or ends at its last) is fully on there.
- ``fade`` is 0 on frames the tracker flagged unreliable and eases back to 1 over ``fade``
  frames (the ramp by default) on both sides of them.
- Speech AUs (see :data:`facepipe.face.facs.SPEECH_AUS`) and AUs that are neither
  emotional nor speech (blinks, gaze, jaw sideways) keep the source's values exactly; the emotion
  is added around them. Only ``--au`` overrides may change them (the user asked explicitly).
- ``base`` is the source's slow component (Gaussian over ``keep_motion`` frames, 0.4 s by
  default): the edit moves the actor's expression baseline and keeps the fast part, which on a
  talking face is largely speech. The fit explains wide-open speech mouths partly with AU12/15/20
  (lp_d3 frame 311: AU12 0.6, AU15 0.3 with the jaw dropped); measured against the raw source,
  every emotion relaxed those and squeezed the open mouth narrow.
- The *edit* ``delta`` is smoothed over time (Gaussian, ``smooth_sigma`` frames), not the target:
  the renderer moves the actor's pixels by target - source, so a smooth difference adds no jitter
  while the actor's own micro-motion stays in the pixels. Frames where no keyframe acts keep the
  source exactly (the smoothed edit is cut there).
- The upper-lid raise yields to a blink (:func:`yield_to_blink`): AU5's change is scaled by how
  open the source's eyes are, so a blink stays a blink.

Everything runs in torch on the device of the inputs (or ``device``); the artifact holds numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch

from facepipe.pipeline.artifacts import Artifact
from facepipe.plan import emotions as em
from facepipe.plan.request import EditRequest, Schedule


@dataclass
class EditPlan(Artifact):
    """Per-frame target expression of an edit.

    target: (T,K) float32 planned AU intensities, columns named by ``au_names``.
    weight: (T,) float32 0..1 strength of the edit per frame (keyframe intensity x schedule x
        reliability fade; the strongest override where overrides act). 0 = the source's expression.
    au_names: the rig's AU names (K).
    request: the request as canonical JSON (:meth:`EditRequest.to_json`).
    fps: the clip's frame rate the schedule was resolved at.
    speech_aus: the rig AUs kept from the source.
    segments: the resolved keyframes, ``{"emotion", "start", "end" (exclusive), "intensity"}``.
    """

    target: np.ndarray
    weight: np.ndarray
    au_names: list = field(default_factory=list)
    request: str = "{}"
    fps: Fraction = Fraction(0)
    speech_aus: list = field(default_factory=list)
    segments: list = field(default_factory=list)


# ------------------------------------------------------------------ weights


def smoothstep(x: torch.Tensor) -> torch.Tensor:
    """3x^2 - 2x^3 on x clamped to [0, 1]; S(1 - x) = 1 - S(x)."""
    x = x.clamp(0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _rise(n: torch.Tensor, p: int, ramp: int) -> torch.Tensor:
    """0 before frame p, smoothstep up over ``ramp`` frames from p, 1 from p + ramp on."""
    return smoothstep((n - p + 1) / (ramp + 1.0))


def span_weights(spans: Sequence[tuple[int, int]], frame_count: int, ramp: int, device=None) -> torch.Tensor:
    """Schedule weights (S,T) float32 of sorted, non-overlapping spans ``[start, end)``.

    Each span eases in over ``ramp`` frames from its start and out over its last ``ramp``
    frames; touching spans cross-fade around their boundary instead (their weights sum to 1);
    no easing at the clip's first and last frame.
    """
    n = torch.arange(frame_count, device=device, dtype=torch.float32)
    out = torch.ones(len(spans), frame_count, device=device)
    for i, (a, b) in enumerate(spans):
        if i > 0 and spans[i - 1][1] == a:  # cross-fade from the previous span
            w_in = _rise(n, a - ramp // 2, ramp)
        elif a == 0:  # starts with the clip: fully on from its first frame
            w_in = torch.ones_like(n)
        else:
            w_in = _rise(n, a, ramp)
        if i + 1 < len(spans) and spans[i + 1][0] == b:  # cross-fade into the next span
            w_out = 1.0 - _rise(n, b - ramp // 2, ramp)
        elif b >= frame_count:
            w_out = torch.ones_like(n)
        else:
            w_out = 1.0 - _rise(n, b - ramp, ramp)
        out[i] = torch.minimum(w_in, w_out)
    return out


def reliability_fade(reliable: torch.Tensor, fade: int) -> torch.Tensor:
    """(T,) float32: 0 on unreliable frames, easing back to 1 over ``fade`` frames either side.

    reliable: (T,) bool. A frame ``d`` frames from the nearest unreliable one gets
    smoothstep(d / (fade + 1)).
    """
    reliable = reliable.bool()
    T = reliable.shape[0]
    if bool(reliable.all()):
        return torch.ones(T, device=reliable.device)
    n = torch.arange(T, device=reliable.device, dtype=torch.float32)
    big = torch.tensor(float(4 * T + 4 * fade + 8), device=reliable.device)
    last = torch.where(~reliable, n, -big).cummax(0).values  # nearest unreliable at or before
    nxt = torch.where(~reliable, n, 2 * big).flip(0).cummin(0).values.flip(0)  # at or after
    d = torch.minimum(n - last, nxt - n)
    return smoothstep(d / (fade + 1.0))


def smooth_time(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian smoothing along time of x (T,K) with ``sigma`` frames; ends replicated."""
    if sigma <= 0 or x.shape[0] < 2:
        return x
    radius = max(1, int(np.ceil(3.0 * sigma)))
    k = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (k / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    y = x.t().unsqueeze(1)  # (K,1,T)
    y = torch.nn.functional.pad(y, (radius, radius), mode="replicate")
    return torch.nn.functional.conv1d(y, kernel).squeeze(1).t()


# ------------------------------------------------------------------ the plan


#: FACS numbers of the upper-lid raiser and of the blink (one column per eye in the rig).
UPPER_LID_RAISER, BLINK = 5, 45


def yield_to_blink(delta: torch.Tensor, source: torch.Tensor, au_names: Sequence[str]) -> torch.Tensor:
    """delta (T,K) with the upper-lid raise's column scaled by (1 - the more closed eye's blink in
    ``source`` (T,K)): a lid raised over a closing eye opens onto the lash line (surprise on
    hdtf_aoc's blinks drew a dark slit), and the rig's AU5 lifts both lids."""
    index = em.rig_index(au_names)
    lid, blink = list(index.get(UPPER_LID_RAISER, {}).values()), list(index.get(BLINK, {}).values())
    if not lid or not blink:
        return delta
    openness = 1.0 - source[:, blink].clamp(0.0, 1.0).amax(1)  # (T,)
    out = delta.clone()
    out[:, lid] = out[:, lid] * openness[:, None]
    return out


def plan_targets(
    source: torch.Tensor,
    au_names: Sequence[str],
    schedule: Schedule,
    reliable: torch.Tensor | None = None,
    smooth_sigma: float = 1.5,
    fade: int | None = None,
    speech: frozenset[int] = em.SPEECH_AUS,
    emotional: frozenset[int] = em.EMOTIONAL_AUS,
    keep_motion: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and weights on the device of ``source``.

    source: (T,K) float AU intensities named by ``au_names``; reliable: (T,) bool or None (all
    reliable); keep_motion: sigma in frames of the source's slow component the edit replaces
    (0: the whole source). Returns target (T,K) float32 and weight (T,) float32.
    """
    source = source.float()
    T, K = source.shape
    if schedule.frame_count != T:
        raise ValueError(f"schedule is for {schedule.frame_count} frames, the AUs have {T}")
    dev = source.device
    ramp = schedule.ramp
    fade_len = ramp if fade is None else fade
    if reliable is None:
        rel = torch.ones(T, dtype=torch.bool, device=dev)
    else:
        rel = torch.as_tensor(reliable, device=dev).bool()
    f = reliability_fade(rel, fade_len)

    speech_cols = set(em.columns_of(speech, au_names))
    emo_cols = [c for c in em.columns_of(emotional, au_names) if c not in speech_cols]
    emo_mask = torch.zeros(K, device=dev)
    emo_mask[emo_cols] = 1.0

    segs = schedule.segments
    strength = torch.zeros(T, device=dev)
    delta = torch.zeros(T, K, device=dev)
    if segs:
        w = span_weights([(s.start, s.end) for s in segs], T, ramp, dev)  # (S,T)
        a = w * torch.tensor([s.intensity for s in segs], device=dev)[:, None] * f  # (S,T)
        protos = torch.zeros(len(segs), K, device=dev)
        for i, s in enumerate(segs):
            for col, value in em.expand_to_rig(em.prototype(s.emotion), au_names).items():
                protos[i, col] = value
        # sum_i a_i (P_i - base) on the emotional columns
        base = smooth_time(source, keep_motion)
        delta = (a.t() @ protos - a.sum(0)[:, None] * base) * emo_mask
        strength = a.sum(0)
        active = (strength > 0).float()[:, None]
        delta = yield_to_blink(smooth_time(delta, smooth_sigma) * active, source, au_names)
    lo = torch.minimum(source, torch.zeros_like(source))
    hi = torch.maximum(source, torch.full_like(source, em.MAX_INTENSITY))  # above 1: intensity > 1
    target = torch.minimum(torch.maximum(source + delta, lo), hi)

    ovs = schedule.overrides
    if ovs:
        W = torch.zeros(T, K, device=dev)
        V = torch.zeros(T, K, device=dev)
        groups: dict[tuple[int, ...], list[int]] = {}
        for j, o in enumerate(ovs):
            groups.setdefault(o.columns, []).append(j)
        for cols, idx in groups.items():
            wj = span_weights([(ovs[j].start, ovs[j].end) for j in idx], T, ramp, dev) * f
            for row, j in zip(wj, idx):
                W[:, list(cols)] += row[:, None]
                V[:, list(cols)] += row[:, None] * ovs[j].value
                strength = torch.maximum(strength, row)
        W = W.clamp(0.0, 1.0)
        value = torch.where(W > 0, V / W.clamp_min(1e-12), target)
        target = torch.lerp(target, value, W)
    return target, strength.clamp(0.0, 1.0)


def make_plan(
    source_au,
    au_names: Sequence[str],
    request: EditRequest,
    fps: Fraction,
    reliable=None,
    *,
    start_timecode: str | None = None,
    first_number: int = 0,
    smooth_sigma: float = 1.5,
    fade: int | None = None,
    speech: frozenset[int] = em.SPEECH_AUS,
    device: torch.device | str | None = None,
    keep_motion_s: float = 0.4,
) -> EditPlan:
    """The :class:`EditPlan` of ``request`` on a shot.

    source_au: (T,K) AU intensities (numpy or torch) named by ``au_names``; reliable: (T,) bool
    (numpy or torch) or None; fps: the clip's rational frame rate; keep_motion_s: seconds (sigma)
    of the source's slow component the edit replaces, faster AU motion (speech) is kept (0: the
    edit replaces the source's emotional AUs outright). The request is resolved here
    (RequestError for spans outside the clip, overlaps and unknown AUs).
    """
    src = torch.as_tensor(np.asarray(source_au) if not torch.is_tensor(source_au) else source_au)
    if device is not None:
        src = src.to(device)
    rel = None if reliable is None else torch.as_tensor(
        np.asarray(reliable) if not torch.is_tensor(reliable) else reliable, device=src.device)
    schedule = request.resolve(fps, src.shape[0], au_names, start_timecode, first_number)
    target, weight = plan_targets(src, au_names, schedule, rel, smooth_sigma, fade, speech,
                                  keep_motion=float(keep_motion_s * Fraction(fps)))  # fmt: skip
    speech_names = [au_names[c] for c in sorted(em.columns_of(speech, au_names))]
    return EditPlan(
        target=target.cpu().numpy().astype(np.float32),
        weight=weight.cpu().numpy().astype(np.float32),
        au_names=list(au_names),
        request=request.to_json(),
        fps=Fraction(fps),
        speech_aus=speech_names,
        segments=[{"emotion": s.emotion, "start": s.start, "end": s.end, "intensity": s.intensity}
                  for s in schedule.segments],
    )
