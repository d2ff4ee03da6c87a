"""An exclusive lock between processes, held on a file while a workspace is first set up.

Several commands may start at once on a workspace nobody has used yet (a CI matrix, a batch of
training jobs): each would create the database schema and the keys. The steps that create
something once take :func:`file_lock` on a lock file in the workspace home, so one process creates
and the others, once they get the lock, find the work done. The lock is ``flock`` on POSIX: the
kernel releases it when its holder exits or is killed, so a crash never leaves a stale lock
behind, and the lock file itself (empty) is never deleted, so every process locks the same file.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlship.store.failures import Place


@contextmanager
def file_lock(path: Path, place: Place | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created when missing, mode 0600) for the block.

    Blocks until the lock is free. ``place`` names the store in the error raised when the lock
    file cannot be created (a read-only or full home)."""
    where = place or Place("the workspace home", path.parent, "MLSHIP_HOME")
    with where.guard():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
