"""A file that is written piece by piece and appears at its path only when complete.

:func:`mlship.store.artifacts.atomic_write` covers content that is at hand in one go. Batch work
(a dataset ingested batch by batch, answers scored batch by batch) appends to a writer instead, so
the same promise is kept by a class: the pieces go to a temporary sibling, which is synced and
renamed over the path by :meth:`StagedFile.close` and removed by :meth:`StagedFile.abort` (or by
leaving the ``with`` block with an error). A crash leaves no half-written file under the path.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Self

from mlship.store.artifacts import fsync_directory


class StagedFile:
    """The temporary-file life cycle; subclasses write to ``temp`` and say how to finish
    (:meth:`_finish`) and drop (:meth:`_discard`) their own handles."""

    def __init__(self, path: Path, suffix: str = "tmp") -> None:
        self.path = path
        self.temp = path.with_name(f".{path.name}.{os.getpid()}.{suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)

    def _finish(self) -> None:
        """Write what is pending and close the handles; ``temp`` must then be complete."""

    def _discard(self) -> None:
        """Close the handles without finishing."""

    def close(self) -> None:
        """Finish, sync and move the file into place."""
        self._finish()
        with self.temp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(self.temp, self.path)
        fsync_directory(self.path.parent)

    def abort(self) -> None:
        """Drop the temporary file; the path keeps what it had."""
        try:
            self._discard()
        finally:
            self.temp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
