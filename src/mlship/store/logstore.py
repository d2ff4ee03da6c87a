"""Where the logs' Parquet parts live: one interface over the workspace's home, whichever it is.

The prediction logs (``predictions/<deployment>``, ``predictions/batch``) and the stored labels
(``feedback``) are append-only sets of parts. Every replica of a server, every worker and every
``mlship predict`` writes parts of its own, and monitoring reads all of them, so the parts live
where the artifacts do: the local home, S3-compatible object storage (``store/s3logs.py``) or a
tracking server (``remote/logparts.py``). :class:`LogStore` is what writers and readers see:

- :meth:`~LogStore.put` makes a whole part visible at once (a local rename, a single PUT), never
  half of one, and never replaces another part: names carry the time, the host, the process id
  and a sequence number (:func:`part_name`), so two replicas never collide.
- :meth:`~LogStore.parts` lists a log's parts, oldest first; ``since`` leaves out parts written
  before a time. A part holds rows logged before it was written, so a part named before
  ``since`` holds no row at or after it: the filter never loses a wanted row.
- :meth:`~LogStore.read` gives a part's bytes as stored (sealed: ``store/parts.py`` decrypts);
  :meth:`~LogStore.delete` removes parts (compaction, after their rows are in a merged part).

Stores move bytes only: sealing (encryption) happens before :meth:`put` and after :meth:`read`,
with the writer's and reader's keys, so no store ever sees a log in the clear.
"""

from __future__ import annotations

import abc
import itertools
import os
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from mlship.store.artifacts import atomic_write

PREDICTIONS = "predictions"
"""The folder of the prediction logs: ``predictions/<deployment>`` and ``predictions/batch``."""
FEEDBACK = "feedback"
"""The log of stored labels."""
USAGE = "usage"
"""The log of the usage ledger (``costs/ledger.py``)."""

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_LOG = re.compile(rf"{_SEGMENT}(/{_SEGMENT}){{0,2}}")
_PART = re.compile(r"part-([0-9]{1,20})-[A-Za-z0-9._-]{1,200}\.parquet")


def check_log(log: str) -> str:
    """``log`` when it is a log's name (one to three ``/``-separated plain names), else a
    ValueError: names reach paths and keys, so nothing like ``..`` gets through."""
    if not _LOG.fullmatch(log) or ".." in log:
        raise ValueError(
            f"{log!r} is not a log name (names of letters, digits, '.', '_' and '-', "
            "separated by '/', such as predictions/churn)"
        )
    return log


def check_part(name: str) -> str:
    """``name`` when it is a part's name (``part-<time>-....parquet``), else a ValueError."""
    if not _PART.fullmatch(name) or ".." in name:
        raise ValueError(f"{name!r} is not a log part name (part-<nanoseconds>-....parquet)")
    return name


def part_time_ns(name: str) -> int:
    """When the part was written (nanoseconds since the epoch), from its name."""
    found = _PART.fullmatch(name)
    return int(found.group(1)) if found else 0


_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


_SEQUENCE = itertools.count(1)
"""Parts this process has named, whichever log they are of."""


def this_writer() -> str:
    """This host and process, as part names carry them."""
    return f"{_HOST}-{os.getpid()}"


def part_name(
    at_ns: int | None = None,
    *,
    tag: str = "",
    writer: str | None = None,
    sequence: int | None = None,
) -> str:
    """A new part's name, unique across hosts, processes and this process's parts: written at
    ``at_ns`` (now by default), by this host and process, with the process's next sequence
    number (after ``tag``, which marks parts of another kind, such as merged ones). A part
    whose name must come out the same every time it is written (one converted from a
    write-ahead segment) gives its ``writer`` and ``sequence``."""
    at = time.time_ns() if at_ns is None else at_ns
    who = this_writer() if writer is None else writer
    number = next(_SEQUENCE) if sequence is None else sequence
    return f"part-{at:019d}-{who}-{tag}{number:06d}.parquet"


@dataclass(frozen=True, order=True)
class PartRef:
    """One part of one log."""

    log: str
    name: str

    @property
    def written_ns(self) -> int:
        return part_time_ns(self.name)


def written_since(name: str, since: datetime | None) -> bool:
    return since is None or part_time_ns(name) >= int(since.timestamp() * 1e9)


class LogStore(Protocol):
    """The parts of the workspace's logs, wherever they are (see the module docstring)."""

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """The store as a user knows it (a directory, ``s3://bucket/prefix``, a server's URL)."""

    @abc.abstractmethod
    def put(self, log: str, name: str, data: bytes) -> None:
        """Store one whole part (sealed bytes) under ``log``; visible all at once or not at all."""

    @abc.abstractmethod
    def parts(self, log: str, since: datetime | None = None) -> list[PartRef]:
        """The parts of ``log`` (none when it has none yet), oldest first."""

    @abc.abstractmethod
    def logs(self, under: str) -> list[str]:
        """The logs in the folder ``under`` (``predictions``: one per deployment, and batch)."""

    @abc.abstractmethod
    def read(self, part: PartRef) -> bytes:
        """The stored (sealed) bytes of ``part``."""

    @abc.abstractmethod
    def delete(self, parts: Sequence[PartRef]) -> None:
        """Remove ``parts`` (a part already gone is not an error)."""

    def local_path(self, part: PartRef) -> Path | None:
        """The part's file when it is on this machine's disk (a reader then scans only what it
        needs of it), else None."""
        return None

    def sizes(self, log: str) -> dict[str, int] | None:
        """The bytes each part of ``log`` takes in the store, by part name, for what storage
        costs; None when the store cannot tell without reading every part (a tracking server's).
        Parts on this machine's disk are measured where they are."""
        found: dict[str, int] = {}
        for part in self.parts(log):
            path = self.local_path(part)
            if path is None:
                return None
            try:
                found[part.name] = path.stat().st_size
            except FileNotFoundError:
                continue  # compacted away since the listing
        return found

    def location(self, log: str) -> str:
        """Where ``log``'s parts are, for messages."""
        return f"{self.where.rstrip('/')}/{log}"


class LocalLogStore(LogStore):
    """Parts as files ``<root>/<log>/part-....parquet``, written to a temporary file, synced and
    renamed (``atomic_write``). OSErrors pass through: writers describe them with the folder
    and the setting that moves it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_directory(cls, directory: Path) -> tuple[LocalLogStore, str]:
        """The store and log name of a log kept in ``directory`` (a deployment's
        ``log.directory``, whatever its name)."""
        return FolderLogStore(directory), FolderLogStore.LOG

    @property
    def where(self) -> str:
        return str(self.root)

    def location(self, log: str) -> str:
        return str(self.directory(log))

    def directory(self, log: str) -> Path:
        return self.root / check_log(log)

    def put(self, log: str, name: str, data: bytes) -> None:
        atomic_write(self.directory(log) / check_part(name), [data])

    def parts(self, log: str, since: datetime | None = None) -> list[PartRef]:
        directory = self.directory(log)
        if not directory.is_dir():
            return []
        names = sorted(path.name for path in directory.glob("part-*.parquet"))
        return [PartRef(log, n) for n in names if _PART.fullmatch(n) and written_since(n, since)]

    def logs(self, under: str) -> list[str]:
        folder = self.directory(under)
        if not folder.is_dir():
            return []
        return sorted(
            f"{under}/{path.name}"
            for path in folder.iterdir()
            if path.is_dir() and re.fullmatch(_SEGMENT, path.name)
        )

    def read(self, part: PartRef) -> bytes:
        return self._path(part).read_bytes()

    def delete(self, parts: Sequence[PartRef]) -> None:
        for part in parts:
            self._path(part).unlink(missing_ok=True)

    def local_path(self, part: PartRef) -> Path:
        return self._path(part)

    def _path(self, part: PartRef) -> Path:
        return self.directory(part.log) / check_part(part.name)


class FolderLogStore(LocalLogStore):
    """One log in a folder of its own, named by whoever chose it (``log.directory`` in a
    deployment file): its parts are ``<folder>/part-....parquet``."""

    LOG = "log"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder.parent)
        self.folder = folder

    @property
    def where(self) -> str:
        return str(self.folder)

    def directory(self, log: str) -> Path:
        check_log(log)
        return self.folder

    def logs(self, under: str) -> list[str]:
        return [self.LOG]


def prediction_logs(store: LogStore) -> list[str]:
    """Every prediction log in ``store``: one per deployment, and batch scoring's."""
    return store.logs(PREDICTIONS)


@dataclass(frozen=True)
class LogTarget:
    """One log in one store: what a writer appends to and a reader of that log reads."""

    store: LogStore
    log: str

    @classmethod
    def of(cls, target: Path | LogTarget) -> LogTarget:
        """``target`` itself, or the log kept in the directory ``target``."""
        if isinstance(target, LogTarget):
            return target
        store, log = LocalLogStore.for_directory(target)
        return cls(store, log)

    @property
    def where(self) -> str:
        return self.store.location(self.log)

    @property
    def directory(self) -> Path | None:
        """The log's folder when it is on this machine's disk."""
        return self.store.directory(self.log) if isinstance(self.store, LocalLogStore) else None
