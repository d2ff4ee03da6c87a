"""Through ``mlship server``: a run's heartbeat is a lease renewed over HTTP by its owner, judged by
the server's clock; a run whose lease ran out, or whose process on the server's host is gone,
shows as abandoned to every client; closing and resuming follow the same rules as locally."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from mlship.config import Settings
from mlship.examples.churn import write_project
from mlship.store.liveness import LEASE_SECONDS, RunStateError, Worker
from mlship.workspace import Workspace
from tests.conftest import SMALL_ROWS, run_cli
from tests.killing import Running, kill_and_check_nothing_survives, light
from tests.tracking import Team


@pytest.fixture
def alice(team: Team, tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace.open(
        Settings(home=tmp_path / "alice", url=team.url, token=team.tokens["alice"])
    )
    yield workspace
    workspace.close()


def _start(workspace: Workspace, worker: Worker) -> str:
    return workspace.tracking.start_run(
        pipeline="leased", task="classification", metric="accuracy",
        spec_path="leased.yaml", spec_hash="l" * 64, spec={}, git_commit=None, environment={},
        worker=worker,
    )  # fmt: skip


def _age(team: Team, run_id: str, seconds: float) -> None:
    engine = sa.create_engine(team.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE runs SET heartbeat_at = :at WHERE id = :id"),
                {"at": datetime.now(UTC) - timedelta(seconds=seconds), "id": run_id},
            )
    finally:
        engine.dispose()


def test_the_lease_is_renewed_over_http_and_runs_out(team: Team, alice: Workspace) -> None:
    run_id = _start(alice, Worker("laptop-9", 4242))
    run = alice.tracking.get_run(run_id)
    assert (run.status, run.host, run.pid) == ("running", "laptop-9", 4242)

    _age(team, run_id, LEASE_SECONDS + 10)
    run = alice.tracking.get_run(run_id)
    assert run.status == "abandoned"
    # 40 s old when aged; a second or two more by the time a loaded machine reads it
    assert re.search(r"no heartbeat from pid 4242 on laptop-9 for 4\d s", run.error or "")
    assert alice.tracking.heartbeat(run_id) is True  # renewed: running again, for everyone
    assert alice.tracking.get_run(run_id).status == "running"

    # Only the run's owner (or an admin) renews its lease or closes it; viewers only look.
    for user in ("sam", "victor"):
        headers = team.headers(user)
        answer = httpx.post(f"{team.url}/api/v1/runs/{run_id}/heartbeat", headers=headers)
        assert answer.status_code == 403, answer.text

    # Refusals are the local store's, class and message: a 409 carries them.
    with pytest.raises(RunStateError, match=r"^run \w{8} of leased is still running"):
        alice.tracking.reopen_run("leased", "l" * 64, worker=Worker("laptop-9", 5000))
    with pytest.raises(RunStateError, match=r"^run \w{8} looks alive: pid 4242 on"):
        alice.tracking.abandon_run(run_id, reason="")
    closed = alice.tracking.abandon_run(run_id, reason="laptop lost", force=True)
    assert (closed.status, closed.error) == ("abandoned", "abandoned by alice: laptop lost")
    assert alice.tracking.heartbeat(run_id) is False
    with pytest.raises(RunStateError, match=r"^run \w{8} already finished"):
        alice.tracking.abandon_run(run_id, reason="")


def test_a_process_must_be_described_whole(team: Team) -> None:
    body = {
        "pipeline": "leased", "task": "classification", "metric": "accuracy",
        "spec_path": "x.yaml", "spec_hash": "h", "spec": {}, "environment": {}, "host": "h1",
    }  # fmt: skip
    answer = httpx.post(f"{team.url}/api/v1/runs", json=body, headers=team.headers("alice"))
    assert answer.status_code == 422
    assert "host and pid of a run's process go together" in answer.text
    for pid in (0, -5, 2**40):
        bad = httpx.post(
            f"{team.url}/api/v1/runs", json={**body, "pid": pid}, headers=team.headers("alice")
        )
        assert bad.status_code == 422, bad.text


def test_a_killed_client_run_is_abandoned_on_the_server(team: Team, tmp_path: Path) -> None:
    spec = light(write_project(tmp_path / "churn", n=SMALL_ROWS))
    # The team server is shared by the session's tests: a pipeline of its own keeps this run's
    # versions apart from the churn model other tests register there.
    spec.write_text(spec.read_text().replace("\nname: churn\n", "\nname: churn-lease\n", 1))
    assert "name: churn-lease" in spec.read_text()
    home = tmp_path / "alice-home"
    # The run talks to the server only: its records, heartbeat and tuning journal are there.
    running = Running.start(spec, home, env=team.env("alice"))
    running.wait_for("ingest", lambda: "Ingesting and checking data" in running.output)
    run_id = running.run_id()
    assert kill_and_check_nothing_survives(running, signal.SIGKILL) == -signal.SIGKILL

    # The server is on this host, so it sees the process is gone without waiting for the lease.
    listed = run_cli("runs", "list", home=tmp_path / "victor", env=team.env("victor")).stdout
    assert re.search(rf"{run_id}.*abandoned", listed), listed
    resumed = run_cli("run", str(spec), "--resume", home=home, env=team.env("alice")).stdout
    assert f"Resuming run {run_id} (attempt 2)" in resumed
