"""Tracking-server replicas behind HAProxy (``mlship deploy haproxy --server``) on one workspace:
every replica answers for the same database, a killed one is restarted, and requests sent while
it dies are answered by the others."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import invoke_cli, run_cli
from tests.replicated import deployed
from tests.tracking import _secret


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_tracking_servers_share_one_database_and_outlive_a_killed_one(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "server"
    env = {}
    if database == "postgresql":
        from tests.services import create_database

        url = create_database(request.getfixturevalue("postgres_url"), "mlship_replicas")
        env = {"MLSHIP_DATABASE_URL": url}
    invoke_cli("users", "add", "admin", "--role", "admin", home=home, env=env)
    token = _secret(invoke_cli("tokens", "create", "admin", home=home, env=env).stdout)
    headers = {"Authorization": f"Bearer {token}"}
    with deployed(None, home, 2, tmp_path / "deploy", "--server", env=env) as deployment:
        # It says what a shared SQLite file means, and nothing about PostgreSQL.
        assert ("SQLite" in deployment.output) == (database == "sqlite")
        client = {"MLSHIP_URL": deployment.url, "MLSHIP_TOKEN": token}
        for name in ("carol", "dave", "erin", "frank"):  # writes spread over both replicas
            run_cli("users", "add", name, "--role", "viewer", home=tmp_path / "c", env=client)
        listed = run_cli("users", "list", home=tmp_path / "c", env=client).stdout
        assert all(name in listed for name in ("admin", "carol", "dave", "erin", "frank"))

        failures: list[str] = []
        answered = 0
        done = threading.Event()

        def read() -> None:
            nonlocal answered
            with httpx.Client(base_url=deployment.url, headers=headers, timeout=30) as http:
                while not done.is_set():
                    response = http.get("/api/v1/health")
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    answered += 1

        readers = [threading.Thread(target=read) for _ in range(3)]
        for reader in readers:
            reader.start()
        try:
            killed = deployment.pid(1)
            os.kill(killed, signal.SIGKILL)
            deployment.wait_for(f"replica-1 (pid {killed}, port")
            deployment.wait_for("replica-1 is UP in HAProxy", timeout=90)
        finally:
            done.set()
            for reader in readers:
                reader.join(timeout=60)
        assert answered > 0
        assert not failures, failures[:5]
