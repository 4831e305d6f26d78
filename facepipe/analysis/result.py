"""What an analysis of a clip gives: its tracks, emotion curves and (when available) AU fit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class AnalysisResult:
    clip: Path
    info: object  # MediaInfo
    tracks: object  # FaceTracks
    emotions: object  # EmotionCurves
    fit: object | None  # FaceFit, or None when AUs are unavailable
    au_note: str = ""  # why ``fit`` is None ("" when it is not)
    outputs: dict = field(default_factory=dict)  # kind -> Path ("json", "csv", "plot", "sheet")
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)
