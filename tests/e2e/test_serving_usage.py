"""What serving, batch scoring and monitoring cost, from the usage ledger: a real ``mlship serve``
records the CPU its process used (as the test measures it from outside) split between the
versions it served, with every prediction counted; ``mlship predict`` and ``mlship monitor``
record theirs."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import httpx
import psutil
import pytest

from mlship.config import Settings
from mlship.costs.items import Owners, allocate, usage_items
from mlship.costs.ledger import UsageRecord, read_usage
from mlship.prices import Prices
from mlship.workspace import Workspace
from tests.conftest import run_cli, two_churn_versions
from tests.serving import RECORD, serving

REQUESTS = 500
RECORDS_PER_REQUEST = 4


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with churn:1 and churn:2."""
    return two_churn_versions(tmp_path_factory.mktemp("usage"))


def _ledger(home: Path) -> tuple[list[UsageRecord], Owners]:
    workspace = Workspace.open(Settings(home=home))
    try:
        return read_usage(workspace.logs, workspace.sealing), Owners.of(
            workspace.catalogue.list_models()
        )
    finally:
        workspace.close()


def _cpu(processes: list[psutil.Process]) -> float:
    """User plus system CPU-seconds of ``processes`` so far, as the kernel counts them."""
    return float(sum(p.cpu_times().user + p.cpu_times().system for p in processes))


def _send(base: str, requests: int) -> None:
    with httpx.Client(base_url=base) as client:
        for _ in range(requests):
            answer = client.post("/predict", json={"records": [RECORD] * RECORDS_PER_REQUEST})
            assert answer.status_code == 200, answer.text


def _within(recorded: float, measured: float) -> None:
    """The ledger's CPU-seconds against the test's own reading of the server's processes.

    The test reads each process's CPU-seconds since it started (the kernel's count, as ``ps``
    shows it) just before SIGTERM; the server's records run from the process's start to the end
    of its shutdown. So the ledger holds at least what the test read, less the kernel's
    accounting tick (10 ms a reading, two readings a process), and at most that plus the work
    of the shutdown after the test's reading: closing the server and writing the prediction
    log's last part of a few thousand rows, well under half a CPU-second even on a busy shared
    machine.
    """
    assert recorded >= measured - 0.05, (recorded, measured)
    assert recorded <= measured + 0.5, (recorded, measured)


def test_a_server_records_its_cpu_and_predictions_and_they_price_per_thousand(
    home: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "usage-one.yaml"
    # One interval, from the process's start to its shutdown.
    spec.write_text("name: usage-one\nroutes: [{model: 'churn:1'}]\nlog: {flush_seconds: 600}\n")
    with serving(str(spec), home) as server:
        process = psutil.Process(server.process.pid)
        rss = process.memory_info().rss
        _send(server.base, REQUESTS)
        measured = _cpu([process])
        pid = server.process.pid
        output = server.stop()
    assert f"Usage ledger: {home / 'usage'}" in output, output
    records, owners = _ledger(home)
    ours = [r for r in records if r.deployment == "usage-one"]
    # Two intervals: start-up (loading the model; nothing answered), then serving until SIGTERM.
    assert len(ours) == 2, ours
    startup, record = sorted(ours, key=lambda r: r.started_at)
    assert startup.ended_at == record.started_at
    assert (startup.requests, startup.predictions) == (0, 0) and startup.cpu_seconds > 0
    for r in ours:
        assert (r.kind, r.model, r.version, r.pid) == ("serving", "churn", 1, pid)
        assert r.stage == owners.stage[("churn", 1)]  # the registry's stage, known to the server
    assert record.requests == REQUESTS
    assert record.predictions == REQUESTS * RECORDS_PER_REQUEST
    _within(startup.cpu_seconds + record.cpu_seconds, measured)
    # Memory: the resident set held over the interval; the test's one reading of it is within
    # a factor of two of the average (start-up grows it, requests a little more).
    held = record.memory_byte_seconds / record.wall_seconds
    assert rss / 2 <= held <= rss * 2, (held, rss)

    prices = Prices(cpu_hour=0.05, gb_hour=0.01)
    [allocation] = allocate(usage_items(ours, prices, owners), "model")
    assert allocation.predictions == REQUESTS * RECORDS_PER_REQUEST
    per_thousand = (startup.cost(prices) + record.cost(prices)) / record.predictions * 1000
    assert allocation.per_thousand_predictions == pytest.approx(per_thousand)
    assert per_thousand > 0


def test_two_versions_and_two_workers_split_the_processes_total(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "usage-ab.yaml"
    spec.write_text(
        "name: usage-ab\n"
        "routes: [{model: 'churn:1', weight: 0.5}, {model: 'churn:2', weight: 0.5}]\n"
        "log: {flush_seconds: 1}\n"  # several intervals, each split between the versions
    )
    with serving(str(spec), home, "--workers", "2") as server:
        children = psutil.Process(server.process.pid).children()
        # uvicorn's workers, not multiprocessing's resource tracker
        workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2, [c.cmdline() for c in children]
        _send(server.base, 200)
        measured = _cpu(workers)
        server.stop()
    records, _ = _ledger(home)
    ours = [r for r in records if r.deployment == "usage-ab"]
    assert {r.pid for r in ours} == {w.pid for w in workers}  # every worker writes its own
    assert {(r.model, r.version) for r in ours if r.predictions} == {("churn", 1), ("churn", 2)}
    assert sum(r.predictions for r in ours) == 200 * RECORDS_PER_REQUEST
    assert sum(r.requests for r in ours) == 200
    _within(sum(r.cpu_seconds for r in ours), measured)
    # Each worker's intervals follow one another without a gap, and every interval's versions
    # share the same start and end: whatever the process used went to some version.
    intervals: dict[int, set[tuple[datetime, datetime]]] = defaultdict(set)
    for r in ours:
        intervals[r.pid].add((r.started_at, r.ended_at))
    for spans in intervals.values():
        ordered = sorted(spans)
        assert len(ordered) >= 2
        for (_, end), (start, _) in pairwise(ordered):
            assert start == end


def test_batch_scoring_records_one_batch_record(home: Path, tmp_path: Path) -> None:
    rows = tmp_path / "in.jsonl"
    rows.write_text("\n".join(json.dumps(RECORD) for _ in range(300)) + "\n")
    before = len(_ledger(home)[0])
    run_cli("predict", "churn:2", str(rows), "-o", str(tmp_path / "out.csv"), home=home)
    records, owners = _ledger(home)
    batch = [r for r in records[before:] if r.kind == "batch"]
    assert len(batch) == 1, records[before:]
    [record] = batch
    assert (record.model, record.version, record.predictions, record.requests) == (
        "churn", 2, 300, 1,
    )  # fmt: skip
    assert record.stage == owners.stage[("churn", 2)]
    assert record.cpu_seconds > 0 and record.memory_byte_seconds > 0


def test_a_monitoring_pass_records_what_it_used(home: Path) -> None:
    before = len(_ledger(home)[0])
    run_cli("monitor", "status", "churn", "--window", "1d", home=home)
    records, owners = _ledger(home)
    monitoring = [r for r in records[before:] if r.kind == "monitoring"]
    assert len(monitoring) == 1, records[before:]
    [record] = monitoring
    assert record.model == "churn" and record.version in (1, 2)
    assert record.version is not None and record.stage == owners.stage[("churn", record.version)]
    assert record.cpu_seconds > 0 and record.predictions == 0
