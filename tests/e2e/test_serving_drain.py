"""SIGTERM drains a real ``mlship serve`` under load from keep-alive clients: readiness goes false
first, every request that reaches the server is answered (with ``Connection: close`` once it
drains) instead of being reset, and every answer is in the prediction log."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from mlship.monitor.predlog import read_log
from mlship.workspace import Workspace
from tests.keepalive_clients import Client, ReadinessProbe, Sent
from tests.serving import serving

DRAIN = 1.5
CLIENTS = 4


def _deployment(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "log"
    spec = tmp_path / "drained.yaml"
    spec.write_text(
        f"name: drained\nroutes: [{{model: 'churn:1'}}]\n"
        f"log: {{directory: '{log}', flush_rows: 100000, flush_seconds: 60}}\n"
    )
    return spec, log


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_without_a_reset_and_logs_every_answer(
    trained: Workspace, tmp_path: Path, workers: int
) -> None:
    spec, log = _deployment(tmp_path)
    args = ("--drain-seconds", str(DRAIN), "--workers", str(workers))
    with serving(str(spec), trained.settings.home, *args) as server:
        # Every worker must have started before the signal: one that has not has nothing to drain.
        deadline = time.monotonic() + 60
        while server.output_text().count('"event": "ready"') < workers:
            assert time.monotonic() < deadline, f"not every worker started:\n{server.output_text()}"
            time.sleep(0.05)
        probe = ReadinessProbe(server.base).start()
        clients = [Client(server.base).start() for _ in range(CLIENTS)]
        time.sleep(1.0)  # load before the signal: connections open and reused
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        # A load balancer sees the server not ready, and after a few more checks sends it
        # nothing new; the clients' open connections carry a request each until then.
        deadline = time.monotonic() + 30
        while probe.first_not_ready() is None and server.process.poll() is None:
            assert time.monotonic() < deadline, "readiness did not go false within 30 s"
            time.sleep(0.01)
        time.sleep(DRAIN / 2)
        for client in clients:
            client.no_new.set()
        code = server.process.wait(timeout=60)
        for client in clients:
            client.join(30)
        probe.stop.set()
        probe.join(10)
        output = server.stop()
    assert code in (0, -signal.SIGTERM), f"exit code {code}:\n{output}"
    sent = [item for client in clients for item in client.sent]
    answered = [item for item in sent if item.status is not None]
    assert all(item.status == 200 for item in answered), {item.status for item in answered}

    # Not one request failed: none on a kept-alive connection was reset, none on a new one.
    failed = [item for item in sent if item.status is None]
    assert not failed, _described(failed)

    # Readiness went false while the server still answered, on kept-alive connections too,
    # and every answer from then on closed its connection.
    not_ready = probe.first_not_ready()
    assert not_ready is not None and not_ready > signalled, probe.seen
    assert any(status == 200 for at, status in probe.seen if at < signalled)
    in_drain = [item for item in answered if item.started > not_ready]
    assert in_drain, "nothing answered in the drain"
    assert all(item.close for item in in_drain), _described([i for i in in_drain if not i.close])
    assert any(item.reused and item.close for item in answered), "none kept alive in the drain"
    # Before the signal connections stayed open: only the requests in flight then were closed.
    assert sum(item.close for item in answered if item.started < signalled) <= CLIENTS

    # Every answer is in the prediction log, once.
    ids = read_log(log).column("request_id").to_pylist()
    assert sorted(ids) == sorted(item.request_id for item in answered)
    drained = output.count('"event": "drained"')
    assert drained == workers, f"{drained} of {workers} drained:\n{output}"


def _described(items: list[Sent]) -> str:
    return "; ".join(
        f"{'reused' if i.reused else 'new'} at {i.started:.3f}: {i.error}" for i in items
    )
