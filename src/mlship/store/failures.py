"""Storage failures turned into messages that name the store, the path and what to do.

A read-only mount, a full disk, a quota, a permission or a failing disk shows up deep inside a
write as an ``OSError`` whose text (``[Errno 30] Read-only file system``) says neither which store
it hit nor how to fix it. Each store wraps its file work in :meth:`Place.guard`, which turns those
errors (and only those: a missing file or a bad path are other kinds of problem) into a
:class:`~mlship.errors.StorageError`, so the command line prints one sentence instead of a
traceback. :func:`probe` writes, syncs, renames and deletes a small file, so a command that is
about to spend minutes training finds an unwritable store before it starts.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlship.errors import StorageError

_PROBLEMS = {
    errno.EROFS: "is read-only",
    errno.ENOSPC: "is full (no space left on the device)",
    errno.EDQUOT: "is over its disk quota",
    errno.EACCES: "refuses this user (permission denied)",
    errno.EPERM: "refuses this user (operation not permitted)",
    errno.EIO: "failed with an I/O error (a failing disk or a lost network mount)",
    errno.ENOTDIR: "is not a directory (a file is in its way)",
}
"""The errors that say a store cannot be used as it is, and how each is described."""


def is_full(code: int | None) -> bool:
    """Whether ``code`` says the store is out of space (a disk or a quota), not refusing."""
    return code in (errno.ENOSPC, errno.EDQUOT)


def is_storage_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says that a filesystem refused or failed (see the module docstring)."""
    return isinstance(exc, OSError) and exc.errno in _PROBLEMS


def _remedy(code: int | None, move: str) -> str:
    if code == errno.EROFS:
        return f"remount it read-write, or {move} a writable directory"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"free some space there, or {move} a directory on a larger disk"
    if code == errno.ENOTDIR:
        return f"move the file away, or {move} a directory"
    if code in (errno.EACCES, errno.EPERM):
        return (
            f"fix its permissions (the user running mlship must be able to read and write it), "
            f"or {move} a directory this user can write"
        )
    return "check the disk or the mount, then run the command again"


@dataclass(frozen=True)
class Place:
    """A store on disk as a user knows it: what it is, where, and the setting that moves it.

    >>> Place("the artifact store", Path("/x"), "MLSHIP_ARTIFACT_ROOT").describe(
    ...     OSError(30, "Read-only file system", "/x/incoming/a.tmp"))
    'the artifact store at /x is read-only (writing /x/incoming/a.tmp failed): remount it \
read-write, or set MLSHIP_ARTIFACT_ROOT to a writable directory'
    """

    what: str
    path: Path
    setting: str | None = None
    """The setting that moves the store elsewhere (None: the user chose the path directly)."""
    move: str | None = None
    """How to move it, when setting one variable to a directory does not say it (completed by
    "a writable directory" and the like)."""

    @property
    def _move(self) -> str:
        if self.move:
            return self.move
        return f"set {self.setting} to" if self.setting else "use"

    def describe(self, exc: OSError, doing: str = "writing") -> str:
        """What went wrong here and what to do; ``doing`` is what failed (writing, reading)."""
        problem = _PROBLEMS.get(exc.errno or 0, f"cannot be used ({exc.strerror or exc})")
        failed = os.fsdecode(exc.filename) if exc.filename is not None else str(self.path)
        detail = f" ({doing} {failed} failed)" if failed != str(self.path) else ""
        return f"{self.what} at {self.path} {problem}{detail}: {_remedy(exc.errno, self._move)}"

    def error(self, exc: OSError, doing: str = "writing") -> StorageError:
        return StorageError(self.describe(exc, doing), exc.errno)

    @contextmanager
    def guard(self, doing: str = "writing") -> Iterator[None]:
        """Turn a storage failure inside the block into a :class:`StorageError` about this place;
        every other error passes through unchanged."""
        try:
            yield
        except OSError as exc:
            if not is_storage_failure(exc):
                raise
            raise self.error(exc, doing) from exc


def anywhere(exc: OSError) -> StorageError:
    """The message of a storage failure that no store claimed: the path, what is wrong with it
    and what to do, with the directory as the place."""
    where = Path(os.fsdecode(exc.filename)) if exc.filename is not None else None
    if where is None:
        problem = _PROBLEMS.get(exc.errno or 0, "failed")
        return StorageError(
            f"the filesystem mlship was using {problem}: {_remedy(exc.errno, 'use')}", exc.errno
        )
    return Place("the directory", where.parent).error(exc, "using")


def probe(place: Place, directory: Path | None = None) -> None:
    """Write a small file in ``directory`` (``place.path`` by default), sync it, rename it and
    delete it; raise :class:`StorageError` naming ``place`` when any step fails.

    The steps are the ones every atomic write takes, so a store that passes can take a real
    write (unless it fills up in between). The directory is created when missing, as a write
    would create it.
    """
    folder = directory if directory is not None else place.path
    name = f".mlship-probe-{os.getpid()}-{secrets.token_hex(4)}"
    with place.guard():
        if folder.exists() and not folder.is_dir():
            raise OSError(errno.ENOTDIR, "Not a directory", str(folder))
        folder.mkdir(parents=True, exist_ok=True)
        first, second = folder / f"{name}.tmp", folder / name
        try:
            fd = os.open(first, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, b"mlship write probe\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(first, second)
        finally:
            first.unlink(missing_ok=True)
            second.unlink(missing_ok=True)
