"""Content hashes that name cached artifacts: a stage invocation's key and a source clip's key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from facepipe.io.media import MediaInfo


def cache_key(name: str, version: str, params: dict, input_keys: dict[str, str]) -> str:
    """Stable hex key for a stage invocation: its name, code version, parameters and the keys of
    its inputs (change any of them and the stage re-runs)."""
    blob = json.dumps(
        {"stage": name, "version": version, "params": params, "inputs": input_keys},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def source_key(info: MediaInfo) -> str:
    """Identity of the source clip: its size, head and tail bytes and frame timestamps.

    Content-based rather than path/mtime-based, so a clip copied to a farm node keeps its key.
    """
    h = hashlib.sha256()
    path = Path(info.path)
    size = path.stat().st_size
    h.update(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    h.update(np.asarray(info.frame_pts, np.int64).tobytes())
    return h.hexdigest()[:32]
