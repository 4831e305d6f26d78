"""Edit requests: what the user asked for, parsed and checked, then resolved onto a clip's frames.

Command-line forms (each ``--emotion`` / ``--au`` may repeat)::

    --emotion happy                         the whole clip
    --emotion happy@0s-2.5s --emotion sad@3s-   keyframed; an empty end runs to the clip's end
    --emotion happy:0.6@75-150              this keyframe at intensity 0.6
    --intensity 0.8  --ramp 12 | 12f | 0.5s
    --au AU12=0.6  --au AU25=0.2@1s-2s      direct AU targets (they win over the emotion)
    --keyframes edit.json | edit.yaml

Times: seconds ``2.5s`` name an instant, so a span ``a-b`` holds the frames that start in
``[a, b)``; frames ``75`` / ``75f`` (in the user's numbering, ``first_number`` = number of
source frame 0) and timecodes ``01:00:01:00`` (relative to the clip's start timecode) name
frames, and a span's end frame is included, as in farm frame ranges.

Keyframe file (JSON or YAML), every key optional except ``emotion`` in a keyframe::

    {"intensity": 0.8, "ramp": "0.5s",
     "keyframes": [{"emotion": "happy", "start": "0s", "end": "2.5s", "intensity": 1.0},
                   {"emotion": "sad", "start": "3s"}],
     "au": [{"au": "AU12", "value": 0.6, "start": "1s", "end": "2s"}]}

``"au"`` may also be a mapping ``{"AU12": 0.6}`` (whole clip); the file may be a bare list of
keyframes. Bare numbers are frames. Command-line ``--intensity`` / ``--ramp`` win over the
file's.

Every mistake a user can make raises :class:`~facepipe.errors.RequestError` with one line that
says what is wrong and how to write it instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from facepipe.errors import RequestError
from facepipe.plan import emotions as em

DEFAULT_RAMP = "0.25s"
TIME_HELP = "use seconds (2.5s), frames (75 or 75f) or timecode (01:00:01:00)"

_SECONDS = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)s$")
_FRAMES = re.compile(r"^(\d+)f?$")
_TIMECODE = re.compile(r"^\d{1,2}:\d{2}:\d{2}[:;.]\d{2,3}$")
_EMOTION = re.compile(r"^([A-Za-z]+)(?::([^@]*))?(?:@(.*))?$")
_AU = re.compile(r"^([^=@]+)=([^@]*)(?:@(.*))?$")
_AU_SYNTAX = re.compile(r"^AU\d+[LR]?$")


@dataclass(frozen=True)
class TimeSpec:
    """A point in the clip as the user wrote it. kind: "seconds" | "frame" | "timecode"."""

    text: str
    kind: str

    @property
    def seconds(self) -> Fraction:
        return Fraction(self.text[:-1])

    @property
    def frame(self) -> int:
        return int(self.text.rstrip("f"))


def parse_time(text: Any, where: str = "") -> TimeSpec:
    """``"2.5s"`` / ``"75"`` / ``"75f"`` / ``"01:00:01:00"`` (or an int: frames) -> TimeSpec."""
    ctx = f" in {where!r}" if where else ""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        if isinstance(text, float) and float(text).is_integer():
            text = int(text)
        else:
            raise RequestError(f"bad time {text!r}{ctx}: frames are whole numbers; {TIME_HELP}")
    s = str(text).strip()
    if _SECONDS.match(s):
        return TimeSpec(s, "seconds")
    if _FRAMES.match(s):
        return TimeSpec(s, "frame")
    if _TIMECODE.match(s):
        return TimeSpec(s, "timecode")
    raise RequestError(f"bad time {s!r}{ctx}: {TIME_HELP}")


def parse_ramp(text: Any) -> TimeSpec:
    """``--ramp``: frames (``12`` / ``12f``) or seconds (``0.5s``)."""
    spec = parse_time(text, "--ramp")
    if spec.kind == "timecode":
        raise RequestError(f"bad --ramp {spec.text!r}: give frames (12) or seconds (0.5s)")
    return spec


def parse_intensity(value: Any, where: str = "--intensity", upper: float | None = None) -> float:
    """A number from 0 to ``upper`` (default :data:`facepipe.plan.emotions.MAX_INTENSITY`: an
    emotion's intensity, 1 = its real peak, above 1 exaggerated); RequestError otherwise."""
    upper = em.MAX_INTENSITY if upper is None else upper
    span = f"from 0 to {upper:g}" + (" (1 = the emotion's real peak)" if upper > 1 else "")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise RequestError(f"bad {where} {value!r}: give a number {span}") from None
    if not 0.0 <= x <= upper:  # also rejects NaN
        raise RequestError(f"{where} {value!r} is out of range: give a number {span}")
    return x


def _parse_span(span: str | None, where: str) -> tuple[TimeSpec | None, TimeSpec | None]:
    if span is None:
        return None, None
    parts = span.split("-")
    if len(parts) != 2:
        raise RequestError(f"bad span {span!r} in {where!r}: write start-end, e.g. 0s-2.5s, 75-150 or 3s-")
    start = parse_time(parts[0], where) if parts[0].strip() else None
    end = parse_time(parts[1], where) if parts[1].strip() else None
    return start, end


@dataclass(frozen=True)
class Keyframe:
    """One emotion over a span (None ends = clip start / end), at its own intensity if given."""

    emotion: str
    start: TimeSpec | None = None
    end: TimeSpec | None = None
    intensity: float | None = None
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class AUOverride:
    """A direct AU target (``AU12=0.6``) over a span."""

    au: str
    value: float
    start: TimeSpec | None = None
    end: TimeSpec | None = None
    text: str = field(default="", compare=False)


def parse_emotion(text: str) -> Keyframe:
    """``happy`` / ``happy@0s-2.5s`` / ``happy:0.6@3s-`` -> Keyframe."""
    m = _EMOTION.match(text.strip())
    if not m:
        raise RequestError(f"bad --emotion {text!r}: write an emotion, optionally with a span, e.g. happy@0s-2.5s")
    emotion = em.canonical_emotion(m[1])
    intensity = parse_intensity(m[2], f"intensity in {text!r}") if m[2] is not None else None
    start, end = _parse_span(m[3], text)
    return Keyframe(emotion, start, end, intensity, text.strip())


def parse_au(text: str) -> AUOverride:
    """``AU12=0.6`` / ``AU12L=0.6@1s-2s`` -> AUOverride."""
    m = _AU.match(text.strip())
    if not m:
        raise RequestError(f"bad --au {text!r}: write AU<number>=<0..1>, e.g. AU12=0.6")
    name = m[1].strip().upper()
    if not _AU_SYNTAX.match(name):
        raise RequestError(
            f"unknown AU {m[1].strip()!r} in {text!r}: write AU<number>, e.g. AU12 (AU12L/AU12R for one side)"
        )
    value = parse_intensity(m[2], f"value of {name} in {text!r}", upper=1.0)
    start, end = _parse_span(m[3], text)
    return AUOverride(name, value, start, end, text.strip())


# ------------------------------------------------------------------ resolved onto a clip


@dataclass(frozen=True)
class Segment:
    """An emotion keyframe on frames ``start <= t < end`` (0-based source indices)."""

    emotion: str
    start: int
    end: int
    intensity: float
    label: str = field(default="", compare=False)


@dataclass(frozen=True)
class OverrideSegment:
    """An AU override on frames ``start <= t < end``, acting on rig ``columns``."""

    au: str
    columns: tuple[int, ...]
    value: float
    start: int
    end: int
    label: str = field(default="", compare=False)


@dataclass(frozen=True)
class Schedule:
    """A request resolved onto a clip: frame spans (sorted), ramp in frames."""

    frame_count: int
    ramp: int
    segments: tuple[Segment, ...]
    overrides: tuple[OverrideSegment, ...]


@dataclass(frozen=True)
class EditRequest:
    keyframes: tuple[Keyframe, ...] = ()
    overrides: tuple[AUOverride, ...] = ()
    intensity: float = 1.0
    ramp: TimeSpec = field(default_factory=lambda: parse_ramp(DEFAULT_RAMP))

    @property
    def label(self) -> str:
        """Short name for output files: ``happy``, ``happy+sad``, ``au`` (overrides only)."""
        names: list[str] = []
        for k in self.keyframes:
            if k.emotion not in names:
                names.append(k.emotion)
        return "+".join(names) if names else "au"

    def to_dict(self) -> dict:
        """Canonical, JSON-serialisable form (keyframe-file layout)."""

        def t(x: TimeSpec | None):
            return None if x is None else x.text

        return {
            "intensity": self.intensity,
            "ramp": self.ramp.text,
            "keyframes": [
                {"emotion": k.emotion, "start": t(k.start), "end": t(k.end), "intensity": k.intensity}
                for k in self.keyframes
            ],
            "au": [{"au": o.au, "value": o.value, "start": t(o.start), "end": t(o.end)} for o in self.overrides],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any, source: str = "request") -> EditRequest:
        return request_from_data(data, source)

    def resolve(
        self,
        fps: Fraction,
        frame_count: int,
        au_names: Sequence[str],
        start_timecode: str | None = None,
        first_number: int = 0,
    ) -> Schedule:
        """Frame spans of this request on a clip of ``frame_count`` frames at ``fps``.

        Raises RequestError for a span outside the clip, a span that ends before it starts,
        overlapping keyframes (or overlapping overrides of one AU) and AUs the rig lacks.
        """
        if frame_count <= 0:
            raise RequestError("the clip has no frames to edit")
        fps = Fraction(fps)
        clock = _Clock(fps, frame_count, start_timecode, first_number)
        ramp = clock.length(self.ramp)
        segments = []
        for k in self.keyframes:
            a, b = clock.span(k.start, k.end, k.text or k.emotion)
            intensity = self.intensity if k.intensity is None else k.intensity
            segments.append(Segment(k.emotion, a, b, intensity, k.text or k.emotion))
        segments.sort(key=lambda s: s.start)
        for prev, nxt in zip(segments, segments[1:]):
            if nxt.start < prev.end:
                raise RequestError(
                    f"keyframes {prev.label!r} (frames {prev.start}-{prev.end - 1}) and {nxt.label!r} "
                    f"(frames {nxt.start}-{nxt.end - 1}) overlap: give each frame at most one emotion"
                )
        index = em.rig_index(au_names)
        overrides = []
        for o in self.overrides:
            num, side = em.parse_au_name(o.au)
            cols = tuple(c for c, _ in em.expand_key((num, side), index)) if num in index else ()
            if side and side not in index.get(num, {}):
                cols = ()  # a side the rig does not model separately cannot be overridden alone
            if not cols:
                known = ", ".join(n for n in au_names if _AU_SYNTAX.match(n.upper()))
                raise RequestError(f"unknown AU {o.au!r} in {o.text or o.au!r}: the face rig has {known}")
            a, b = clock.span(o.start, o.end, o.text or o.au)
            overrides.append(OverrideSegment(o.au, cols, o.value, a, b, o.text or o.au))
        overrides.sort(key=lambda s: s.start)
        for i, p in enumerate(overrides):
            for q in overrides[i + 1 :]:
                if set(p.columns) & set(q.columns) and q.start < p.end and p.start < q.end:
                    raise RequestError(f"--au {p.label!r} and {q.label!r} overlap: give each AU one value per frame")
        return Schedule(frame_count, ramp, tuple(segments), tuple(overrides))


class _Clock:
    """TimeSpecs -> 0-based frame indices on one clip."""

    def __init__(self, fps: Fraction, frame_count: int, start_timecode: str | None, first_number: int):
        self.fps, self.n, self.first = fps, frame_count, first_number
        self.tc0 = None
        if start_timecode:
            from facepipe.io.timecode import timecode_to_frames

            self.tc0 = timecode_to_frames(start_timecode, fps)

    def _duration(self) -> str:
        return f"{self.n} frames, {float(self.n / self.fps):.3f}s"

    def start(self, t: TimeSpec) -> int:
        if t.kind == "seconds":
            return math.ceil(t.seconds * self.fps)
        return self._frame(t)

    def end(self, t: TimeSpec) -> int:
        """Exclusive end index."""
        if t.kind == "seconds":
            return math.ceil(t.seconds * self.fps)
        return self._frame(t) + 1

    def _frame(self, t: TimeSpec) -> int:
        if t.kind == "frame":
            return t.frame - self.first
        from facepipe.io.timecode import timecode_to_frames

        return timecode_to_frames(t.text, self.fps) - (self.tc0 or 0)

    def span(self, start: TimeSpec | None, end: TimeSpec | None, label: str) -> tuple[int, int]:
        a = 0 if start is None else self.start(start)
        b = self.n if end is None else self.end(end)
        if a < 0:
            raise RequestError(f"{label!r} starts before the clip's first frame ({start.text})")
        if a >= self.n:
            raise RequestError(f"{label!r} starts past the clip's end (the clip has {self._duration()})")
        if b > self.n:
            raise RequestError(
                f"{label!r} runs past the clip's end (the clip has {self._duration()}): "
                "end it earlier or leave the end open (e.g. happy@3s-)"
            )
        if b <= a:
            raise RequestError(f"{label!r} ends before it starts")
        return a, b

    def length(self, t: TimeSpec) -> int:
        if t.kind == "seconds":
            return round(t.seconds * self.fps)
        return t.frame


# ------------------------------------------------------------------ building requests


def parse_request(
    emotions: Iterable[str] = (),
    intensity: Any = None,
    ramp: Any = None,
    aus: Iterable[str] = (),
    keyframe_file: str | Path | None = None,
) -> EditRequest:
    """The request from command-line values (None = not given) and an optional keyframe file."""
    data: dict = {}
    if keyframe_file is not None:
        data = _normalise_file_data(load_keyframe_file(keyframe_file), str(keyframe_file))
    keyframes = [*_file_keyframes(data, str(keyframe_file)), *(parse_emotion(e) for e in emotions)]
    overrides = [*_file_overrides(data, str(keyframe_file)), *(parse_au(a) for a in aus)]
    if intensity is None:
        intensity = data.get("intensity", 1.0)
    if ramp is None:
        ramp = data.get("ramp", DEFAULT_RAMP)
    if not keyframes and not overrides:
        raise RequestError("nothing to edit: give --emotion (e.g. --emotion happy), --au or --keyframes")
    return EditRequest(tuple(keyframes), tuple(overrides), parse_intensity(intensity), parse_ramp(ramp))


def load_keyframe_file(path: str | Path) -> Any:
    """Parsed contents of a JSON or YAML keyframe file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise RequestError(f"cannot read keyframe file {str(p)!r}: {e.strerror or e}") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise RequestError(
                "YAML keyframe files need PyYAML (pip install pyyaml), or write the file as JSON"
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            line = getattr(getattr(e, "problem_mark", None), "line", None)
            at = f" at line {line + 1}" if line is not None else ""
            raise RequestError(f"keyframe file {str(p)!r} is not valid YAML{at}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise RequestError(f"keyframe file {str(p)!r} is not valid JSON: {e.msg} at line {e.lineno}") from None


def request_from_data(data: Any, source: str = "request") -> EditRequest:
    """An EditRequest from keyframe-file data (what :meth:`EditRequest.to_dict` writes)."""
    data = _normalise_file_data(data, source)
    keyframes, overrides = _file_keyframes(data, source), _file_overrides(data, source)
    if not keyframes and not overrides:
        raise RequestError(f"{source}: nothing to edit (no keyframes and no au)")
    return EditRequest(
        tuple(keyframes), tuple(overrides),
        parse_intensity(data.get("intensity", 1.0), f"intensity in {source}"),
        parse_ramp(data.get("ramp", DEFAULT_RAMP)),
    )


_FILE_KEYS = {"intensity", "ramp", "keyframes", "au"}


def _normalise_file_data(data: Any, source: str) -> dict:
    if isinstance(data, list):
        data = {"keyframes": data}
    if not isinstance(data, dict):
        raise RequestError(f"{source}: expected a mapping with 'keyframes' (or a list of keyframes)")
    unknown = set(data) - _FILE_KEYS
    if unknown:
        raise RequestError(f"{source}: unknown key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(_FILE_KEYS))})")
    return data


def _opt_time(item: dict, key: str, where: str) -> TimeSpec | None:
    v = item.get(key)
    return None if v is None or v == "" else parse_time(v, where)


def _file_keyframes(data: dict, source: str) -> list[Keyframe]:
    items = data.get("keyframes") or []
    if not isinstance(items, list):
        raise RequestError(f"{source}: 'keyframes' must be a list")
    out = []
    for i, item in enumerate(items):
        where = f"{source} keyframe {i + 1}"
        if isinstance(item, str):
            out.append(parse_emotion(item))
            continue
        if not isinstance(item, dict) or "emotion" not in item:
            raise RequestError(f"{where}: write {{\"emotion\": \"happy\", \"start\": \"0s\", \"end\": \"2.5s\"}}")
        extra = set(item) - {"emotion", "start", "end", "intensity"}
        if extra:
            raise RequestError(f"{where}: unknown key {sorted(extra)[0]!r} (allowed: emotion, start, end, intensity)")
        intensity = item.get("intensity")
        out.append(Keyframe(
            em.canonical_emotion(str(item["emotion"])),
            _opt_time(item, "start", where), _opt_time(item, "end", where),
            None if intensity is None else parse_intensity(intensity, f"intensity in {where}"),
            f"{item['emotion']}@{item.get('start') or ''}-{item.get('end') or ''}",
        ))
    return out


def _file_overrides(data: dict, source: str) -> list[AUOverride]:
    items = data.get("au") or []
    if isinstance(items, dict):
        items = [{"au": k, "value": v} for k, v in items.items()]
    if not isinstance(items, list):
        raise RequestError(f"{source}: 'au' must be a list or a mapping like {{\"AU12\": 0.6}}")
    out = []
    for i, item in enumerate(items):
        where = f"{source} au {i + 1}"
        if isinstance(item, str):
            out.append(parse_au(item))
            continue
        if not isinstance(item, dict) or "au" not in item or "value" not in item:
            raise RequestError(f"{where}: write {{\"au\": \"AU12\", \"value\": 0.6}}")
        extra = set(item) - {"au", "value", "start", "end"}
        if extra:
            raise RequestError(f"{where}: unknown key {sorted(extra)[0]!r} (allowed: au, value, start, end)")
        o = parse_au(f"{item['au']}={item['value']}")
        out.append(AUOverride(o.au, o.value, _opt_time(item, "start", where), _opt_time(item, "end", where),
                              f"{o.au}={o.value}@{item.get('start') or ''}-{item.get('end') or ''}"))
    return out


__all__ = [
    "DEFAULT_RAMP",
    "AUOverride",
    "EditRequest",
    "Keyframe",
    "OverrideSegment",
    "Schedule",
    "Segment",
    "TimeSpec",
    "load_keyframe_file",
    "parse_au",
    "parse_emotion",
    "parse_intensity",
    "parse_ramp",
    "parse_request",
    "parse_time",
    "request_from_data",
]
