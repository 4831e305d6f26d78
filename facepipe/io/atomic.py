"""Outputs appear complete or not at all: written to a temporary name beside the target, then renamed."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from facepipe.errors import FacepipeError, OutputExistsError

TMP_MARK = ".facepipe-tmp"


def check_output_path(out: Path, force: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Refuse outputs that would overwrite an input, an existing file (without force), or can't be written."""
    for src in inputs:
        if out.resolve() == src.resolve() or (out.exists() and src.exists() and os.path.samefile(out, src)):
            raise FacepipeError(f"the output {out} is the input file; choose another --out")
    if out.exists() and not force:
        raise OutputExistsError(f"{out} exists; pass --force to overwrite it")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise FacepipeError(f"cannot write {out}: {parent} {what}")
    if not os.access(parent, os.W_OK):
        raise FacepipeError(f"cannot write {out}: the directory {parent} is not writable")


class StagedFile:
    """A temporary path beside ``out`` that becomes ``out`` on :meth:`commit`.

    As a context manager it commits when the block succeeds and discards otherwise; OS errors
    (disk full, permissions) become one-line :class:`FacepipeError` s.
    """

    def __init__(self, out: Path):
        self.out = Path(out)
        try:
            fd, name = tempfile.mkstemp(
                prefix=f".{self.out.stem}.", suffix=f"{TMP_MARK}{self.out.suffix}", dir=self.out.parent or "."
            )
        except OSError as exc:  # read-only or pseudo file system, permissions, disk full
            raise write_error(self.out, exc) from exc
        os.close(fd)
        self.tmp = Path(name)
        os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode

    def commit(self) -> None:
        os.replace(self.tmp, self.out)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.commit()
                return
            except OSError as err:
                exc = err
        self.discard()
        if isinstance(exc, OSError):
            raise write_error(self.out, exc) from exc


class StagedDir:
    """A temporary folder beside ``out`` that replaces ``out`` (a folder, if it exists) when the
    ``with`` block succeeds, and is removed when it fails: a folder of outputs appears complete
    or not at all."""

    def __init__(self, out: Path):
        self.out = Path(out)
        try:
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=TMP_MARK, dir=self.out.parent or "."))
        except OSError as exc:
            raise write_error(self.out, exc) from exc
        os.chmod(self.tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs get the usual mode

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                if self.out.is_dir():
                    shutil.rmtree(self.out)
                os.replace(self.tmp, self.out)
                return
            except OSError as err:
                exc = err
        shutil.rmtree(self.tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_error(self.out, exc) from exc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_error(out: Path, exc: OSError) -> FacepipeError:
    """A one-line user error for an OS-level write failure (disk full, quota, permissions)."""
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EFBIG: "the file grew past the allowed size (disk full or file size limit)",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EROFS: "the file system is read-only",
    }
    reason = reasons.get(exc.errno, exc.strerror or str(exc))
    return FacepipeError(f"cannot write {out}: {reason}; no output was left behind")
