"""The shots of a farm batch: from the command line, a CSV or JSON list, or an editorial
timeline (OpenTimelineIO: ``.otio``, or a CMX 3600 ``.edl`` through its adapter).

CSV: a header with ``clip`` and optional ``emotion`` and ``frames`` columns. JSON: a list of
objects with the same keys (or of clip paths). Relative clip paths are read from the list's
folder. A timeline gives one shot per clip: its media reference is the file, its source range
the frames (an OTIO file's media frames, as ``--frame-base index`` counts them when the media
starts at 0; an EDL's source timecode, as ``--frame-base timecode``), its name the shot's name.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from facepipe.errors import FacepipeError, RequestError
from facepipe.io.media import probe
from facepipe.io.timecode import timecode_to_frames


@dataclass(frozen=True)
class Shot:
    """One shot of a batch: its clip, the emotion to give it, optionally a frame range (farm
    syntax, in the batch's ``--frame-base``) and a name (default: the clip's stem)."""

    clip: Path
    emotion: str
    frames: str | None = None
    name: str = ""
    frame_base: str | None = None  # None: the batch's

    @property
    def label(self) -> str:
        return self.name or self.clip.stem


def shots_from_args(clips, emotion: str, frames: str | None = None) -> list[Shot]:
    return [Shot(Path(c), emotion, frames) for c in clips]


def read_shot_list(path, emotion: str | None) -> list[Shot]:
    """The shots listed in ``path`` (``.csv``, ``.json``, ``.otio``, ``.edl``); ``emotion`` is
    the default for rows without one."""
    path = Path(path)
    if not path.is_file():
        raise RequestError(f"--shots {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    elif suffix == ".json":
        rows = json.loads(path.read_text())
        rows = [{"clip": r} if isinstance(r, str) else r for r in (rows.get("shots", []) if isinstance(rows, dict) else rows)]
    elif suffix in (".otio", ".edl"):
        rows = timeline_rows(path)
    else:
        raise RequestError(f"--shots {path}: use a .csv, .json, .otio or .edl file")
    return [_shot(row, path.parent, emotion, f"{path.name} row {i + 1}") for i, row in enumerate(rows)]


def _shot(row: dict, folder: Path, emotion: str | None, where: str) -> Shot:
    if not isinstance(row, dict) or not row.get("clip"):
        raise RequestError(f"{where}: every shot needs a clip")
    chosen = (row.get("emotion") or emotion or "").strip()
    if not chosen:
        raise RequestError(f"{where}: no emotion; add an emotion column or pass --emotion")
    clip = Path(row["clip"])
    frames = str(row["frames"]).strip() if row.get("frames") not in (None, "") else None
    return Shot(clip if clip.is_absolute() else folder / clip, chosen, frames, str(row.get("name") or ""),
                row.get("frame_base") or None)  # fmt: skip


def timeline_rows(path: Path) -> list[dict]:
    """One row per clip of an OTIO-readable timeline: clip file, frame range and name."""
    try:
        import opentimelineio as otio
    except ImportError as exc:
        raise FacepipeError(f"--shots {path.name}: reading timelines needs OpenTimelineIO: "
                            "pip install 'facepipe[farm]'") from exc  # fmt: skip
    edl = path.suffix.lower() == ".edl"
    try:
        # An EDL has no rate: read it at 60 so every FF up to 59 parses, and map its timecodes to
        # each clip's own frames below.
        timeline = otio.adapters.read_from_file(str(path), rate=60) if edl else otio.adapters.read_from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - adapters raise their own kinds
        raise RequestError(f"--shots {path}: not a readable timeline ({exc})") from exc
    rows = []
    for clip in timeline.find_clips():
        url = getattr(clip.media_reference, "target_url", None)
        if not url:
            raise RequestError(f"--shots {path}: clip {clip.name!r} has no media file (an EDL names it in '* FROM CLIP:')")
        file = url.removeprefix("file://")
        file = file if Path(file).is_absolute() else str(path.parent / file)
        rows.append({"clip": file, "frames": _clip_frames(otio, clip, file if edl else None), "name": clip.name,
                     "frame_base": "timecode" if edl else None})  # fmt: skip
    return rows


def _clip_frames(otio, clip, edl_media: str | None) -> str | None:
    """The clip's source range in farm syntax: media frames (OTIO), or for an EDL the source
    timecode's frame numbers at the media's own rate (``--frame-base timecode``)."""
    span = clip.source_range
    if span is None or span.duration.value <= 0:
        return None
    if edl_media is None:
        start = round(span.start_time.to_frames())
        return f"{start}-{start + round(span.duration.to_frames()) - 1}"
    fps = probe(Path(edl_media)).fps
    first = timecode_to_frames(otio.opentime.to_timecode(span.start_time, 60), fps)
    end = timecode_to_frames(otio.opentime.to_timecode(span.end_time_exclusive(), 60), fps)
    return f"{first}-{end - 1}"
