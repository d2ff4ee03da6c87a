"""A tracking server whose database cannot be reached answers 503, which clients retry, and
serves again as soon as the database is back; a retried write is then applied once."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from mlship.config import Settings
from mlship.server.app import create_app
from mlship.workspace import Workspace
from tests.services import create_database


def _admin(url: str) -> sa.Engine:
    parsed = sa.engine.make_url(url).set(database="postgres")
    return sa.create_engine(parsed, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def _allow(url: str, allowed: bool) -> None:
    name = sa.engine.make_url(url).database
    engine = _admin(url)
    try:
        with engine.connect() as db:
            db.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
            if not allowed:
                db.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = :name"),
                    {"name": name},
                )  # fmt: skip
    finally:
        engine.dispose()


def test_a_database_that_is_down_is_a_503_and_then_serves_again(
    tmp_path: Path, postgres_url: str
) -> None:
    database = create_database(postgres_url, f"mlship_down_{uuid.uuid4().hex[:8]}")
    settings = Settings(
        home=tmp_path / "ws", database_url=database, user="ops", database_retry_seconds=1
    )  # the store retries a lost database this long before the server answers 503
    workspace = Workspace.open(settings)
    try:
        workspace.users.add("sci", "scientist")
        secret = workspace.users.create_token("sci", "t").secret
        client = TestClient(create_app(workspace), raise_server_exceptions=False)
        headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": str(uuid.uuid4())}
        body: dict[str, Any] = {"pipeline": "down", "task": "classification", "metric": "accuracy",
                "spec_path": "/s.yaml", "spec_hash": "0" * 64, "spec": {}, "git_commit": None,
                "environment": {}}  # fmt: skip
        _allow(database, False)
        try:
            down = client.post("/api/v1/runs", json=body, headers=headers)
        finally:
            _allow(database, True)
        assert down.status_code == 503, down.text
        detail = down.json()["detail"]
        assert detail.startswith("the metadata database ") and "did not take the work" in detail
        up = client.post("/api/v1/runs", json=body, headers=headers)
        again = client.post("/api/v1/runs", json=body, headers=headers)
        assert up.status_code == again.status_code == 200
        assert again.json() == up.json() and again.headers["Idempotent-Replayed"] == "true"
        assert [r.pipeline for r in workspace.metadata.list_runs()].count("down") == 1
    finally:
        workspace.close()
