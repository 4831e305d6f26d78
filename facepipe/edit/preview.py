"""``facepipe preview``: the edit of a frame range at reduced scale, for review, with its speed.

The analysis (tracking, fit) is the whole shot's, cached and shared with ``facepipe edit``; only
the selected frames are decoded (resized while decoding) and rendered. The output is H.264 with
the source's timing and audio, showing the source and the edit side by side or as a wipe.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facepipe.errors import RequestError
from facepipe.plan.request import EditRequest

COMPARE_MODES = ("side", "wipe", "none")


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


def compare_frames(source: torch.Tensor, edited: torch.Tensor, mode: str, positions: np.ndarray | None = None) -> torch.Tensor:
    """source, edited: (T,3,H,W). ``side``: (T,3,H,2W) source left, edit right; ``wipe``: (T,3,H,W)
    source left of a vertical line at ``positions`` (T,) 0..1 of the width, edit right of it;
    ``none``: the edit."""
    if mode == "side":
        return torch.cat([source, edited], dim=-1)
    if mode == "wipe":
        T, _, H, W = edited.shape
        out = edited.clone()
        for t in range(T):
            x = int(round(float(positions[t]) * (W - 1)))
            out[t, :, :, :x] = source[t, :, :, :x]
            out[t, :, :, max(0, x - 1) : x + 1] = 1.0  # the wipe line
        return out
    return edited


def even_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The decoder's size at ``scale`` (as :class:`~facepipe.io.reader.VideoReader` rounds it),
    cropped down to even numbers for 4:2:0 H.264."""
    w, h = max(2, round(width * scale)), max(2, round(height * scale))
    return w - w % 2, h - h % 2


def run_preview(src, request: EditRequest, out, force, frames, frame_base, scale, compare, settings, open_ctx, log) -> PreviewResult:
    """See :func:`facepipe.api.preview`."""
    from facepipe.edit.job import analyse_and_plan, check_request, default_output, is_passthrough, make_renderer, make_writer
    from facepipe.io.codecs import choose_codec
    from facepipe.io.frameranges import first_frame_number, parse_frame_range
    from facepipe.io.media import probe
    from facepipe.pipeline.synthesis import passthrough, render_frames

    if compare not in COMPARE_MODES:
        raise RequestError(f"--compare {compare!r}: use one of {', '.join(COMPARE_MODES)}")
    if not 0.0 < scale <= 1.0:
        raise RequestError(f"--scale {scale} is out of range: use a value above 0 and at most 1")
    src = Path(src)
    info = probe(src)
    check_request(request, info)
    first_number = first_frame_number(frame_base, info.timecode, info.fps)
    indices = np.arange(info.frame_count) if frames is None else parse_frame_range(frames, info.frame_count, first_number)
    if out is None:
        edited_name = default_output(src, request.label, frames)
        out = edited_name.with_name(f"{edited_name.stem}.preview.mp4")
    out = Path(out)
    w, h = even_size(info.width, info.height, scale)
    view = dataclasses.replace(info, width=w * (2 if compare == "side" else 1), height=h, rotation=0)
    view = dataclasses.replace(view, coded_width=view.width, coded_height=view.height)
    spec = choose_codec("h264", view, out)
    provenance = {"tool": "facepipe", "preview": True, "source": src.name, "request": request.to_dict(),
                  "scale": scale, "compare": compare, "frames": frames or "all"}  # fmt: skip
    writer = make_writer(out, view, spec, indices, first_number, provenance, force, src)
    if is_passthrough(request):
        shot, ctx, render = None, open_ctx(info), passthrough
    else:
        shot = analyse_and_plan(info, request, settings, open_ctx, log)
        ctx = shot.ctx
        render = passthrough if shot.plan is None else make_renderer(shot, settings, scale, open_ctx, log, fast=True)[0]
    wipe = np.linspace(0.0, 1.0, len(indices)) if len(indices) > 1 else np.full(1, 0.5)
    where = {int(i): k for k, i in enumerate(indices)}

    def transform(chunk):
        plate = chunk.frames[..., :h, :w]
        edited = render(dataclasses.replace(chunk, frames=plate))
        return compare_frames(plate, edited, compare, wipe[[where[int(i)] for i in chunk.indices]])

    t0 = time.perf_counter()
    with writer:
        written = render_frames(ctx, indices, transform, writer, desc="preview", scale=scale)
    seconds = time.perf_counter() - t0
    return PreviewResult(out, written, seconds, shot.analysis_seconds if shot else 0.0, float(info.fps), scale)
