"""The prediction log: every answer a server (or ``mlship predict``) gave, as Parquet parts.

Rows wait in memory and are written as one Parquet part when ``flush_rows`` have gathered, at
least every ``flush_seconds``, and when the log is closed (a server closes it on a graceful
shutdown, SIGTERM included), so a stopped server loses nothing it answered. Parts go to the
workspace's log store (``store/logstore.py``: the home, the object storage of the artifacts or
the tracking server), which shows a part whole or not at all, so a reader never sees half a part
and a crash loses at most the rows still waiting. Parts are named by time, host, process and
sequence, so every worker of every replica writes to one log without collisions.

Each row: request id, time, deployment, model, version, role, latency, the input record and the
output (prediction and class probabilities) as JSON, the HTTP status and the error. The role says
what the row is: ``route`` (the answer a caller got), ``shadow`` (a shadow's answer, never sent),
``batch`` (``mlship predict``), one row per record for each; or ``error`` (a request routed to a
version and then refused or failed), one row per request, with empty input and output, the status
(422, 500, ...) and the error text. Answers have status 200 and no error.

``status`` and ``error`` came later than the other columns: :func:`read_log` gives parts written
before them status 200 and no error (they held answers only), so old and new parts read as one.

With ``encrypt_artifacts`` on, parts are encrypted like artifacts (``store/parts.py``).

A process killed outright (SIGKILL, the OOM killer) loses the rows still waiting: up to
``flush_seconds`` of answers. With a write-ahead log (``monitor/wal.py``) each request's rows
are on local disk before it is answered, and parts are made from the write-ahead segments
instead of from memory, under names that come out the same when a segment is converted again,
so nothing answered is lost and nothing is logged twice.

A store that refuses a part (a full or read-only disk, a file in the folder's way, a bucket or a
server that refuses or cannot be reached) never stops the answers: serving matters more than its
record. The rows wait in memory for the next flush, up to ``max_waiting`` (the oldest are
dropped, and counted, beyond it), :attr:`PredictionLog.failure` says which folder, bucket or
server failed and what to do (the server's ``/health`` shows it, and it is logged once per
failure), and everything that waited is written once the store takes writes again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from mlship.errors import MlshipError
from mlship.monitor.wal import Destination, WriteAheadLog
from mlship.store.failures import Place, is_storage_failure
from mlship.store.logread import load_parts
from mlship.store.logstore import FolderLogStore, LogStore, LogTarget, part_name
from mlship.store.parts import PLAIN, Sealing, sealed_part

if TYPE_CHECKING:
    import polars as pl

logger = logging.getLogger("mlship.monitor.predlog")

SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("deployment", pa.string()),
        ("model", pa.string()),
        ("version", pa.int32()),
        ("role", pa.string()),
        ("latency_ms", pa.float64()),
        ("input", pa.string()),
        ("output", pa.string()),
        ("status", pa.int16()),
        ("error", pa.string()),
    ]
)

OK = 200
ERROR_ROLE = "error"
STREAM_ROLE = "stream"
"""Rows of events a stream runner scored (``mlship stream run``), one per event, whose
``request_id`` is the event's id in its stream."""


@dataclass(frozen=True)
class Entry:
    request_id: str
    model: str
    version: int
    role: str
    latency_ms: float
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]


@dataclass(frozen=True)
class Failure:
    """One ``error`` row: a request (or a streamed event) routed to ``model`` ``version`` and
    then refused (4xx) or failed (5xx)."""

    request_id: str
    model: str
    version: int
    latency_ms: float
    status: int
    error: str


class PredictionLog:
    """A buffered, append-only log of predictions in ``target`` (a log of a store, or a
    directory)."""

    def __init__(
        self,
        target: Path | LogTarget,
        deployment: str,
        flush_rows: int = 1000,
        flush_seconds: float = 5.0,
        sealing: Sealing = PLAIN,
        max_waiting: int = 100_000,
        write_ahead: WriteAheadLog | None = None,
    ) -> None:
        self.target = LogTarget.of(target)
        self.write_ahead = write_ahead
        """Where rows go before they are answered, when they must survive a kill."""
        self._unconverted = 0
        self.max_waiting = max_waiting
        self.failure: str | None = None
        """Why the last flush failed (the folder and what to do); None while parts are written."""
        self.dropped = 0
        """Rows given up while the log could not be written (the oldest, beyond ``max_waiting``)."""
        self.sealing = sealing
        self.deployment = deployment
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._rows: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0

    def append(self, entry: Entry) -> Future[None] | None:
        """Add one request's rows (one per record); may write a part. With a write-ahead log,
        the future is done once the rows are on disk: answer the request after it."""
        return self._add(self._rows_of(entry, datetime.now(UTC)))

    def append_error(
        self, request_id: str, model: str, version: int, latency_ms: float, status: int, error: str
    ) -> None:
        """Add one row for a request routed to ``model`` ``version`` and then refused (4xx) or
        failed (5xx), so error rates can be read from the log; may write a part."""
        failure = Failure(request_id, model, version, latency_ms, status, error)
        self._add([self._error_row(failure, datetime.now(UTC))])

    def write(self, logged: Sequence[Entry | Failure]) -> int:
        """Write ``logged`` as one part now, in this thread, and return its rows once the store
        holds it; a store that refuses it raises (OSError, or an mlship error naming it).

        For a caller that must not go on before its rows are durable: a stream consumer
        acknowledges events only after their rows are written, so a crash before that
        redelivers them instead of losing their record. Nothing is kept to retry: the caller
        retries by working on the events again."""
        at = datetime.now(UTC)
        rows: list[tuple[Any, ...]] = []
        for item in logged:
            if isinstance(item, Failure):
                rows.append(self._error_row(item, at))
            else:
                rows.extend(self._rows_of(item, at))
        if not rows:
            return 0
        with self._write_lock:
            self.target.store.put(self.target.log, part_name(), _part(rows, self.sealing))
            self.written += len(rows)
        return len(rows)

    def _rows_of(self, entry: Entry, at: datetime) -> list[tuple[Any, ...]]:
        return [
            (
                entry.request_id,
                at,
                self.deployment,
                entry.model,
                entry.version,
                entry.role,
                entry.latency_ms,
                orjson.dumps(record, default=str).decode(),
                orjson.dumps(output, default=str).decode(),
                OK,
                None,
            )
            for record, output in zip(entry.inputs, entry.outputs, strict=True)
        ]

    def _error_row(self, failure: Failure, at: datetime) -> tuple[Any, ...]:
        return (failure.request_id, at, self.deployment, failure.model, failure.version,
                ERROR_ROLE, failure.latency_ms, "", "", failure.status, failure.error)  # fmt: skip

    def _add(self, rows: list[tuple[Any, ...]]) -> Future[None] | None:
        durable = None
        with self._lock:
            if self.write_ahead is not None:
                durable = self.write_ahead.append(rows)
                self._unconverted += len(rows)
                full = self._unconverted >= self.flush_rows
            else:
                self._rows.extend(rows)
                full = len(self._rows) >= self.flush_rows
        if full:
            if self._thread is not None:
                self._wake.set()  # the writer thread writes it; the caller does not wait
            else:
                self.flush()
        return durable

    @property
    def waiting(self) -> int:
        """Rows not written yet."""
        with self._lock:
            return len(self._rows) + self._unconverted

    def flush(self) -> int:
        """Write the waiting rows as one part; how many were written (0 when the store refused
        them: they wait for the next flush, see the module docstring)."""
        if self.write_ahead is not None:
            return self._convert()
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return 0
        with self._write_lock:
            name = part_name()
            try:
                self.target.store.put(self.target.log, name, _part(rows, self.sealing))
            except OSError as exc:
                directory = self.target.directory
                if directory is not None and not is_storage_failure(exc):
                    raise
                failure = (
                    Place("the prediction log", directory, move=_MOVE).describe(exc)
                    if directory is not None
                    else f"the prediction log at {self.where} cannot be written: {exc}"
                )
                self._keep(rows, failure)
                return 0
            except MlshipError as exc:  # object storage or a server: the message says what
                self._keep(rows, f"the prediction log at {self.where} cannot be written: {exc}")
                return 0
            self.written += len(rows)
            if self.failure is not None:
                logger.warning("the prediction log at %s is written again", self.where)
                self.failure = None
        return len(rows)

    def _convert(self) -> int:
        """Close the write-ahead segment being written and turn every segment no process
        writes (this one's, and any a dead process left) into a part; how many rows."""
        assert self.write_ahead is not None
        written = 0
        with self._write_lock:
            self.write_ahead.rotate()
            with self._lock:
                self._unconverted = 0
            for segment in self.write_ahead.claim():
                if segment.rows:
                    try:
                        part = _part(segment.rows, self.sealing)
                        self.target.store.put(self.target.log, segment.part, part)
                    except (OSError, MlshipError) as exc:
                        local = self.target.directory is not None
                        if isinstance(exc, OSError) and local and not is_storage_failure(exc):
                            raise
                        self._failed(exc)
                        return written  # the segments stay for the next flush
                    written += len(segment.rows)
                self.write_ahead.done(segment)
            self.written += written
            self._recovered()
        return written

    def _failed(self, exc: Exception) -> None:
        directory = self.target.directory
        failure = (
            Place("the prediction log", directory, move=_MOVE).describe(exc)
            if directory is not None and isinstance(exc, OSError)
            else f"the prediction log at {self.where} cannot be written: {exc}"
        )
        if failure != self.failure:
            logger.error("%s; its rows wait in the write-ahead log", failure)
        self.failure = failure

    def _recovered(self) -> None:
        if self.failure is not None:
            logger.warning("the prediction log at %s is written again", self.where)
            self.failure = None

    @property
    def where(self) -> str:
        """The log's folder, or its place in object storage or on a server."""
        return self.target.where

    def _keep(self, rows: list[tuple[Any, ...]], failure: str) -> None:
        """Put ``rows`` back before the ones that came since, within ``max_waiting``."""
        with self._lock:
            self._rows = rows + self._rows
            over = len(self._rows) - self.max_waiting
            if over > 0:
                del self._rows[:over]
                self.dropped += over
        if failure != self.failure:
            logger.error("%s; %d rows wait for the next flush", failure, len(self._rows))
        self.failure = failure

    def start(self) -> None:
        """Flush at least every ``flush_seconds`` in the background, until :meth:`close`; with
        a write-ahead log, first turn what a dead process left in it into parts."""
        if self._thread is not None:
            return
        if self.write_ahead is not None:
            store = self.target.store
            destination = (
                Destination(directory=store.folder)
                if isinstance(store, FolderLogStore)
                else Destination(log=self.target.log)
            )
            self.write_ahead.start(destination)
            self._wake.set()  # the first round converts what waits

        def loop() -> None:
            while not self._stop.is_set():
                self._wake.wait(self.flush_seconds)
                self._wake.clear()
                if not self._stop.is_set():
                    try:
                        self.flush()
                    except Exception:  # the writer must outlive any one part
                        logger.exception("writing a part of the prediction log failed")

        self._thread = threading.Thread(target=loop, name="mlship-prediction-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the background flushing and write everything that waits."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self.write_ahead is not None:
            self.write_ahead.close()
        self.flush()


_MOVE = "set log.directory in the deployment file to"


def _part(rows: list[tuple[Any, ...]], sealing: Sealing) -> bytes:
    columns = list(zip(*rows, strict=True))
    table = pa.Table.from_arrays(
        [pa.array(column, type=field.type) for column, field in zip(columns, SCHEMA, strict=True)],
        schema=SCHEMA,
    )
    return sealed_part(table, sealing)


def read_log(target: Path | LogTarget, sealing: Sealing = PLAIN) -> pa.Table:
    """Every part written so far, as one table in :data:`SCHEMA` (empty when there is none;
    rows a compaction left twice are read once, a retried request's answer once)."""
    import pyarrow.parquet as pq

    log = LogTarget.of(target)
    loaded = load_parts(log.store, [log.log], sealing)
    if not loaded:
        return SCHEMA.empty_table()
    table = pa.concat_tables(conform(pq.read_table(item.source)) for item in loaded)
    return without_retried(table)


def replay_write_ahead(root: Path, store: LogStore, sealing: Sealing = PLAIN) -> int:
    """Turn what dead processes left in the write-ahead folders under ``root`` into parts (of
    ``store``'s logs, or of their own folders); how many rows. Segments a live server writes
    are left to it."""
    rows = 0
    folders = sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else []
    for folder in folders:
        destination = Destination.of(folder)
        if destination is None:
            continue
        target = (
            LogTarget.of(destination.directory)
            if destination.directory is not None
            else LogTarget(store, str(destination.log))
        )
        log = PredictionLog(target, folder.name, sealing=sealing, write_ahead=WriteAheadLog(folder))
        rows += log.flush()
    return rows


RETRY_KEYS = ("deployment", "request_id", "role", "version")
"""What names one logging of a request by a server: a request id logged again under the same
keys (a load balancer retried it on another replica after the first one logged it and died
before its answer got out) is read from its last logging only."""
SERVED_ROLES = ("route", "shadow", ERROR_ROLE)
"""Roles a server logs once per request (``batch`` logs one id for every chunk of a file)."""
STREAM_KEYS = ("deployment", "request_id", "role")
"""What names one streamed event's row: an event delivered again (its consumer died after
writing its row and before acknowledging it) is read from its first logging only, the one whose
prediction went out (publishing skips an event already published), whichever version scored it
the second time."""


def counted_once() -> pl.Expr:
    """True for the rows a reader keeps: every row, less the earlier loggings of a request a
    server logged more than once (:data:`RETRY_KEYS`: every row of one logging has the same
    ``at``, so its latest ``at``) and the later loggings of a redelivered streamed event
    (:data:`STREAM_KEYS`: its earliest ``at``)."""
    import polars as pl

    role = pl.col("role")
    latest = pl.col("at") == pl.col("at").max().over(RETRY_KEYS)
    first = pl.col("at") == pl.col("at").min().over(STREAM_KEYS)
    return (
        pl.when(role == STREAM_ROLE)
        .then(first)
        .when(role.is_in(SERVED_ROLES))
        .then(latest)
        .otherwise(pl.lit(True))
    )


def without_retried(table: pa.Table) -> pa.Table:
    """``table`` with each request and each streamed event counted once (:func:`counted_once`)."""
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    kept = frame.filter(counted_once())
    if kept.height == frame.height:
        return table
    return kept.to_arrow().cast(SCHEMA)


def conform(table: pa.Table) -> pa.Table:
    """A part in :data:`SCHEMA`: one written before ``status`` and ``error`` held answers only."""
    table = table.replace_schema_metadata(None)
    if table.schema.equals(SCHEMA):
        return table
    rows = table.num_rows
    if "status" not in table.column_names:
        table = table.append_column(
            SCHEMA.field("status"), pa.repeat(pa.scalar(OK, pa.int16()), rows)
        )
    if "error" not in table.column_names:
        table = table.append_column(SCHEMA.field("error"), pa.nulls(rows, pa.string()))
    return table.select(SCHEMA.names).cast(SCHEMA)
