"""Two tracking servers on one PostgreSQL and one object store, behind HAProxy, and one of them
SIGKILLed and started again while clients register runs and model versions through the balancer.

Nothing is lost, doubled or half-written: every registration a client saw succeed is there once
(one run, succeeded, with its candidates and metrics; one model version of it, whose artifact is
stored and whose signature and checksum the server verifies), no run or version comes from a
retry, and the audit log has one entry per applied write. The clients are the real remote client
(retries with idempotency keys) in threads; the figures (requests sent, retried, failed, p99 of a
registration before, during and after the kill) are printed.
"""

from __future__ import annotations

import hashlib
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mlship.config import Settings
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, mlship_env
from tests.contract import register_model
from tests.haproxy_fixture import haproxy
from tests.objectstore import ObjectStore
from tests.serving import Server, free_port, start_server

CLIENTS = 4
PHASE_SECONDS = 3.0


def _secret(output: str) -> str:
    return next(line.strip() for line in output.splitlines() if line.strip().startswith("mls_"))


@dataclass
class Load:
    """What the clients did: each registration's start, duration and outcome."""

    done: list[tuple[float, float, str]] = field(default_factory=list)
    failed: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    warm: threading.Barrier = field(default_factory=lambda: threading.Barrier(CLIENTS + 1))

    def run(self, client: Workspace, number: int) -> None:
        """Register one model version after another until told to stop; the first one warms the
        client up (imports, connections) and is checked like the others but not timed."""
        first = True
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                name = register_model(client, versions=1, prefix=f"chaos{number}")
            except Exception as exc:
                self.failed.append((started, str(exc)))
            else:
                self.done.append((started, -1.0 if first else time.monotonic() - started, name))
            if first:
                first = False
                self.warm.wait(timeout=120)


def _p99(durations: list[float]) -> str:
    if not durations:
        return "-"
    ordered = sorted(durations)
    return f"{ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000:.0f} ms"


@pytest.fixture
def cluster(
    tmp_path: Path, postgres_url: str, object_store: ObjectStore
) -> Iterator[dict[str, Any]]:
    from tests.services import create_database

    database = create_database(postgres_url, f"mlship_chaos_{secrets.token_hex(4)}")
    home = tmp_path / "server"
    env = {
        **object_store.env(),
        "MLSHIP_DATABASE_URL": database,
        "MLSHIP_ARTIFACT_ROOT": f"s3://{object_store.bucket}/chaos-{secrets.token_hex(4)}",
        "MLSHIP_USER": "ops",
    }
    tokens = {}
    invoke_cli("users", "add", "admin", "--role", "admin", home=home, env=env)
    tokens["admin"] = _secret(invoke_cli("tokens", "create", "admin", home=home, env=env).stdout)
    for number in range(CLIENTS):
        user = f"client{number}"
        invoke_cli("users", "add", user, "--role", "scientist", home=home, env=env)
        tokens[user] = _secret(invoke_cli("tokens", "create", user, home=home, env=env).stdout)
    ports = [free_port(), free_port()]

    def start(port: int) -> Server:
        return start_server(
            [sys.executable, "-m", "mlship", "server", "--port", str(port), "--log-level",
             "warning"],
            mlship_env(home, env),
            f"http://127.0.0.1:{port}",
            ready="/api/v1/health",
            ready_status=401,
        )  # fmt: skip

    with ThreadPoolExecutor(2) as pool:
        servers = list(pool.map(start, ports))
    try:
        with haproxy(ports) as balancer:
            yield {"servers": servers, "ports": ports, "start": start, "balancer": balancer,
                   "tokens": tokens, "database": database, "home": home}  # fmt: skip
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.stop()


def test_killing_a_tracking_server_loses_doubles_and_half_writes_nothing(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    url = cluster["balancer"].url
    clients = [
        Workspace.open(
            Settings(
                home=tmp_path / f"client{n}",
                url=url,
                token=cluster["tokens"][f"client{n}"],
                user=f"client{n}",
                n_jobs=1,
                retry_attempts=8,
                retry_seconds=30,
            )
        )
        for n in range(CLIENTS)
    ]
    load = Load()
    threads = [threading.Thread(target=load.run, args=(c, n)) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    load.warm.wait(timeout=120)
    began = time.monotonic()
    time.sleep(PHASE_SECONDS)
    victim: Server = cluster["servers"][0]
    killed = time.monotonic()
    victim.process.kill()  # SIGKILL: in-flight requests get no answer at all
    victim.process.wait(timeout=10)
    time.sleep(1.0)
    cluster["servers"][0] = cluster["start"](cluster["ports"][0])
    back = time.monotonic() + 0.6 + 0.3  # HAProxy's two good checks before it sends traffic
    time.sleep(PHASE_SECONDS + 0.9)
    load.stop.set()
    for thread in threads:
        thread.join(timeout=120)
    ended = time.monotonic()
    sent = sum(c.remote.sent for c in clients if c.remote is not None)
    retried = sum(c.remote.retried for c in clients if c.remote is not None)
    replayed = sum(c.remote.replayed for c in clients if c.remote is not None)
    proxy = cluster["balancer"].backend_stats()
    for client in clients:
        client.close()

    phases: dict[str, list[float]] = {"before": [], "during": [], "after": []}
    for started, took, _ in load.done:
        if took < 0:
            continue  # a client's first registration: checked below, not timed
        phase = "before" if started < killed else "during" if started < back else "after"
        phases[phase].append(took)
    print(
        f"\nchaos: {len(load.done)} registrations, {ended - began:.1f} s of timed load, "
        f"{len(load.failed)} failed; requests sent {sent}, retried by the clients {retried}, "
        f"by HAProxy {proxy['wretr']} ({proxy['wredis']} to the other server), answered from a "
        f"key's record {replayed}, 5xx from HAProxy {proxy['hrsp_5xx']}; p99 of a "
        "registration (about 5 requests): "
        + ", ".join(f"{phase} {_p99(taken)} (n={len(taken)})" for phase, taken in phases.items())
    )
    assert not load.failed, f"registrations failed: {load.failed[:3]}"
    assert phases["before"] and phases["during"] and phases["after"], phases
    _check_once_and_whole(cluster, [name for *_, name in load.done])


def _check_once_and_whole(cluster: dict[str, Any], names: list[str]) -> None:
    engine = sa.create_engine(cluster["database"], poolclass=sa.NullPool)
    try:
        with engine.connect() as db:
            runs = db.execute(
                sa.text("SELECT id, pipeline, status, dataset_id FROM runs "
                        "WHERE pipeline LIKE 'chaos%'")
            ).all()  # fmt: skip
            versions = db.execute(
                sa.text(
                    "SELECT v.id, m.name, v.version, v.run_id, v.artifact_sha256 "
                    "FROM model_versions v JOIN registered_models m ON m.id = v.model_id "
                    "WHERE m.name LIKE 'chaos%'"
                )
            ).all()
            parts: dict[str, int] = dict(
                db.execute(
                    sa.text(
                        "SELECT r.id, (SELECT count(*) FROM candidates c WHERE c.run_id = r.id) "
                        "* (SELECT count(*) FROM metrics m WHERE m.run_id = r.id) FROM runs r "
                        "WHERE r.pipeline LIKE 'chaos%'"
                    )
                ).all()
            )
            audit = db.execute(
                sa.text(
                    "SELECT changes FROM audit_log WHERE outcome = 'ok' "
                    """AND "user" LIKE 'client%'"""
                )
            ).all()
    finally:
        engine.dispose()
    by_pipeline = Counter(run.pipeline for run in runs)
    by_model = Counter(version.name for version in versions)
    assert sorted(by_pipeline) == sorted(names), "a run nobody saw succeed, or one missing"
    assert set(by_pipeline.values()) == {1}, f"runs doubled: {by_pipeline.most_common(3)}"
    assert sorted(by_model) == sorted(names) and set(by_model.values()) == {1}
    assert all(run.status == "succeeded" and run.dataset_id for run in runs)
    assert all(parts[run.id] > 0 for run in runs), "a run without its candidates or metrics"
    run_ids = {run.id for run in runs}
    assert {version.run_id for version in versions} == run_ids
    audited_runs = Counter(i for (c,) in audit for i in c.get("runs", {}).get("insert", []))
    audited_versions = Counter(
        int(i) for (c,) in audit for i in c.get("model_versions", {}).get("insert", [])
    )
    assert audited_runs == Counter(run_ids), "one audit entry per run, none from a retry"
    assert audited_versions == Counter(v.id for v in versions)
    headers = {"Authorization": f"Bearer {cluster['tokens']['admin']}"}
    with httpx.Client(base_url=f"{cluster['balancer'].url}/api/v1", headers=headers) as http:
        for version in versions:  # the server verifies signature and checksum before sending
            answer = http.get(f"/models/{version.name}/versions/{version.version}/artifact")
            assert answer.status_code == 200, answer.text
            assert hashlib.sha256(answer.content).hexdigest() == version.artifact_sha256
        sha256, data = versions[-1].artifact_sha256, answer.content
        for _ in range(2):  # an upload retried after it was stored: the same bytes, no error
            again = http.put(f"/artifacts/{sha256}", content=data)
            assert again.status_code == 200 and again.json()["sha256"] == sha256, again.text
