"""A client whose server dies after committing its write, before answering, retries and the write
is applied once: the run finishes once and the model gets one version, not two.

The server dies for real (its process ends between the commit and the answer) and another one is
started on the same workspace and port; the client is the real remote client of a workspace.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from sqlalchemy import select

from mlship.config import Settings
from mlship.store.tables import AuditEntry
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, mlship_env
from tests.contract import register_model
from tests.serving import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]


def _secret(output: str) -> str:
    return next(line.strip() for line in output.splitlines() if line.strip().startswith("mls_"))


def test_a_registration_whose_answer_was_lost_is_retried_and_applied_once(
    tmp_path: Path,
) -> None:
    home = tmp_path / "server"
    invoke_cli("users", "add", "alice", "--role", "scientist", home=home)
    token = _secret(invoke_cli("tokens", "create", "alice", home=home).stdout)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    marker = tmp_path / "died"
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tests.server_dies_after_commit", str(port), "/finish"]
    dying = start_server(
        [*command, str(marker)],
        mlship_env(home, {"PYTHONPATH": path}),
        base,
        ready="/api/v1/health",
        ready_status=401,
    )
    client = Workspace.open(
        Settings(home=tmp_path / "client", url=base, token=token, user="alice",
                 retry_attempts=30, retry_seconds=90)
    )  # fmt: skip
    outcome: dict[str, object] = {}

    def register() -> None:
        try:
            outcome["name"] = register_model(client, versions=1, prefix="lost-answer")
        except Exception as exc:  # the test's thread reports it below
            outcome["error"] = exc

    worker = threading.Thread(target=register)
    worker.start()
    assert dying.process.wait(timeout=120) == 137, dying.output_text()
    assert marker.exists()
    again = start_server(
        [sys.executable, "-m", "mlship", "server", "--port", str(port)],
        mlship_env(home),
        base,
        ready="/api/v1/health",
        ready_status=401,
    )
    try:
        worker.join(timeout=120)
        assert "error" not in outcome, f"the client gave up: {outcome.get('error')}"
        name = str(outcome["name"])
        assert client.remote is not None and client.remote.retried >= 1
        assert client.remote.replayed == 1, "the retry got the recorded answer"
        server = Workspace.open(Settings(home=home, user="ops"))
        try:
            model = next(m for m in server.metadata.list_models() if m.name == name)
            assert [v.version for v in model.versions] == [1]
            runs = [run for run in server.metadata.list_runs(100) if run.pipeline == name]
            assert [run.status for run in runs] == ["succeeded"]
            with server.metadata.transaction() as session:
                entries = session.scalars(select(AuditEntry).where(AuditEntry.user == "alice"))
                registered = [e for e in entries if "model_versions" in e.changes]
            assert len(registered) == 1, "one audit entry for the one registration"
        finally:
            server.close()
    finally:
        client.close()
        again.stop()
