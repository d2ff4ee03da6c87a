"""A server's usage split between the versions it served: by their time predicting, equally
between the loaded versions when nothing was predicted, adding up to the process's total; and a
ledger that cannot be written keeps its records for the next flush."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.costs.ledger import read_usage
from mlship.serve.usage import ServedVersion, UsageMeter, shares, split
from mlship.store.logstore import LocalLogStore

A = ServedVersion("churn", 1, "production")
B = ServedVersion("churn", 2, "staging")
C = ServedVersion("churn", 3, None)


def test_time_predicting_sets_each_versions_share() -> None:
    fractions = shares({A: 3.0, B: 1.0}, [A, B, C])
    assert fractions == {A: 0.75, B: 0.25}  # C was loaded but predicted nothing: no share
    parts = split(8.0, fractions)
    assert parts == {A: 6.0, B: 2.0}


def test_an_idle_interval_goes_to_the_loaded_versions_equally() -> None:
    fractions = shares({}, [A, B, A])  # a version in two roles counts once
    assert fractions == {A: 0.5, B: 0.5}
    assert split(3.0, fractions) == {A: 1.5, B: 1.5}
    assert shares({A: 0.0}, [B]) == {B: 1.0}
    assert split(2.0, shares({}, [])) == {}


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1e4, allow_nan=False), min_size=0, max_size=6),
    st.integers(1, 6),
    st.floats(0, 1e7, allow_nan=False),
)
def test_the_shares_always_add_up_to_the_process_total(
    busy: list[float], loaded: int, total: float
) -> None:
    versions = [ServedVersion("m", i) for i in range(max(len(busy), loaded))]
    fractions = shares(dict(zip(versions, busy, strict=False)), versions[:loaded])
    parts = split(total, fractions)
    assert sum(parts.values()) == pytest.approx(total, rel=1e-12, abs=1e-9)
    assert all(part >= 0 for part in parts.values())
    predicting = {v: s for v, s in zip(versions, busy, strict=False) if s > 0}
    if predicting:
        assert set(parts) == set(predicting)
        everyone = sum(predicting.values())
        for version, seconds in predicting.items():  # proportional to time predicting
            expected = total * seconds / everyone
            assert parts[version] == pytest.approx(expected, rel=1e-9, abs=1e-9 * total + 1e-12)
    else:
        assert set(parts) == set(versions[:loaded])


def test_a_meter_writes_one_record_per_version_with_its_requests(tmp_path: Path) -> None:
    store = LocalLogStore(tmp_path)
    meter = UsageMeter(store, "churn-live", lambda: [A, B], flush_seconds=3600)
    meter.start()
    meter.predicted(A, 0.03)
    meter.predicted(B, 0.01)
    meter.answered(A, 5)
    meter.answered(A, 2)
    meter.answered(B, 1)
    sum(i * i for i in range(200_000))  # some CPU in the interval
    meter.close()
    startup, served = read_usage(store)[:2], read_usage(store)[2:]
    # Start-up, from the process's start to the meter's: nothing predicted, split equally.
    assert [(r.version, r.requests) for r in startup] == [(1, 0), (2, 0)]
    assert startup[0].cpu_seconds == pytest.approx(startup[1].cpu_seconds)
    assert startup[0].ended_at == served[0].started_at
    records = {(r.model, r.version): r for r in served}
    assert set(records) == {("churn", 1), ("churn", 2)}
    a, b = records[("churn", 1)], records[("churn", 2)]
    assert (a.requests, a.predictions, b.requests, b.predictions) == (2, 7, 1, 1)
    assert (a.stage, b.stage) == ("production", "staging")
    assert a.kind == "serving" and a.deployment == "churn-live"
    assert a.cpu_seconds == pytest.approx(3 * b.cpu_seconds)
    assert a.memory_byte_seconds == pytest.approx(3 * b.memory_byte_seconds)
    assert a.started_at == b.started_at and a.ended_at == b.ended_at
    assert a.pid > 0 and a.host


def test_a_ledger_that_cannot_be_written_keeps_its_records_and_says_where(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "usage"
    blocker.write_text("a file where the ledger's folder should be")
    store = LocalLogStore(tmp_path)
    meter = UsageMeter(store, "d", lambda: [A], flush_seconds=3600)
    meter.start()
    meter.answered(A, 1)
    assert meter.flush() == 0
    assert meter.failure is not None and str(blocker) in meter.failure
    blocker.unlink()
    meter.answered(A, 2)
    meter.close()
    assert meter.failure is None and meter.written == 3  # start-up and two intervals
    records = read_usage(store)
    assert [r.predictions for r in records] == [0, 1, 2]
    for before, after in pairwise(records):  # intervals meet: nothing is lost
        assert before.ended_at == after.started_at


def test_compaction_merges_the_ledgers_parts_and_keeps_every_record(tmp_path: Path) -> None:
    from mlship.monitor.compaction import compact

    store = LocalLogStore(tmp_path)
    meter = UsageMeter(store, "d", lambda: [A, B], flush_seconds=3600)
    meter.start()
    for rows in (1, 2, 3):
        meter.answered(A, rows)
        meter.flush()
    meter.close()
    before = read_usage(store)
    assert len(store.parts("usage")) == 4
    done = {item.log: item for item in compact(store, small_rows=1000)}
    assert (done["usage"].merged, done["usage"].written) == (4, 1)
    assert len(store.parts("usage")) == 1
    assert read_usage(store) == before
