"""Database failover end to end: the primary dies under load, the watcher promotes the standby.

Writers record runs through the SQL repository, each a workspace whose database URL lists both
servers with ``target_session_attrs=read-write``; ``mlship db failover-watch`` watches the
primary; the primary's postmaster is SIGKILLed. Replication is synchronous, so every run whose
start a writer saw succeed must be on the promoted server, once; the writers must carry on by
themselves (their methods run again on fresh connections), and a tracking server on the same URL
must answer before, during (the request waits for the new primary) and after.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from mlship.config import Settings
from mlship.errors import MlshipError
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, mlship_env
from tests.postgres_replica import ReplicatedPostgres, replicated_postgres
from tests.serving import Server, free_port, start_server

WRITERS = 4
AFTER_PROMOTION = 5
"""Runs each writer must record once the standby is promoted."""


@pytest.fixture(scope="module")
def pair() -> Iterator[ReplicatedPostgres]:
    with replicated_postgres() as servers:
        yield servers


@dataclass
class Writer:
    """One client recording runs as fast as its commits allow, and what it saw."""

    number: int
    workspace: Workspace
    sent: list[str] = field(default_factory=list)
    acknowledged: list[tuple[str, float]] = field(default_factory=list)
    timed: list[tuple[float, float]] = field(default_factory=list)
    """(started, finished) of every acknowledged write, for the latency figures."""
    failed: list[tuple[str, str]] = field(default_factory=list)

    def write(self, stop: threading.Event) -> None:
        runs = self.workspace.runs
        while not stop.is_set():
            label = f"writer{self.number}-{len(self.sent)}"
            self.sent.append(label)
            started = time.monotonic()
            try:
                runs.start_run(
                    pipeline=label,
                    task="classification",
                    metric="accuracy",
                    spec_path="spec.yaml",
                    spec_hash=label,
                    spec={"writer": self.number},
                    git_commit=None,
                    environment={},
                )
            except MlshipError as exc:
                self.failed.append((label, str(exc)))
            else:
                finished = time.monotonic()
                self.acknowledged.append((label, finished))
                self.timed.append((started, finished))
            time.sleep(0.01)


def _workspace(root: Path, url: str, user: str) -> Workspace:
    settings = Settings(home=root / user, database_url=url, user=user, database_retry_seconds=30)
    return Workspace.open(settings)


def _start_tracking_server(root: Path, url: str) -> tuple[Server, str]:
    home = root / "server"
    env = {"MLSHIP_DATABASE_URL": url, "MLSHIP_USER": "ops"}
    invoke_cli("users", "add", "admin", "--role", "admin", home=home, env=env)
    created = invoke_cli("tokens", "create", "admin", home=home, env=env).stdout
    token = next(line.strip() for line in created.splitlines() if line.strip().startswith("mls_"))
    port = free_port()
    server = start_server(
        [sys.executable, "-m", "mlship", "server", "--port", str(port)],
        mlship_env(home, env),
        f"http://127.0.0.1:{port}",
        ready="/api/v1/health",
        ready_status=401,
    )
    return server, token


def test_writers_and_a_server_follow_a_promoted_standby(
    pair: ReplicatedPostgres, tmp_path: Path
) -> None:
    writers = [
        Writer(n, _workspace(tmp_path, pair.multi_host_url, f"writer{n}")) for n in range(WRITERS)
    ]
    writers[0].workspace.metadata  # noqa: B018 (creates the schema before the others start)
    server, token = _start_tracking_server(tmp_path, pair.multi_host_url)
    headers = {"Authorization": f"Bearer {token}"}
    base = server.base
    watcher_log = tmp_path / "watcher.log"
    with watcher_log.open("w") as log:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "mlship", "db", "failover-watch", "--primary",
             pair.primary_url, "--standby", pair.standby_url, "--failures", "3",
             "--interval", "0.2", "--timeout", "1"],
            env=mlship_env(tmp_path / "watcher"), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    stop = threading.Event()
    threads = [threading.Thread(target=w.write, args=(stop,), daemon=True) for w in writers]
    try:
        before = httpx.get(f"{base}/api/v1/runs", headers=headers, timeout=10)
        assert before.status_code == 200, before.text
        for thread in threads:
            thread.start()
        _wait_for(lambda: "watching the primary" in watcher_log.read_text(), 30, "watcher")
        _wait_for(lambda: all(len(w.acknowledged) >= 10 for w in writers), 20, "writes")
        killed_wall, killed_at = datetime.now(UTC), time.monotonic()
        pair.kill_primary()
        during: list[httpx.Response] = []
        outage_request = threading.Thread(
            target=lambda: during.append(_post_run(base, headers, "during-the-outage")),
            daemon=True,
        )
        outage_request.start()
        assert watcher.wait(timeout=30) == 0, watcher_log.read_text()
        promoted_at = time.monotonic()
        after_promotion = lambda: all(  # noqa: E731
            sum(1 for _, at in w.acknowledged if at > promoted_at) >= AFTER_PROMOTION
            for w in writers
        )
        _wait_for(after_promotion, 30, "writes after the promotion")
        after = _post_run(base, headers, "after-the-promotion")
        assert after.status_code == 200, after.text
        outage_request.join(timeout=40)
        assert [r.status_code for r in during] == [200], [r.text for r in during]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        if watcher.poll() is None:
            watcher.kill()
        server.stop()
        for writer in writers:
            writer.workspace.close()

    log_text = watcher_log.read_text()
    assert "check 3/3 of the primary failed" in log_text, log_text
    assert "promoting the standby" in log_text and "is the primary now" in log_text, log_text

    engine = sa.create_engine(pair.standby_url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT pg_is_in_recovery()")).scalar() is False
        rows = connection.execute(sa.text("SELECT pipeline, count(*) FROM runs GROUP BY pipeline"))
        stored: dict[str, int] = {str(row[0]): int(row[1]) for row in rows}
    engine.dispose()

    sent = [label for w in writers for label in w.sent]
    acknowledged = [label for w in writers for label, _ in w.acknowledged]
    failed = [failure for w in writers for failure in w.failed]
    lost = [label for label in acknowledged if label not in stored]
    duplicated = {label: n for label, n in stored.items() if n > 1}
    times = sorted(at for w in writers for _, at in w.acknowledged)
    gap = max(later - earlier for earlier, later in itertools.pairwise(times))
    promoted_line = next(line for line in log_text.splitlines() if "is the primary now" in line)
    promoted_wall = datetime.fromisoformat(promoted_line.split(" ", 1)[0])
    timed = [t for w in writers for t in w.timed]
    p99 = {
        "before": _p99([b - a for a, b in timed if b < killed_at]),
        "during": _p99([b - a for a, b in timed if a < promoted_at and b >= killed_at]),
        "after": _p99([b - a for a, b in timed if a >= promoted_at]),
    }
    print(f"\n{log_text}")
    print(
        f"failover: {len(sent)} runs sent by {WRITERS} writers, {len(acknowledged)} "
        f"acknowledged, {len(failed)} failed, {len(lost)} acknowledged but lost, "
        f"{len(duplicated)} duplicated; longest pause between acknowledgements {gap:.2f} s; "
        f"standby promoted {(promoted_wall - killed_wall).total_seconds():.2f} s after the kill; "
        "p99 of a write before / during / after: "
        + " / ".join(f"{seconds * 1000:.0f} ms" for seconds in p99.values())
    )
    assert lost == [], f"acknowledged writes missing on the promoted server: {lost[:5]}"
    assert duplicated == {}, f"writes stored more than once: {duplicated}"
    assert failed == [], f"writers gave up: {failed[:3]}"
    assert stored.get("after-the-promotion") == 1
    assert stored.get("during-the-outage") == 1
    unacknowledged = set(sent) - set(acknowledged)
    assert all(stored.get(label, 0) <= 1 for label in unacknowledged)


def _post_run(base: str, headers: dict[str, str], pipeline: str) -> httpx.Response:
    """Start a run through the tracking server (its start is retried after a lost connection,
    and so is the lookup of the token)."""
    body = {"pipeline": pipeline, "task": "classification", "metric": "accuracy",
            "spec_path": "s.yaml", "spec_hash": "h", "spec": {}, "environment": {}}  # fmt: skip
    return httpx.post(f"{base}/api/v1/runs", headers=headers, json=body, timeout=40)


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {seconds} s")
        time.sleep(0.05)


def _p99(latencies: list[float]) -> float:
    """The 99th percentile of ``latencies`` (the largest when there are fewer than 100)."""
    if not latencies:
        return float("nan")
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
