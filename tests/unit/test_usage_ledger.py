"""The usage ledger keeps what it is given and prices it the way runs are priced."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlship.costs.ledger import UsageRecord, read_usage, write_usage
from mlship.prices import Prices
from mlship.store.logstore import LocalLogStore


def test_a_usage_record_reads_back_as_written_and_is_priced_like_a_run(tmp_path: Path) -> None:
    store = LocalLogStore(tmp_path)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    r = UsageRecord(
        kind="serving",
        started_at=t0,
        ended_at=t0 + timedelta(seconds=60),
        model="m",
        version=2,
        cpu_seconds=3.5,
        memory_byte_seconds=2**30 * 3600.0,
        requests=10,
        predictions=12,
        host="h",
        pid=4,
    )
    write_usage(store, [r])
    assert read_usage(store) == [r]
    assert read_usage(store, since=t0 + timedelta(days=1)) == []
    assert r.memory_gb_hours == 1.0
    assert r.cost(Prices(cpu_hour=3600, gb_hour=1)) == pytest.approx(3.5 + 1)
    with pytest.raises(ValueError, match="usage kind"):
        UsageRecord(kind="x", started_at=t0, ended_at=t0)


def test_a_sealed_ledger_reads_back_as_written(tmp_path: Path) -> None:
    from mlship.config import Settings
    from mlship.security.keyring import sealing as sealing_of

    sealing = sealing_of(Settings(home=tmp_path / "keys", encrypt_artifacts=True))
    store = LocalLogStore(tmp_path / "logs")
    start = datetime(2026, 6, 1, tzinfo=UTC)
    records = [
        UsageRecord(
            kind="serving",
            started_at=start + timedelta(hours=h),
            ended_at=start + timedelta(hours=h + 1),
            model="churn",
            version=1,
            cpu_seconds=float(h),
            predictions=h,
        )
        for h in range(3)
    ]
    write_usage(store, records[:2], sealing)
    write_usage(store, records[2:], sealing)
    assert b"churn" not in b"".join(p.read_bytes() for p in (tmp_path / "logs").rglob("part-*"))
    assert read_usage(store, sealing) == records
