"""The prediction log through SIGKILL: without a write-ahead log a killed server loses the answers
still waiting in memory; with one (``--write-ahead-log``) every answered prediction is in the log
exactly once after a restart, a torn last record included."""

from __future__ import annotations

import signal
import threading
import uuid
from pathlib import Path

import httpx

from mlship.monitor.predlog import read_log
from mlship.workspace import Workspace
from tests.serving import RECORD, serving

REQUESTS = 60
CLIENTS = 3


def _deployment(tmp_path: Path, *, write_ahead: bool) -> tuple[Path, Path]:
    log = tmp_path / "log"
    spec = tmp_path / "killed.yaml"
    spec.write_text(
        f"name: killed\nroutes: [{{model: 'churn:1'}}]\n"
        f"log: {{directory: '{log}', write_ahead: {str(write_ahead).lower()}}}\n"
    )  # the default flush: 1000 rows or 5 seconds
    return spec, log


def _answered(base: str) -> list[str]:
    """Request ids of ``REQUESTS`` predictions answered 200, sent by a few concurrent clients."""
    answered: list[str] = []

    def client() -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(REQUESTS // CLIENTS):
                request_id = uuid.uuid4().hex
                response = http.post(
                    "/predict", json={"records": [RECORD]}, headers={"X-Request-Id": request_id}
                )
                assert response.status_code == 200, response.text
                answered.append(request_id)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answered) == REQUESTS
    return answered


def _logged(log: Path) -> list[str]:
    if not log.exists():
        return []
    table = read_log(log)
    ids: list[str] = (
        table.filter(table.column("role").to_numpy(False) == "route")
        .column("request_id")
        .to_pylist()
    )
    return ids


def test_sigkill_loses_the_waiting_answers_without_a_write_ahead_log(
    trained: Workspace, tmp_path: Path
) -> None:
    spec, log = _deployment(tmp_path, write_ahead=False)
    with serving(str(spec), trained.settings.home) as server:
        answered = _answered(server.base)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
    # Fewer than flush_rows, within flush_seconds: all of them were still in memory.
    assert set(_logged(log)) < set(answered)


def test_with_a_write_ahead_log_sigkill_loses_no_answer_and_logs_none_twice(
    trained: Workspace, tmp_path: Path
) -> None:
    spec, log = _deployment(tmp_path, write_ahead=True)
    wal = tmp_path / "wal"
    home = trained.settings.home
    with serving(str(spec), home, "--wal-dir", str(wal)) as server:
        answered = _answered(server.base)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
    segments = sorted((wal / "killed").glob("wal-*.log"))
    assert segments, "the killed server left no write-ahead segment"
    assert _logged(log) == []  # nothing was flushed before the kill
    # A crash in the middle of a record: the request it held was never answered.
    with segments[-1].open("ab") as handle:
        handle.write(b"\x00\x00\x01\x00torn")

    with serving(str(spec), home, "--wal-dir", str(wal)) as server:
        more = _answered(server.base)
        output = server.stop()
    logged = _logged(log)
    assert sorted(logged) == sorted(answered + more)  # each answer once, none lost
    assert "ends in a partial record" in output, output
    assert f"Write-ahead log: {wal / 'killed'}" in output, output
    assert not list((wal / "killed").glob("wal-*.log"))  # all turned into parts
