"""Where trained renderers live: one checkpoint per actor, reused by every later edit of them.

In ``<actor library>/renderers/`` when the actor has a library folder, else in
``<work dir>/renderers/``; a shot edited without an actor name gets its own, named by its
content key (so two clips that share a file name never share a renderer).
"""

from __future__ import annotations

import re
from pathlib import Path

from facepipe.errors import FacepipeError


def renderer_path(actor: str, library: Path | None, workdir: Path) -> Path:
    """Where ``actor``'s renderer lives."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", actor):
        raise FacepipeError(f"actor name {actor!r}: use letters, digits, '.', '_' and '-' only")
    return (Path(library) if library else Path(workdir)) / "renderers" / f"{actor}.pt"


def shot_renderer_path(cache_root: Path, actor: str, library: Path | None) -> Path:
    """The renderer of the shot whose artifacts are cached in ``cache_root`` (``<work
    dir>/<content key>``): ``actor``'s, or the shot's own when no actor is named."""
    root = Path(cache_root)
    return renderer_path(actor or f"shot-{root.name[:16]}", library, root.parent)
