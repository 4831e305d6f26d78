"""``facepipe prepare``: the analysis pass of a shot, run once as its own job (a farm's first
step), into the shared work directory; every chunk of the shot's edit then finds it cached."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from facepipe.io.media import probe
from facepipe.pipeline.graph import Graph
from facepipe.stages.deblur import DeblurStage
from facepipe.stages.graph import analysis_stages

#: The artifacts an edit of the shot pulls before it renders, whatever the request (the plan
#: depends on it, so each chunk makes its own, in a moment).
PREPARED = ("track", "fit3d", "repeats")


@dataclass
class PrepareResult:
    """clip: the shot; frames: its frame count; face_frames: frames with a usable face; keys:
    stage -> cache key of what was prepared; stats: the run's (ran / cached)."""

    clip: Path
    frames: int
    face_frames: int
    message: str
    seconds: float
    keys: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)

    def summary(self) -> str:
        done = ", ".join(self.stats.get("cached", [])) or "nothing"
        return (f"prepared {self.clip.name}: {self.face_frames}/{self.frames} frames with a usable face"
                f"{'; ' + self.message if self.message else ''} ({self.seconds:.1f} s; already cached: {done})")


def run_prepare(src, face: str, open_ctx, deblur: DeblurStage | None = None) -> PrepareResult:
    """Track and fit ``src`` (whatever is not cached yet); ``open_ctx``: MediaInfo -> RunContext;
    ``deblur``: the deblur node the tracking reads (the edit's: it is part of the cache key)."""
    t0 = time.perf_counter()
    info = probe(src)
    with open_ctx(info) as ctx:
        graph = Graph(analysis_stages(face, deblur), ctx)
        tracks, fit, _ = (graph.get(name) for name in PREPARED)
        keys = {name: graph.key(name) for name in PREPARED}
    message = "" if fit.has_face else (tracks.message or fit.message)
    return PrepareResult(Path(src), info.frame_count, int(fit.valid.sum()), message, time.perf_counter() - t0,
                         keys, ctx.stats)  # fmt: skip
