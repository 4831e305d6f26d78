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
    try:
        timeline = otio.adapters.read_from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - adapters raise their own kinds
        raise RequestError(f"--shots {path}: not a readable timeline ({exc})") from exc
    rows = []
    for clip in timeline.find_clips():
        ref = clip.media_reference
        url = getattr(ref, "target_url", None)
        if not url:
            raise RequestError(f"--shots {path}: clip {clip.name!r} has no media file")
        start = round(clip.source_range.start_time.to_frames()) if clip.source_range else None
        length = round(clip.source_range.duration.to_frames()) if clip.source_range else 0
        frames = f"{start}-{start + length - 1}" if start is not None and length > 0 else None
        # An EDL's source ranges are the tape's timecode; an OTIO file's, the media's frames.
        base = "timecode" if path.suffix.lower() == ".edl" else None
        rows.append({"clip": url.removeprefix("file://"), "frames": frames, "name": clip.name, "frame_base": base})
    return rows
