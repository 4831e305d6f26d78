"""Emotion -> FACS action-unit targets (EMFACS prototypes), keyed by plain FACS numbers.

The tables here know nothing about the face rig: AUs are FACS numbers, optionally with a side
(``"R12"`` is the subject's right lip-corner puller). :func:`expand_to_rig` maps them onto the
rig's AU names (``AU12`` -> ``AU12L`` + ``AU12R`` when the rig models the sides separately,
``R12`` -> ``AU12R``), so the rig may rename or split AUs without touching the tables.

Sources: the prototypes of EMFACS-7 (Friesen & Ekman 1983) as listed in the FACS Investigator's
Guide (Ekman, Friesen & Hager 2002, table 10-1) and Matsumoto & Ekman's emotion prototypes:

=========  ==========================  =====================================================
emotion    EMFACS prototype            target used here (intensity letter per AU)
=========  ==========================  =====================================================
neutral    (none)                      every emotional AU relaxed to 0
happy      6+12                        6E + 12E
sad        1+4+15                      1E + 4C + 15D
surprised  1+2+5B+26                   1E + 2E + 5C + 26C
fearful    1+2+4+5+7+20+26             1C + 2C + 4C + 5C + 7C + 20C + 26C
angry      4+5+7+23                    4D + 5C + 7C + 23C
disgusted  9+15+16 (variant 10+16)     9C + 10B + 15C + 16C
contempt   R12A+R14A (unilateral)      R12B + R14B
=========  ==========================  =====================================================

FACS intensity letters map to 0..1 as A trace 0.2, B slight 0.4, C marked 0.6, D severe 0.8,
E maximum 1.0, in the units the fit reads AUs in (:mod:`facepipe.face.fit`). The EMFACS letters
are minimum criteria for coding an emotion; the targets here are what real actors make.

**Intensity 1 is the real peak** (issue 18). Happy, sad and surprised are calibrated against the
real expressions in the shared footage, read by the project's own fit
(``benchmarks/expression_amplitudes.py``, 90th percentile over the expression's frames):
smiles read AU12 1.00 and AU6 1.00 (lp_d19, lp_d0 0.98 / 0.80), brow raises AU1 1.00 and AU2 1.00
(lp_d7, lp_d9, lp_d10), frowns AU4 1.00 (lp_d8), lowered lip corners AU15 0.79 (lp_d18): so 6E,
12E, 1E, 2E, 15D. The edited mesh draws each AU's change times its edit gain
(:data:`facepipe.render.geometry.EDIT_GAIN`), so that the edit reads back what it plans where
that costs nothing else: the brows and lowered corners read back 0.96-1.00 of the real peaks; the
smile (0.68-0.72) and the cheeks (0.57) are held lower by speech and temporal stability
(AUS.md, "Edit gains"). Two AUs the fit cannot read back set their letters by what the warp draws
instead:

- sad's 4C: in 1+4 AU1 owns the inner brow's vertical motion (the rig's corrective), and the fit
  reads AU4 from what remains (the pull to the midline, the lowered middle of the brow) at 0.17 of
  a 4C and 0.61 of a 4E even on noiseless landmarks drawn from the rig; on edits, at 0. C (EMFACS's
  letter) with the gain draws the oblique brow of sadness; more AU4 flattens it into a frown.
- surprise's 5C: the fit reads AU5 at 0 on every real surprise (lp_d7 0.01) and on the rig's own
  landmarks (5E alone reads 0.00): the lid moves 0.014 IOD per unit, below its sparsity prior.
  Real surprises open the eye by 0.03-0.045 IOD as tracked (lp_d7: upper lid +0.017, lower lid
  -0.022); the rig's AU5 lifts only the upper lid, so the edited mesh adds the lower lid's drop
  to AU5's change (:data:`facepipe.render.geometry.EDIT_SHAPES`). 5C with its gain (3) opens the
  eye by 0.033 IOD as tracked (median of 4 talking clips; real surprises and brow raises 0.015-0.035);
  a larger gain stretched the iris. The raise yields to blinks
  (:func:`facepipe.plan.planner.yield_to_blink`).

``--intensity`` scales the change from the actor's own expression toward the target linearly, so
0.5 is half the real peak; above 1 it exaggerates, still linearly (targets above 1), up to
:data:`MAX_INTENSITY` = 1.5. Where the warp stops: its fold-free limiter scales an edit down on
frames where triangles would fold. At 1 nothing is scaled on the four benchmark clips
(``benchmarks/expression_amplitudes.py``); at 1.5 the smile is scaled on hdtf_edmarkey (10 of 40
frames, worst 0.92 of the plan) and sad on lp_d3 (14 frames, worst 0.41), the rest is drawn in
full.
Above 1 the tracker also sees less than is drawn (the fit's AUs end at 1), so intensities above 1
are for the eye, not for the harness.

Some prototype AUs never reach the output on a talking actor: speech owns the mouth. The AUs
that carry speech (:data:`facepipe.face.facs.SPEECH_AUS`: lips part 25, jaw drop 26, mouth
stretch 27, and the lip shapes pucker 18, funneler 22, tightener 23, pressor 24, suck 28, plus
chin raiser 17, which pushes the lower lip up in /m b p f/ closures) always keep the source's
values, so surprise loses its 26 (the jaw follows the dialogue), fear its 26 and anger its 23. The planner takes
the speech set as a parameter for shots without dialogue. AU20 (lip stretcher) also spreads the
lips in /i/ but is fear's signature, so it counts as emotional. AU16 (disgust) only acts when
the rig models it; an AU the rig lacks is dropped when the table is expanded to the rig.

AUs in neither :data:`SPEECH_AUS` nor :data:`EMOTIONAL_AUS` (blink 45, jaw sideways 30, cheek
puff 34, gaze, ...) are the actor's own business: the planner never changes them.

How rig AU names map to FACS numbers and sides (:func:`rig_index`, :func:`expand_key`,
:func:`columns_of`) and which AUs carry speech are facts about the face, defined in
:mod:`facepipe.face.facs`; they are imported (and re-exported) here for the planner.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from facepipe.errors import RequestError
from facepipe.face.facs import (  # noqa: F401 - re-exported: the planner's vocabulary
    SPEECH_AUS,
    AUKey,
    columns_of,
    expand_key,
    parse_au_name,
    rig_index,
)

#: The highest ``--intensity`` (and keyframe intensity): 1 is the real peak of each emotion; above
#: it the edit exaggerates linearly (targets may exceed 1) up to this limit (module docstring).
MAX_INTENSITY: float = 1.5

#: FACS intensity letters -> 0..1.
INTENSITY_LETTERS: dict[str, float] = {"A": 0.2, "B": 0.4, "C": 0.6, "D": 0.8, "E": 1.0}

#: The EMFACS prototype each emotion is built from (documentation; see the module docstring).
EMFACS_SOURCE: dict[str, str] = {
    "neutral": "",
    "happy": "6+12",
    "sad": "1+4+15",
    "surprised": "1+2+5B+26",
    "fearful": "1+2+4+5+7+20+26",
    "angry": "4+5+7+23",
    "disgusted": "9+15+16",
    "contempt": "R12A+R14A",
}

#: The targets, in FACS notation: ``[R|L]<number><letter>`` joined by ``+``.
PROTOTYPE_CODES: dict[str, str] = {
    "neutral": "",
    "happy": "6E+12E",
    "sad": "1E+4C+15D",
    "surprised": "1E+2E+5C+26C",
    "fearful": "1C+2C+4C+5C+7C+20C+26C",
    "angry": "4D+5C+7C+23C",
    "disgusted": "9C+10B+15C+16C",
    "contempt": "R12B+R14B",
}

EMOTIONS: tuple[str, ...] = tuple(PROTOTYPE_CODES)

#: Accepted spellings of the emotion names (nouns, short forms).
ALIASES: dict[str, str] = {
    "happiness": "happy", "joy": "happy", "sadness": "sad", "surprise": "surprised",
    "fear": "fearful", "afraid": "fearful", "anger": "angry", "disgust": "disgusted", "none": "neutral",
}

#: FACS numbers of the AUs that carry emotion: the planner moves them toward the prototype.
EMOTIONAL_AUS: frozenset[int] = frozenset({1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 20})

_CODE = re.compile(r"^([RL]?)(\d+)([A-E]?)$")


def parse_facs_code(code: str) -> dict[AUKey, float]:
    """``"R12B+R14B"`` -> ``{(12, "R"): 0.4, (14, "R"): 0.4}``; a missing letter means E (1.0)."""
    out: dict[AUKey, float] = {}
    for part in filter(None, (p.strip() for p in code.split("+"))):
        m = _CODE.match(part.upper())
        if not m:
            raise ValueError(f"bad FACS code {part!r} in {code!r}")
        out[(int(m[2]), m[1])] = INTENSITY_LETTERS[m[3] or "E"]
    return out


def canonical_emotion(name: str) -> str:
    """The table's name for ``name`` (case-insensitive, aliases accepted); RequestError if unknown."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in PROTOTYPE_CODES:
        raise RequestError(f"unknown emotion {name!r}: use one of {', '.join(EMOTIONS)}")
    return key


def prototype(emotion: str) -> dict[AUKey, float]:
    """AU targets of ``emotion`` at intensity 1 keyed by (FACS number, side), intensities 0..1."""
    return parse_facs_code(PROTOTYPE_CODES[canonical_emotion(emotion)])


def expand_to_rig(table: Mapping[AUKey, float], au_names: Sequence[str]) -> dict[int, float]:
    """A (FACS number, side) table -> {rig column: value}; AUs the rig lacks are dropped."""
    index = rig_index(au_names)
    out: dict[int, float] = {}
    for key, value in table.items():
        for col, gain in expand_key(key, index):
            out[col] = value * gain
    return out
