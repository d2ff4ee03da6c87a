"""The prediction log's write-ahead file: every answered prediction on disk before the answer.

Without it, rows wait in memory for up to ``flush_seconds`` (or ``flush_rows``) before a part is
written, and a process killed outright (SIGKILL, the OOM killer, a lost machine) loses them.
With it (``mlship serve --write-ahead-log``, ``log: {write_ahead: true}``), each request's rows
are appended to a local file and fsynced before the request is answered. Requests that arrive
together share one fsync (group commit): a thread writes whatever has queued since its last
sync, syncs once, and releases all of those requests, so throughput holds under load.

Files are *segments* in one folder per deployment: ``wal-<created>-<host>-<pid>-<seq>.log``,
each a run of records ``[length: 4 bytes][crc32: 4 bytes][JSON list of rows]``. The process
that writes a segment holds an exclusive ``flock`` on it; at every flush it closes its segment,
opens the next, and turns every segment nobody holds (its own closed ones, and those a dead
process left) into a Parquet part, then deletes the segment. The part's name comes from the
segment's name and its last row's time, so converting a segment twice (a crash between "part
stored" and "segment deleted", or two processes converting at once) stores the same part under
the same name again: the log store's put replaces it whole, and no row is ever there twice. A
record cut short by a crash (a torn tail) is ignored with a warning: its request was never
answered, since answers wait for the sync.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from mlship.store.artifacts import atomic_write
from mlship.store.failures import Place
from mlship.store.logstore import part_name, this_writer

logger = logging.getLogger("mlship.monitor.wal")

_HEADER = struct.Struct(">II")
_SEGMENT = re.compile(r"wal-([0-9]{19})-([A-Za-z0-9]{1,32})-([0-9]{1,10})-([0-9]{6})\.log")
_SEQUENCE = iter(range(1, 10**6))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Row = tuple[Any, ...]
DESTINATION = "destination.json"
"""The file of a write-ahead folder that says where its parts go."""


@dataclass(frozen=True)
class Destination:
    """Where the parts of a write-ahead folder go: a log of the workspace's log store, or a
    folder of its own (a deployment's ``log.directory``)."""

    log: str | None = None
    directory: Path | None = None

    def as_dict(self) -> dict[str, str]:
        if self.directory is not None:
            return {"directory": str(self.directory.resolve())}
        assert self.log is not None
        return {"log": self.log}

    @classmethod
    def of(cls, folder: Path) -> Destination | None:
        """The destination noted in ``folder``, None when there is none (or not one of ours)."""
        try:
            found = orjson.loads((folder / DESTINATION).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if isinstance(found, dict) and isinstance(found.get("directory"), str):
            return cls(directory=Path(found["directory"]))
        if isinstance(found, dict) and isinstance(found.get("log"), str):
            return cls(log=found["log"])
        return None


@dataclass(frozen=True)
class Segment:
    """One closed (or orphaned) segment, locked by the process converting it."""

    path: Path
    rows: list[Row]

    @property
    def part(self) -> str:
        """The name of the part holding its rows: the same every time it is converted."""
        found = _SEGMENT.fullmatch(self.path.name)
        assert found is not None
        created, host, pid, seq = found.groups()
        last = max(row[1] for row in self.rows)
        at_ns = (last - _EPOCH) // timedelta(microseconds=1) * 1000
        return part_name(at_ns, tag=f"w{created}-", writer=f"{host}-{pid}", sequence=int(seq))


class WriteAheadLog:
    """Segments in ``directory`` (see the module docstring): appended to by this process,
    converted by whichever process finds them unheld."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._queue: list[tuple[bytes, Future[None]]] = []
        self._queued = threading.Condition()
        self._file_lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._stop = False
        self._thread: threading.Thread | None = None
        self.syncs = 0
        """fsyncs so far (fewer than requests when they share them)."""

    @property
    def where(self) -> str:
        return str(self.directory)

    def check(self) -> None:
        """A StorageError naming the folder and what to do when segments cannot be written
        there (checked before a server starts, so it fails with a message, not a traceback)."""
        probe = self.directory / f".probe-{this_writer()}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.close(fd)
            probe.unlink()
        except OSError as exc:
            place = Place("the write-ahead log", self.directory, move="give --wal-dir")
            raise place.error(exc) from None

    def start(self, destination: Destination) -> None:
        """Open the first segment and start syncing; note where the segments' parts go, for a
        process that converts them without serving (``mlship monitor compact``)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        marker = self.directory / DESTINATION
        text = orjson.dumps(destination.as_dict())
        if not marker.is_file() or marker.read_bytes() != text:
            atomic_write(marker, [text])
        self._open_segment()
        self._thread = threading.Thread(target=self._sync_loop, name="mlship-wal", daemon=True)
        self._thread.start()

    def append(self, rows: list[Row]) -> Future[None]:
        """Queue one request's rows; the future is done once they are on disk (or failed)."""
        payload = orjson.dumps([_encoded(row) for row in rows])
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        done: Future[None] = Future()
        with self._queued:
            if self._stop:
                raise RuntimeError("the write-ahead log is closed")
            self._queue.append((record, done))
            self._queued.notify()
        return done

    def rotate(self) -> None:
        """Close the segment being written (when it holds anything) and open the next one."""
        with self._file_lock:
            if self._size == 0:
                return
            self._close_segment()
            self._open_segment()

    def close(self) -> None:
        """Write and sync what is queued, then close the segment (it is converted by
        :meth:`claim`, now or by the next process)."""
        with self._queued:
            self._stop = True
            self._queued.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._file_lock:
            self._close_segment()

    def claim(self) -> Iterator[Segment]:
        """Every segment of the folder that no live process writes, locked while the caller
        converts it (the caller deletes it with :meth:`done` once its part is stored)."""
        for path in sorted(self.directory.glob("wal-*.log")):
            if path == self._path or not _SEGMENT.fullmatch(path.name):
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # converted meanwhile by another process
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process writes it
                yield Segment(path, _read(path, fd))
            finally:
                os.close(fd)

    def done(self, segment: Segment) -> None:
        """Delete a converted segment."""
        segment.path.unlink(missing_ok=True)

    def _open_segment(self) -> None:
        name = f"wal-{time.time_ns():019d}-{this_writer()}-{next(_SEQUENCE):06d}.log"
        temporary = self.directory / f".{name}.new"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # held before the name is visible: never claimed live
        final = self.directory / name
        os.rename(temporary, final)
        _sync_directory(self.directory)
        self._fd, self._path, self._size = fd, final, 0

    def _close_segment(self) -> None:
        if self._fd is None:
            return
        os.close(self._fd)  # releases the lock: the segment can be converted now
        if self._size == 0 and self._path is not None:
            self._path.unlink(missing_ok=True)
        self._fd, self._path, self._size = None, None, 0

    def _sync_loop(self) -> None:
        while True:
            with self._queued:
                while not self._queue and not self._stop:
                    self._queued.wait()
                batch, self._queue = self._queue, []
                stopping = self._stop
            if batch:
                self._write(batch)
            if stopping and not batch:
                return

    def _write(self, batch: list[tuple[bytes, Future[None]]]) -> None:
        data = b"".join(record for record, _ in batch)
        try:
            with self._file_lock:
                if self._fd is None:  # opening the next segment failed: try again
                    self._open_segment()
                assert self._fd is not None
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                os.fsync(self._fd)
                self._size += len(data)
                self.syncs += 1
        except OSError as exc:
            for _, done in batch:
                done.set_exception(exc)
            return
        for _, done in batch:
            done.set_result(None)


def _read(path: Path, fd: int) -> list[Row]:
    """The rows of the whole records of a segment; a torn tail is left out, with a warning."""
    with contextlib.closing(os.fdopen(os.dup(fd), "rb")) as handle:
        data = handle.read()
    rows: list[Row] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            break
        length, crc = _HEADER.unpack_from(data, offset)
        payload = data[offset + _HEADER.size : offset + _HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        rows.extend(_decoded(row) for row in orjson.loads(payload))
        offset += _HEADER.size + length
    if offset < len(data):
        logger.warning(
            "the write-ahead log %s ends in a partial record (%d bytes after offset %d, cut "
            "short by a crash before its request was answered): ignored",
            path,
            len(data) - offset,
            offset,
        )
    return rows


def _encoded(row: Row) -> list[Any]:
    at: datetime = row[1]
    return [row[0], (at - _EPOCH) // timedelta(microseconds=1), *row[2:]]


def _decoded(row: list[Any]) -> Row:
    return (row[0], _EPOCH + timedelta(microseconds=row[1]), *row[2:])


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
