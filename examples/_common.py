"""What the examples share: the clip they use when none is given."""

from __future__ import annotations

from pathlib import Path


def clip_or_demo(clip: str | None, out: Path) -> Path:
    """``clip``, or a demo clip made in ``out`` (a short camera move over a photo)."""
    if clip:
        return Path(clip)
    from facepipe.demo import make_demo_clip

    out.mkdir(parents=True, exist_ok=True)
    path = out / "demo.mp4"
    return path if path.exists() else make_demo_clip(path, seconds=1.0, size=256)
