"""Log retention never deletes a part a monitoring window reads, nor one younger than its age."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.store.log_retention import MonitoringNeeds, expired_parts
from mlship.store.logstore import LocalLogStore, part_name
from mlship.store.parts import PLAIN, sealed_part

NOW = datetime(2026, 12, 1, tzinfo=UTC)
LOG = "predictions/churn"


def _store(root: Path, parts: list[tuple[int, int]]) -> LocalLogStore:
    """A log with one part per (hours ago, rows)."""
    store = LocalLogStore(root)
    for hours, rows in parts:
        at = NOW - timedelta(hours=hours)
        table = pa.table({"x": list(range(rows))})
        store.put(LOG, part_name(int(at.timestamp() * 1e9)), sealed_part(table, PLAIN))
    return store


@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    parts=st.lists(
        st.tuples(st.integers(0, 500), st.integers(1, 50)), max_size=8, unique_by=lambda p: p[0]
    ),
    age_hours=st.integers(0, 400),
    window_hours=st.integers(0, 400),
    window_rows=st.integers(0, 120),
)
def test_no_part_a_window_reads_is_expired(
    parts: list[tuple[int, int]], age_hours: int, window_hours: int, window_rows: int
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        store = _store(Path(scratch), parts)
        needs = MonitoringNeeds(seconds=window_hours * 3600.0, rows=window_rows)
        expired = expired_parts(
            store,
            [LOG],
            older_than=timedelta(hours=age_hours),
            now=NOW,
            needs=needs,
            sealing=PLAIN,
            windowed=frozenset({LOG}),
        )
        gone = {e.part for e in expired}
        cutoff = NOW - timedelta(hours=max(age_hours, window_hours))
        newest_first = sorted(store.parts(LOG), key=lambda p: p.written_ns, reverse=True)
        held = 0
        for part, (_, rows) in zip(newest_first, sorted(parts, key=lambda p: p[0]), strict=True):
            if held < window_rows:
                assert part not in gone  # the row window still reads it
            held += rows
            young = part.written_ns >= int(cutoff.timestamp() * 1e9)
            if young:
                assert part not in gone
        for item in expired:
            assert item.size == (Path(scratch) / LOG / item.part.name).stat().st_size


def test_without_windows_every_part_older_than_the_age_goes() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        store = _store(Path(scratch), [(1, 5), (30, 5), (50, 5)])
        expired = expired_parts(
            store, [LOG], older_than=timedelta(hours=24), now=NOW, needs=MonitoringNeeds(),
            sealing=PLAIN,
        )  # fmt: skip
        assert len(expired) == 2 and all(e.written < NOW - timedelta(hours=24) for e in expired)
