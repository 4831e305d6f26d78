"""Typed artifacts: the small per-shot results that stages hand to each other and the cache keeps.

An artifact is a dataclass. Fields holding numpy arrays are stored together in one
``arrays.safetensors`` file; every other field must be JSON-serialisable and goes to
``meta.json``. Fractions are stored as strings and restored from the type annotation.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from fractions import Fraction
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

ARRAYS_FILE = "arrays.safetensors"
META_FILE = "meta.json"


class Artifact:
    """Base class for artifact dataclasses; subclasses add fields, nothing else needed."""

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        arrays, meta = {}, {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                arrays[f.name] = np.ascontiguousarray(value)
            elif isinstance(value, Fraction):
                meta[f.name] = str(value)
            else:
                meta[f.name] = value
        save_file(arrays, str(directory / ARRAYS_FILE))
        (directory / META_FILE).write_text(json.dumps(meta, indent=1, default=_json_default))

    @classmethod
    def load(cls, directory: Path):
        arrays = load_file(str(directory / ARRAYS_FILE))
        meta = json.loads((directory / META_FILE).read_text())
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in arrays:
                kwargs[f.name] = arrays[f.name]
            elif f.name in meta:
                value = meta[f.name]
                kwargs[f.name] = Fraction(value) if hints.get(f.name) is Fraction else value
        return cls(**kwargs)


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Fraction):
        return str(value)
    raise TypeError(f"artifact field of type {type(value).__name__} is not serialisable")
