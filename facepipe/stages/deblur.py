"""The deblur stage, for analysis: a pass-through placeholder until the deblur network lands.

The design puts face deblurring between decode and tracking (sharp faces track and fit better;
the delivered plate keeps its blur). Until the continuous-motion deblur GAN exists this node
hands frames on unchanged, so the graph, its cache keys and its consumers already have their
final shape: track and expression read ``deblur``, the synthesis pass reads ``decode``.
Neither the classical baseline (:mod:`facepipe.deblur.classical`) nor the GAN's CPU config is
wired in: on synthetic exposures of real footage they lose 1.2 and 0.3 dB against the blurred
input (``benchmarks/deblur.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from facepipe.pipeline.stage import FrameStage


def unchanged(chunk):
    """The identity transform: the chunk as it came."""
    return chunk


@dataclass
class PassThroughDeblurStage(FrameStage):
    """Deblur placeholder: every frame passes unchanged (``method`` names what ran)."""

    name = "deblur"
    version = "1"
    frames_from = "decode"

    method: str = "none"

    def open(self, ctx, inputs, scale):
        return unchanged
