"""Runs whose process is gone: heartbeats, the abandoned status, closing by hand, resuming; and
the workers that must not outlive their owner. All on a real SQLite store and real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from mlship.store.liveness import LEASE_SECONDS, RunStateError, Worker, judge, this_host
from mlship.store.metadata import MetadataStore
from mlship.store.tables import AuditEntry, Run, utcnow
from mlship.train.executors import ProcessExecutor
from mlship.train.heartbeat import Heartbeat
from mlship.workspace import Workspace


def _start(store: MetadataStore, worker: Worker | None) -> str:
    return store.start_run(
        pipeline="p", task="classification", metric="accuracy", spec_path="/x.yaml",
        spec_hash="0" * 64, spec={}, git_commit=None, environment={}, worker=worker,
    )  # fmt: skip


def _age_heartbeat(store: MetadataStore, run_id: str, seconds: float) -> None:
    with store.transaction() as session:
        beat = utcnow() - timedelta(seconds=seconds)
        session.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=beat))


def _stored_status(store: MetadataStore, run_id: str) -> str:
    with store.transaction() as session:
        return session.get_one(Run, run_id).status


def _ended_pid() -> int:
    """The pid of a process of this host that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_run_records_its_process_and_is_running_while_it_beats(workspace: Workspace) -> None:
    store = workspace.metadata
    run_id = _start(store, Worker.this_process())
    run = store.get_run(run_id)
    assert (run.status, run.host, run.pid) == ("running", this_host(), os.getpid())
    assert run.heartbeat_at is not None
    assert [r.status for r in store.list_runs()] == ["running"]


def test_a_run_whose_process_is_gone_is_shown_abandoned_but_not_rewritten(
    workspace: Workspace,
) -> None:
    store = workspace.metadata
    pid = _ended_pid()
    run_id = _start(store, Worker(this_host(), pid))
    run = store.get_run(run_id)
    assert run.status == "abandoned"
    assert run.error is not None
    assert run.error.startswith(f"abandoned: its process (pid {pid} on {this_host()}) is gone")
    assert [r.status for r in store.list_runs()] == ["abandoned"]
    assert _stored_status(store, run_id) == "running"  # judged when read, never written back


def test_a_pid_reused_by_a_newer_process_does_not_keep_a_run_alive(workspace: Workspace) -> None:
    # This process started after the run's last heartbeat: it cannot be the run's process.
    store = workspace.metadata
    run_id = _start(store, Worker(this_host(), os.getpid()))
    _age_heartbeat(store, run_id, time.time() - psutil.Process().create_time() + 60)
    assert "is gone" in (store.get_run(run_id).error or "")


def test_a_heartbeat_older_than_the_lease_is_abandoned_on_any_host(workspace: Workspace) -> None:
    store = workspace.metadata
    run_id = _start(store, Worker("build-agent-7", 4242))
    _age_heartbeat(store, run_id, LEASE_SECONDS - 5)
    assert store.get_run(run_id).status == "running"  # another host: only the lease counts
    _age_heartbeat(store, run_id, LEASE_SECONDS + 5)
    run = store.get_run(run_id)
    assert run.status == "abandoned"
    assert "no heartbeat from pid 4242 on build-agent-7 for 35 s" in (run.error or "")
    assert store.heartbeat(run_id) is True  # a late beat: running again
    assert store.get_run(run_id).status == "running"


def test_runs_from_before_heartbeats_are_left_as_they_are(workspace: Workspace) -> None:
    store = workspace.metadata
    run_id = _start(store, None)
    with store.transaction() as session:
        session.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=None))
    assert store.get_run(run_id).status == "running"
    closed = store.abandon_run(run_id, reason="")
    assert (closed.status, closed.error) == ("abandoned", "abandoned by tester: closed by hand")


def test_abandoning_refuses_live_and_finished_runs(workspace: Workspace) -> None:
    store = workspace.metadata
    run_id = _start(store, Worker.this_process())
    with pytest.raises(RunStateError, match=rf"run {run_id[:8]} looks alive: pid {os.getpid()}"):
        store.abandon_run(run_id[:8], reason="")
    closed = store.abandon_run(run_id[:8], reason="stuck in a loop", force=True)
    assert (closed.status, closed.error) == ("abandoned", "abandoned by tester: stuck in a loop")
    assert closed.finished_at is not None and closed.wall_seconds is not None
    assert store.heartbeat(run_id) is False  # the beating process is told to stop
    with pytest.raises(RunStateError, match=r"already finished \(abandoned at .* UTC\)"):
        store.abandon_run(run_id, reason="")


def test_a_dead_run_gets_the_reason_it_was_detected_by(workspace: Workspace) -> None:
    store = workspace.metadata
    pid = _ended_pid()
    run_id = _start(store, Worker(this_host(), pid))
    closed = store.abandon_run(run_id, reason="")
    assert closed.error is not None
    assert closed.error.startswith(f"abandoned by tester: its process (pid {pid} on ")


def test_resuming_refuses_a_live_run_and_takes_over_a_dead_one(workspace: Workspace) -> None:
    store = workspace.metadata
    run_id = _start(store, Worker.this_process())
    with pytest.raises(RunStateError, match=rf"run {run_id[:8]} of p is still running"):
        store.reopen_run("p", "0" * 64, worker=Worker("elsewhere", 1))
    store.fail_run(run_id, "terminated by SIGTERM", utcnow())
    assert store.reopen_run("p", "0" * 64, worker=Worker("elsewhere", 7)) == (run_id, 2)
    run = store.get_run(run_id)
    assert (run.status, run.host, run.pid, run.error) == ("running", "elsewhere", 7, None)


def test_a_failure_after_the_results_were_committed_keeps_them(workspace: Workspace) -> None:
    store = workspace.metadata
    table = workspace.artifacts.put_bytes(b"a dataset").sha256
    dataset, _ = store.get_or_add_dataset("d" * 64, table, 1, [{"name": "x"}], [])
    run_id = _start(store, Worker.this_process())
    store.finish_run(
        run_id, dataset_id=dataset.id, candidates=[], metrics=[], best_candidate="m",
        wall_seconds=1.0,
    )  # fmt: skip
    store.fail_run(run_id, "terminated by SIGTERM", utcnow())  # e.g. SIGTERM right after commit
    assert (store.get_run(run_id).status, store.get_run(run_id).error) == ("succeeded", None)


def test_heartbeats_are_bookkeeping_not_audited_changes(workspace: Workspace) -> None:
    store = workspace.metadata
    run_id = _start(store, Worker.this_process())

    def entries() -> int:
        with store.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)

    before = entries()
    assert store.heartbeat(run_id) is True
    assert entries() == before
    store.abandon_run(run_id, reason="", force=True)
    assert entries() == before + 1  # closing a run is a change, and audited


def test_the_heartbeat_thread_renews_and_stops(workspace: Workspace) -> None:
    store = workspace.metadata
    run_id = _start(store, Worker.this_process())
    _age_heartbeat(store, run_id, 3600)
    with Heartbeat(store, run_id, interval=0.05) as beating:
        deadline = time.monotonic() + 60
        while store.get_run(run_id).status != "running":
            assert time.monotonic() < deadline, "the heartbeat was never renewed"
            time.sleep(0.05)
    assert not beating._thread.is_alive()


# -- workers die with their owner ---------------------------------------------------------------


def test_a_worker_whose_owner_is_gone_ends_at_once() -> None:
    code = f"from mlship.train.lifeline import arm; arm({_ended_pid()}); print('still here')"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (found.returncode, found.stdout) == (137, "")


def test_a_worker_ends_when_its_owner_is_killed() -> None:
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    code = f"from mlship.train.lifeline import arm; arm({owner.pid}); import time; time.sleep(600)"
    worker = subprocess.Popen([sys.executable, "-c", code])
    try:
        owner.kill()
        owner.wait()
        assert worker.wait(timeout=60) == 137
    finally:
        worker.kill()


def sleep_unless_quick(item: int, shared: dict[str, Any]) -> int:
    """Item 0 returns at once; item 1 records that it started and would sleep for minutes."""
    if item == 1:
        directory = Path(shared["directory"])
        (directory / "pid").write_text(str(os.getpid()))
        time.sleep(300)
        (directory / "finished").touch()
    return item


def test_leaving_a_pool_on_an_exception_stops_running_tasks(tmp_path: Path) -> None:
    def stop(index: int, result: int) -> None:
        deadline = time.monotonic() + 60
        while not (tmp_path / "pid").exists():  # the slow task is running on the other worker
            assert time.monotonic() < deadline
            time.sleep(0.02)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), ProcessExecutor(workers=2) as executor:
        executor.map(
            sleep_unless_quick, [0, 1], shared={"directory": str(tmp_path)}, on_result=stop
        )
    assert not (tmp_path / "finished").exists()
    assert not psutil.pid_exists(int((tmp_path / "pid").read_text()))


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    age=st.floats(-120, 10 * LEASE_SECONDS, allow_nan=False),
    here=st.booleans(),
    pid_alive=st.booleans(),
    status=st.sampled_from(["running", "succeeded", "failed", "abandoned"]),
)
def test_the_verdict_is_the_lease_and_on_this_host_the_process(
    age: float, here: bool, pid_alive: bool, status: str
) -> None:
    now = utcnow()
    pid = os.getpid() if pid_alive else _GONE_PID
    run = Run(
        status=status,
        host=this_host() if here else "elsewhere.example",
        pid=pid,
        heartbeat_at=now - timedelta(seconds=age),
    )
    found = judge(run, now)
    if status != "running":
        assert found is None
        return
    assert found is not None
    # This process started before any heartbeat in the past; one "from the future" (a clock
    # ahead) is still within the lease.
    reused = here and pid_alive and age > time.time() - psutil.Process().create_time() + 1
    expected = age <= LEASE_SECONDS and (not here or (pid_alive and not reused))
    assert found.alive is expected, found.reason


_GONE_PID = _ended_pid()
