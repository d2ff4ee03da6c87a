"""The prediction log's write-ahead segments on real files: converted once whatever moment a
process stopped at, a torn tail ignored, a segment being written never taken."""

from __future__ import annotations

import logging
import shutil
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.monitor.predlog import Entry, PredictionLog, read_log
from mlship.monitor.wal import Destination, WriteAheadLog
from mlship.store.logstore import LocalLogStore, LogTarget
from tests.conftest import invoke_cli


def _entry(i: int, records: int = 2) -> Entry:
    inputs = [{"age": i, "note": f"row {j}"} for j in range(records)]
    outputs = [{"prediction": j % 2} for j in range(records)]
    return Entry(f"request-{i}", "churn", 1, "route", 1.5, inputs, outputs)


def _log(tmp: Path) -> PredictionLog:
    return PredictionLog(tmp / "log", "churn", write_ahead=WriteAheadLog(tmp / "wal"))


def _ids(tmp: Path) -> list[str]:
    return sorted(read_log(tmp / "log").column("request_id").to_pylist())


def _rows(i: int) -> list[tuple[object, ...]]:
    """Request ``i``'s two rows, as :class:`PredictionLog` makes them."""
    at = datetime.now(UTC)
    return [
        (f"request-{i}", at, "churn", "churn", 1, "route", 1.5, f'{{"age": {i}}}',
         f'{{"prediction": {j}}}', 200, None)
        for j in range(2)
    ]  # fmt: skip


def _written_segments(
    tmp: Path, count: int, destination: Destination | None = None, folder: Path | None = None
) -> list[Path]:
    """``count`` answered requests in the write-ahead log of a process that then stopped
    without converting it (a kill)."""
    folder = folder or tmp / "wal"
    wal = WriteAheadLog(folder)
    wal.start(destination or Destination(directory=tmp / "log"))
    for i in range(count):
        wal.append(_rows(i)).result(timeout=10)
    wal.close()
    return sorted(folder.glob("wal-*.log"))


def test_every_request_is_durable_and_logged_once_on_close(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.start()
    for i in range(25):
        durable = log.append(_entry(i))
        assert durable is not None
        durable.result(timeout=10)
    log.close()
    assert _ids(tmp_path) == sorted(f"request-{i}" for i in range(25) for _ in range(2))
    assert not list((tmp_path / "wal").glob("wal-*.log"))


def test_a_segment_converted_again_after_a_crash_is_logged_once(tmp_path: Path) -> None:
    segments = _written_segments(tmp_path, 10)
    assert len(segments) == 1
    kept = tmp_path / "kept"
    shutil.copy(segments[0], kept)
    first = _log(tmp_path)
    first.start()
    first.close()
    parts = sorted((tmp_path / "log").glob("part-*.parquet"))
    assert len(parts) == 1 and not segments[0].exists()
    # The crash came after the part was stored and before the segment was deleted.
    shutil.copy(kept, segments[0])
    again = _log(tmp_path)
    again.start()
    again.close()
    assert sorted((tmp_path / "log").glob("part-*.parquet")) == parts  # the same name again
    assert _ids(tmp_path) == sorted(f"request-{i}" for i in range(10) for _ in range(2))


def test_a_segment_being_written_is_not_taken(tmp_path: Path) -> None:
    writing = WriteAheadLog(tmp_path / "wal")
    writing.start(Destination(directory=tmp_path / "log"))
    writing.append(_rows(1)).result(timeout=10)
    try:
        assert list(WriteAheadLog(tmp_path / "wal").claim()) == []
    finally:
        writing.close()
    assert len(list(WriteAheadLog(tmp_path / "wal").claim())) == 1


@settings(derandomize=True, max_examples=40, deadline=None)
@given(cut=st.integers(min_value=1, max_value=10_000))
def test_a_torn_tail_is_ignored_with_a_warning(
    tmp_path_factory: pytest.TempPathFactory, cut: int
) -> None:
    tmp = tmp_path_factory.mktemp("torn")
    segment = _written_segments(tmp, 6)[0]
    data = segment.read_bytes()
    keep = len(data) - 1 - cut % (len(data) - 1)  # anywhere, even inside the first header
    segment.write_bytes(data[:keep])
    records = logging.getLogger("mlship.monitor.wal")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    records.addHandler(handler)
    try:
        log = _log(tmp)
        log.start()
        log.close()
    finally:
        records.removeHandler(handler)
    ids = _ids(tmp) if (tmp / "log").exists() else []
    whole = sorted(set(ids))
    # Whole records only: each request's two rows or none, in the order they were written.
    assert all(ids.count(i) == 2 for i in whole)
    assert whole == sorted(f"request-{i}" for i in range(len(whole)))
    torn = keep not in _record_ends(data)
    assert any("ends in a partial record" in line for line in seen) == torn, seen
    assert not list((tmp / "wal").glob("wal-*.log"))


def _record_ends(data: bytes) -> set[int]:
    """Offsets at which a record of the segment ``data`` ends."""
    ends, offset = set(), 0
    while offset < len(data):
        offset += 8 + struct.unpack_from(">I", data, offset)[0]
        ends.add(offset)
    return ends


def test_monitor_compact_logs_what_a_killed_server_left(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _written_segments(  # a server of deployment churn, logging to the home's store
        tmp_path, 5, Destination(log="predictions/churn"), home / "wal" / "churn"
    )
    _written_segments(tmp_path, 3, Destination(directory=tmp_path / "own"), home / "wal" / "own")
    result = invoke_cli("monitor", "compact", home=home)
    assert "Logged 16 rows that stopped servers left in" in result.stdout, result.stdout
    in_store = read_log(LogTarget(LocalLogStore(home), "predictions/churn"))
    assert sorted(set(in_store.column("request_id").to_pylist())) == [
        f"request-{i}" for i in range(5)
    ]
    assert read_log(tmp_path / "own").num_rows == 6
    assert not list((home / "wal").glob("*/wal-*.log"))
    again = invoke_cli("monitor", "compact", home=home)
    assert "stopped servers left" not in again.stdout
