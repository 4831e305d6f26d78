"""Content-addressed cache of analysis artifacts in a work directory.

A key (:func:`facepipe.pipeline.hashing.cache_key`) is the hash of the stage's name, parameters,
code version and the keys of its inputs, the way a compositing node graph caches by hash.
Entries are written to a temporary directory and renamed into place, so a killed run never
leaves a half-written entry that a later run would trust.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TypeVar

from safetensors import SafetensorError

from facepipe.errors import FacepipeError
from facepipe.pipeline.artifacts import Artifact

A = TypeVar("A", bound=Artifact)


class ArtifactCache:
    """Artifacts stored under ``root/<name>/<key>/``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _dir(self, name: str, key: str) -> Path:
        return self.root / name / key

    def get(self, name: str, key: str, artifact_type: type[A]) -> A | None:
        directory = self._dir(name, key)
        if not (directory / "complete").exists():
            return None
        return artifact_type.load(directory)

    def put(self, name: str, key: str, artifact: Artifact) -> None:
        final = self._dir(name, key)
        tmp = None
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
            artifact.save(tmp)
            (tmp / "complete").write_text("1")
            if final.exists():  # a concurrent run (farm) finished the same entry first
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, final)
        except (OSError, SafetensorError) as exc:  # safetensors reports a full disk as its own error
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise FacepipeError(
                f"cannot write the analysis cache in {self.root} ({exc}); free space or pass --workdir elsewhere"
            ) from exc
        except BaseException:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
