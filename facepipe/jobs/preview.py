"""``facepipe preview``: the edit of a frame range at reduced scale, for review, with its speed.

The same graph as the edit (:func:`facepipe.jobs.edit.edit_stages`) with a compare node before
encode: the analysis is the whole shot's, cached and shared with ``facepipe edit``; only the
selected frames are decoded (resized while decoding) and rendered. The output is H.264 with
the source's timing and audio, showing the source and the edit side by side or as a wipe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from facepipe.errors import RequestError
from facepipe.io.codecs import choose_codec
from facepipe.jobs.edit import default_output, edit_stages, is_passthrough, make_writer, open_shot, pull_edit
from facepipe.jobs.renderer import resolve_renderer
from facepipe.pipeline.graph import Graph
from facepipe.plan.request import EditRequest
from facepipe.stages.compare import COMPARE_MODES, CompareStage, even_size
from facepipe.stages.encode import EncodeStage


@dataclass
class PreviewResult:
    output: Path
    frames_written: int
    render_seconds: float
    analysis_seconds: float
    fps: float  # the clip's frame rate
    scale: float

    @property
    def render_fps(self) -> float:
        return self.frames_written / self.render_seconds if self.render_seconds > 0 else float("inf")

    def summary(self) -> str:
        rt = self.render_fps / self.fps if self.fps else 0.0
        return (f"wrote {self.output} ({self.frames_written} frames at scale {self.scale:g}): rendered at "
                f"{self.render_fps:.1f} frames/s = {rt:.2f}x real time (analysis {self.analysis_seconds:.1f} s)")


def run_preview(src, request: EditRequest, out, force, frames, frame_base, scale, compare, settings, open_ctx, log) -> PreviewResult:
    """See :func:`facepipe.api.preview`."""
    if compare not in COMPARE_MODES:
        raise RequestError(f"--compare {compare!r}: use one of {', '.join(COMPARE_MODES)}")
    if not 0.0 < scale <= 1.0:
        raise RequestError(f"--scale {scale} is out of range: use a value above 0 and at most 1")
    shot = open_shot(src, request, frames, frame_base)
    info = shot.info
    if out is None:
        edited_name = default_output(shot.src, request.label, frames)
        out = edited_name.with_name(f"{edited_name.stem}.preview.mp4")
    out = Path(out)
    w, h = even_size(info.width, info.height, scale)
    view = dataclasses.replace(info, width=w * (2 if compare == "side" else 1), height=h, rotation=0)
    view = dataclasses.replace(view, coded_width=view.width, coded_height=view.height)
    spec = choose_codec("h264", view, out)
    provenance = {"tool": "facepipe", "preview": True, "source": shot.src.name, "request": request.to_dict(),
                  "scale": scale, "compare": compare, "frames": frames or "all"}  # fmt: skip
    writer = make_writer(out, view, spec, shot.indices, shot.first_number, provenance, force, shot.src)
    with open_ctx(info) as ctx:
        weights = "" if is_passthrough(request) else resolve_renderer(ctx, settings, False, log)
        stages, last = edit_stages(request, settings, preview=True, renderer_weights=weights)
        show = CompareStage(frames_from=last, mode=compare, width=w, height=h, indices=shot.indices)
        encode = EncodeStage(writer, shot.indices, frames_from="compare", scale=scale, desc="preview")
        pulled = pull_edit(Graph([*stages, show, encode], ctx), "encode", is_passthrough(request))
    return PreviewResult(out, pulled.frames_written, pulled.render_s, pulled.analysis_s, float(info.fps), scale)
