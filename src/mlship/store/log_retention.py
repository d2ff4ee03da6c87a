"""Retention of the logs: prediction-log and usage-log parts older than a ``[[gc.rules]]`` age.

A part goes when every row in it is older than the rule's age (its name carries the time it was
written, after its last row), and no monitoring window needs it: the widest duration window of
the alert rules pushes the cut-off back, and the newest parts of each prediction log that hold
the largest row window's rows stay whatever their age. Parts are only deleted, never rewritten,
so a crash leaves some of them, which the next collection finds; a merged part and the inputs it
names go alike, since a reader of either finds the same rows in the other or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq

from mlship.store.logread import load_one
from mlship.store.logstore import LogStore, PartRef
from mlship.store.parts import Sealing


@dataclass(frozen=True)
class MonitoringNeeds:
    """What the alert rules read of a prediction log: the widest duration and row windows."""

    seconds: float = 0.0
    rows: int = 0


@dataclass(frozen=True)
class ExpiredPart:
    """A log part retention deletes, and the bytes it takes."""

    part: PartRef
    size: int

    @property
    def written(self) -> datetime:
        return datetime.fromtimestamp(self.part.written_ns / 1e9, UTC)


def expired_parts(
    store: LogStore,
    logs: Iterable[str],
    *,
    older_than: timedelta,
    now: datetime,
    needs: MonitoringNeeds,
    sealing: Sealing,
    windowed: frozenset[str] = frozenset(),
) -> list[ExpiredPart]:
    """The parts of ``logs`` written before ``now - older_than`` (or before the widest duration
    window, if that is further back) that no row window of a log in ``windowed`` (the
    prediction logs) still needs."""
    cutoff = now - max(older_than, timedelta(seconds=needs.seconds))
    cutoff_ns = int(cutoff.timestamp() * 1e9)
    expired = []
    for log in logs:
        parts = store.parts(log)
        needed = _newest_holding(store, parts, needs.rows, sealing) if log in windowed else set()
        for part in parts:
            if part.written_ns < cutoff_ns and part not in needed:
                expired.append(ExpiredPart(part, _size(store, part)))
    return expired


def _newest_holding(
    store: LogStore, parts: Sequence[PartRef], rows: int, sealing: Sealing
) -> set[PartRef]:
    """The newest parts that together hold ``rows`` rows (all of them when fewer do)."""
    kept: set[PartRef] = set()
    counted = 0
    for part in sorted(parts, key=lambda p: p.written_ns, reverse=True):
        if counted >= rows:
            break
        kept.add(part)
        counted += pq.read_metadata(load_one(store, part, sealing).source).num_rows
    return kept


def _size(store: LogStore, part: PartRef) -> int:
    path = store.local_path(part)
    return path.stat().st_size if path is not None else len(store.read(part))


__all__ = ["ExpiredPart", "MonitoringNeeds", "expired_parts"]
