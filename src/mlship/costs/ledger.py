"""The usage ledger: what serving, scoring and monitoring used, as Parquet parts of a log.

Training runs record their usage in the metadata store with the run. Everything else that uses
CPU and memory on a model's behalf (a model server, ``mlship predict``, a stream scorer, a
monitoring pass) appends :class:`UsageRecord` rows to one log, :data:`USAGE`, in the workspace's
log store: the same place, format, sealing and atomic parts as the prediction logs, so every
replica and worker writes parts of its own, a server packaged without a database still records
its usage (in the object storage, or through a tracking server), and ``mlship keys rotate`` and
compaction treat it like the other logs.

A record covers an interval of one process's work for one model version: the CPU-seconds it
used, the memory it held integrated over the interval (byte-seconds, so memory-hours add up
across intervals and replicas), and the requests and predictions it answered. Prices are put on
records only when a report reads them, so a change of prices reprices the past.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from mlship.prices import GB, Prices
from mlship.store.logread import load_parts, scan_sources
from mlship.store.logstore import USAGE as USAGE_LOG
from mlship.store.logstore import LogStore, part_name
from mlship.store.parts import PLAIN, Sealing, sealed_part

USAGE = USAGE_LOG
"""The log of the usage ledger in the log store (named by the store, whose key maintenance walks
it with the other logs)."""

KINDS = ("serving", "batch", "stream", "monitoring")
"""What a record's work was: a model server's answers, ``mlship predict``, a stream scorer, a
monitoring pass. (Training is recorded with its run, and storage is measured where it is.)"""

SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("ended_at", pa.timestamp("us", tz="UTC")),
        ("model", pa.string()),
        ("version", pa.int32()),
        ("stage", pa.string()),
        ("deployment", pa.string()),
        ("cpu_seconds", pa.float64()),
        ("memory_byte_seconds", pa.float64()),
        ("requests", pa.int64()),
        ("predictions", pa.int64()),
        ("host", pa.string()),
        ("pid", pa.int32()),
    ]
)


@dataclass(frozen=True, kw_only=True)
class UsageRecord:
    """What one process used on behalf of one model version between two times."""

    kind: str
    started_at: datetime
    ended_at: datetime
    model: str | None = None
    version: int | None = None
    stage: str | None = None
    """The version's stage when the work was done, when the writer knew it (a server of a
    registry reference does; a server of a bundle does not, and reports then use the stage the
    version has when they are made)."""
    deployment: str | None = None
    cpu_seconds: float = 0.0
    memory_byte_seconds: float = 0.0
    requests: int = 0
    predictions: int = 0
    host: str = ""
    pid: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"usage kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.ended_at < self.started_at:
            raise ValueError("a usage record ends before it starts")
        for name in ("cpu_seconds", "memory_byte_seconds", "requests", "predictions"):
            if getattr(self, name) < 0:
                raise ValueError(f"usage {name} cannot be negative")

    @property
    def wall_seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def memory_gb_hours(self) -> float:
        return self.memory_byte_seconds / GB / 3600

    def cost(self, prices: Prices) -> float:
        """CPU time at ``cpu_hour`` plus memory held at ``gb_hour``, as a run is priced."""
        return self.cpu_seconds / 3600 * prices.cpu_hour + self.memory_gb_hours * prices.gb_hour


def this_process() -> tuple[str, int]:
    """The host and process id a record names, to tell replicas and workers apart."""
    return socket.gethostname(), os.getpid()


def _as_utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def usage_table(records: Sequence[UsageRecord]) -> pa.Table:
    columns = {
        field.name: [getattr(r, field.name) for r in records] for field in fields(UsageRecord)
    }
    columns["started_at"] = [_as_utc(at) for at in columns["started_at"]]
    columns["ended_at"] = [_as_utc(at) for at in columns["ended_at"]]
    return pa.table(columns, schema=SCHEMA)


def write_usage(
    store: LogStore, records: Sequence[UsageRecord], sealing: Sealing = PLAIN
) -> str | None:
    """Append ``records`` to the ledger as one part, visible whole or not at all; its name
    (None when there was nothing to write)."""
    if not records:
        return None
    name = part_name()
    store.put(USAGE, name, sealed_part(usage_table(records), sealing))
    return name


def read_usage(
    store: LogStore, sealing: Sealing = PLAIN, since: datetime | None = None
) -> list[UsageRecord]:
    """Every record of the ledger in parts written at or after ``since`` (each once, whatever
    compaction did), oldest part first. Records that ended before ``since`` are left out."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    loaded = load_parts(store, [USAGE], sealing, since)
    if not loaded:
        return []
    sources = scan_sources(loaded)
    if all(isinstance(source, Path) for source in sources):
        table = ds.dataset(sources, format="parquet", schema=SCHEMA).to_table()
    else:  # sealed or remote parts, decrypted in memory: a dataset scans files only
        table = pa.concat_tables([pq.read_table(source, schema=SCHEMA) for source in sources])
    records = [
        UsageRecord(**row)  # the columns are the record's fields, by construction
        for row in table.to_pylist()
    ]
    if since is not None:
        cutoff = _as_utc(since)
        records = [r for r in records if r.ended_at >= cutoff]
    return records
