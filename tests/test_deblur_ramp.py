"""The delivered deblur's blend weight: a smoothstep in the face's speed, averaged over a few frames."""

from __future__ import annotations

import numpy as np
import pytest

from facepipe.deblur.ramp import RAMP_WINDOW, blend_weights, smoothstep
from facepipe.errors import RequestError
from facepipe.stages.deblur import DeblurStage, DeliveredDeblurStage
from facepipe.stages.motion import FaceMotion


def hovering_motion(n: int = 40) -> FaceMotion:
    """A face whose speed hovers around the 3 px/frame threshold (2.5, 3.5, 2.5, ...), lost on frame 30."""
    speed = np.where(np.arange(n) % 2, 3.5, 2.5).astype(np.float32)
    box = np.tile(np.array([100, 100, 200, 200], np.float32), (n, 1))
    box[30] = np.nan
    velocity = np.stack([speed, np.zeros(n, np.float32)], 1)
    velocity[30] = 0
    return FaceMotion(np.arange(n, dtype=np.int64), box, velocity)


def test_smoothstep_is_0_then_smooth_then_1_and_a_step_when_its_ends_meet():
    w = smoothstep(np.array([0.0, 3.0, 4.5, 6.0, 9.0]), 3.0, 6.0)
    assert w.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert smoothstep(np.array([2.9, 3.0]), 3.0, 3.0).tolist() == [0.0, 1.0]


def test_a_speed_hovering_at_the_threshold_switches_every_frame_but_ramps_without_jumps():
    motion = hovering_motion()
    switch = DeblurStage(method="classical").blend(motion)
    ramp = DeliveredDeblurStage.of(DeblurStage(method="classical")).blend(motion)
    present = np.isfinite(motion.box).all(1)
    assert np.abs(np.diff(switch[:30])).min() == 1.0  # restored, not, restored...
    assert np.abs(np.diff(ramp[:30])).max() <= 1.0 / RAMP_WINDOW + 1e-6 and ramp[:30].max() < 0.2
    assert ramp[30] == 0 and (ramp[present] > 0).all()  # no face, no square to restore
    # without the ramp the delivered node is the tracking's switch, bit for bit
    assert np.array_equal(DeliveredDeblurStage.of(DeblurStage(method="classical"), ramp=False).blend(motion), switch)


def test_a_sudden_fast_motion_rises_over_the_window():
    speed = np.r_[np.zeros(10), np.full(10, 9.0)]
    w = blend_weights(speed, np.ones(20, bool), 3.0, 6.0, 5)
    assert w[:8].max() == 0 and w[12:].min() == 1 and np.allclose(np.diff(w[7:13]), 0.2)


def test_the_ramp_keys_the_delivered_node_and_bad_ramps_are_refused():
    base = DeblurStage(method="classical")
    ramped, switched = DeliveredDeblurStage.of(base), DeliveredDeblurStage.of(base, ramp=False)
    assert ramped.params() != switched.params() and ramped.params()["ramp_window"] == RAMP_WINDOW
    with pytest.raises(RequestError):
        DeliveredDeblurStage(method="classical", ramp_window=4)
    with pytest.raises(RequestError):
        DeliveredDeblurStage(method="classical", ramp_high=1.0)
    with pytest.raises(ValueError):
        blend_weights(np.zeros(3), np.ones(3, bool), 3.0, 6.0, 2)
