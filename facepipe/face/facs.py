"""FACS action units as the face rig names them: rig AU names <-> FACS numbers and sides, and
the AUs that carry speech.

The rig names its AU columns ``AU<number>[R|L]`` (``AU12R`` is the subject's right lip-corner
puller, ``AU25`` the bilateral lips part). :func:`rig_index` groups a rig's columns by FACS
number and side, :func:`expand_key` maps a (number, side) key onto those columns (the L/R
expansion step) and :func:`columns_of` picks every column of a set of FACS numbers.

:data:`SPEECH_AUS` are the AUs whose motion is speech: lips part 25, jaw drop 26, mouth stretch
27, and the lip shapes pucker 18, funneler 22, tightener 23, pressor 24, suck 28, plus chin
raiser 17, which pushes the lower lip up in /m b p f/ closures. The edit planner keeps them from
the source (:mod:`facepipe.plan.emotions`), and appearance transfer only takes mouth donors whose
speech AUs match the current frame's (:mod:`facepipe.render.transfer_plan`).

No torch: the CLI imports this (through :mod:`facepipe.plan`) before anything heavy loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

#: FACS numbers of the AUs that carry speech.
SPEECH_AUS: frozenset[int] = frozenset({17, 18, 22, 23, 24, 25, 26, 27, 28})

_AU_NAME = re.compile(r"^AU(\d+)([RL]?)$", re.IGNORECASE)

# An AU key: (FACS number, side) with side "" (both sides), "R" or "L".
AUKey = tuple[int, str]


def parse_au_name(name: str) -> AUKey:
    """``"AU12R"`` -> ``(12, "R")``, ``"au25"`` -> ``(25, "")``; ValueError if not an AU name."""
    m = _AU_NAME.match(name.strip())
    if not m:
        raise ValueError(f"not an AU name: {name!r}")
    return int(m[1]), m[2].upper()


def rig_index(au_names: Sequence[str]) -> dict[int, dict[str, int]]:
    """FACS number -> {side ("" for a bilateral AU, "R", "L") -> column in ``au_names``}.

    Names that are not ``AU<n>[R|L]`` are ignored (the planner never changes them).
    """
    out: dict[int, dict[str, int]] = {}
    for k, name in enumerate(au_names):
        try:
            num, side = parse_au_name(name)
        except ValueError:
            continue
        out.setdefault(num, {})[side] = k
    return out


def expand_key(key: AUKey, index: Mapping[int, Mapping[str, int]]) -> list[tuple[int, float]]:
    """Rig columns a table key acts on, each with a gain: the L/R expansion step.

    ``(12, "")`` -> both AU12L and AU12R (gain 1) when the rig has sides, AU12 when not;
    ``(12, "R")`` -> AU12R, or the bilateral AU12 at gain 0.5 when the rig has no sides.
    Empty when the rig lacks the AU.
    """
    num, side = key
    cols = index.get(num, {})
    if not side:
        if "" in cols:
            return [(cols[""], 1.0)]
        return [(c, 1.0) for s, c in sorted(cols.items()) if s in ("L", "R")]
    if side in cols:
        return [(cols[side], 1.0)]
    if "" in cols:
        return [(cols[""], 0.5)]
    return []


def columns_of(numbers: Iterable[int], au_names: Sequence[str]) -> list[int]:
    """Rig columns whose FACS number is in ``numbers`` (all sides)."""
    wanted = set(numbers)
    return [c for num, sides in rig_index(au_names).items() if num in wanted for c in sides.values()]
