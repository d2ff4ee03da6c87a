"""Compaction: the many small parts of a log merged into a few big ones.

Every flush of every worker of every replica writes a part, so a busy deployment leaves
thousands of small parts, and reading a window then costs one request (or file) per part.
:func:`compact` merges the small parts of each log (fewer rows than ``small_rows``) into parts of
up to ``target_rows`` rows, in the order they were written, and then deletes the inputs.

The merged part is written first and the inputs deleted after, so a crash or a refused delete in
between leaves the rows twice, never lost. The merged part names its inputs in its Parquet
metadata (``store/logread.py``), and readers drop the inputs that are still there, so every
figure stays the same; the next compaction deletes those leftovers before it merges anything.
A merged part is named by the newest of its inputs' times (so a reader of a recent window still
skips it when all of its rows are older), with an ``m`` sequence that no writer uses.

Run one compaction at a time per log store (``mlship monitor compact``, from one machine's
scheduler): two at once could merge the same parts twice, and readers then drop only the inputs.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from mlship.costs import ledger
from mlship.monitor import feedback, predlog
from mlship.store.logread import MERGED_FROM, LoadedPart, load_all, merged_away
from mlship.store.logstore import FEEDBACK, USAGE, LogStore, part_name, prediction_logs
from mlship.store.parts import PLAIN, Sealing, sealed_part

SMALL_ROWS = 20_000
"""Parts with fewer rows than this are merged."""
TARGET_ROWS = 200_000
"""A merged part holds at most this many rows (one input bigger than that stays as it is)."""


@dataclass(frozen=True)
class Compacted:
    """What compaction did to one log."""

    log: str
    merged: int
    """Parts merged (and then deleted)."""
    written: int
    """Merged parts written."""
    rows: int
    """Rows in the merged parts."""
    leftovers: int
    """Parts a stopped compaction had merged already, deleted now."""


def compact(
    store: LogStore,
    sealing: Sealing = PLAIN,
    *,
    small_rows: int = SMALL_ROWS,
    target_rows: int = TARGET_ROWS,
    logs: Sequence[str] | None = None,
    written: Callable[[str], None] | None = None,
) -> list[Compacted]:
    """Compact every log of ``store`` (the prediction logs, the labels and the usage ledger),
    or ``logs``.

    ``written`` is called with each merged part's name once it is stored, before its inputs
    are deleted (the moment a crash leaves duplicates that readers drop).
    """
    names = list(logs) if logs is not None else [*prediction_logs(store), FEEDBACK, USAGE]
    return [_compact_log(store, log, sealing, small_rows, target_rows, written) for log in names]


def _compact_log(
    store: LogStore,
    log: str,
    sealing: Sealing,
    small_rows: int,
    target_rows: int,
    written: Callable[[str], None] | None,
) -> Compacted:
    loaded = load_all(store, [log], sealing)
    leftovers = merged_away(loaded)
    if leftovers:  # a compaction stopped between writing and deleting: finish it first
        store.delete(sorted(leftovers))
    live = [item for item in loaded if item.part not in leftovers]
    small = [(item, _rows(item)) for item in live]
    small = [(item, rows) for item, rows in small if rows < small_rows]
    merged = parts_written = rows_written = 0
    for group in _groups(small, target_rows):
        name = part_name(max(item.part.written_ns for item in group), tag="m")
        table = _merge(log, group)
        store.put(log, name, sealed_part(table, sealing))
        if written is not None:
            written(name)
        store.delete([item.part for item in group])
        merged += len(group)
        parts_written += 1
        rows_written += table.num_rows
    return Compacted(log, merged, parts_written, rows_written, len(leftovers))


def _rows(item: LoadedPart) -> int:
    rows = pq.ParquetFile(item.source).metadata.num_rows
    if isinstance(item.source, io.BytesIO):
        item.source.seek(0)
    return int(rows)


def _groups(small: Sequence[tuple[LoadedPart, int]], target_rows: int) -> list[list[LoadedPart]]:
    """Consecutive runs of ``small`` of up to ``target_rows`` rows; runs of one part are left."""
    groups: list[list[LoadedPart]] = []
    current: list[LoadedPart] = []
    total = 0
    for item, rows in small:
        if current and total + rows > target_rows:
            groups.append(current)
            current, total = [], 0
        current.append(item)
        total += rows
    groups.append(current)
    return [group for group in groups if len(group) > 1]


def _merge(log: str, group: Sequence[LoadedPart]) -> pa.Table:
    """The rows of ``group`` in order, in the log's schema, naming the parts they came from
    (and, for merged inputs, the parts those came from)."""
    tables = [_conform(log, pq.read_table(item.source)) for item in group]
    sources = sorted(
        {item.part.name for item in group} | {name for item in group for name in item.merged_from}
    )
    table = pa.concat_tables(tables)
    return table.replace_schema_metadata({MERGED_FROM: json.dumps(sources).encode()})


def _conform(log: str, table: pa.Table) -> pa.Table:
    if log in (FEEDBACK, USAGE):
        schema = feedback.SCHEMA if log == FEEDBACK else ledger.SCHEMA
        return table.replace_schema_metadata(None).select(schema.names).cast(schema)
    return predlog.conform(table)
