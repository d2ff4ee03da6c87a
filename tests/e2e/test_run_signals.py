"""``mlship run`` killed at each stage: the record says what happened and nothing is left running.

Each case starts the real command on the small churn example with two pool workers, waits for a
stage (a line of its progress output, or the pool's worker processes appearing), sends SIGTERM
(what CI and Kubernetes send on cancel) or SIGKILL (no chance to clean up), and then checks that
the run is ``failed`` or ``abandoned``, that no process of the killed one's tree outlives it by
ten seconds, that the reader of its output gets end-of-file, and that the next run works.
Only the killed process is signalled, never its group: its workers must go on their own.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.killing import (
    Running,
    kill_and_check_nothing_survives,
    light,
    pool_workers,
    ray_tasks,
)

RESUMED = {
    (signal.SIGTERM, "training"),
    (signal.SIGKILL, "training"),
    (signal.SIGKILL, "evaluation"),
}
"""The cases that go on to resume: a failed and an abandoned run, one with its search half done;
resuming is the same after every stage, and each resume is a whole run."""


def _reach(running: Running, stage: str) -> None:
    if stage == "ingest":
        running.wait_for("ingest", lambda: "Ingesting and checking data" in running.output)
    elif stage == "training":
        running.wait_for("pool workers", lambda: pool_workers(running) >= 2)
    else:  # evaluation, on joblib's workers, and registration
        running.wait_for("evaluation", lambda: "Evaluating:" in running.output)


def _flat(text: str) -> str:
    """``text`` with its line wrapping undone."""
    return " ".join(text.split())


def _status(home: Path, run_id: str) -> tuple[str, str]:
    shown = run_cli("runs", "show", run_id, home=home).stdout
    status = re.search(r"│ status\s+│ (\S+)", shown)
    error = re.search(r"│ error\s+│ (.+?)\s*│", shown)
    assert status, shown
    return status.group(1), error.group(1) if error else ""


@pytest.mark.parametrize("stage", ["ingest", "training", "evaluation"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_a_killed_run_is_recorded_and_leaves_nothing_running(
    churn_spec: Path, tmp_path: Path, stage: str, sig: signal.Signals
) -> None:
    spec, home = light(churn_spec), tmp_path / "home"
    running = Running.start(spec, home)
    _reach(running, stage)
    run_id = running.run_id()

    code = kill_and_check_nothing_survives(running, sig)

    status, error = _status(home, run_id)
    if sig == signal.SIGTERM:
        assert code == 143, running.output
        assert "terminated (SIGTERM): workers stopped, run marked failed" in running.output
        assert (status, error) == ("failed", "terminated by SIGTERM")
    else:
        assert code == -signal.SIGKILL
        assert status == "abandoned"
        assert error.startswith("abandoned: its process (pid ")
        assert "is gone" in error
    listed = run_cli("runs", "list", home=home).stdout
    assert re.search(rf"{run_id}.*{status}", listed), listed
    if (sig, stage) not in RESUMED:
        return

    # The same spec again: --resume takes the killed run over and finishes it.
    resumed = run_cli("run", str(spec), "--resume", home=home, cwd=spec.parent).stdout
    assert f"Resuming run {run_id} (attempt 2)" in resumed
    assert "Registered churn:1" in resumed
    assert _status(home, run_id) == ("succeeded", "")


def test_the_next_run_after_a_kill_is_a_new_run(churn_spec: Path, tmp_path: Path) -> None:
    spec, home = light(churn_spec), tmp_path / "home"
    running = Running.start(spec, home)
    _reach(running, "training")
    killed = running.run_id()
    kill_and_check_nothing_survives(running, signal.SIGKILL)

    again = run_cli("run", str(spec), home=home, cwd=spec.parent).stdout
    assert "Registered churn:1" in again
    started = re.search(r"Started run ([0-9a-f]{8})", again)
    assert started and started.group(1) != killed
    listed = run_cli("runs", "list", home=home).stdout
    assert re.search(rf"{killed}.*abandoned", listed) and "succeeded" in listed

    # Closed by hand, with a reason; a finished run cannot be abandoned again.
    closed = _flat(run_cli("runs", "abandon", killed, "--reason", "node lost", home=home).stdout)
    assert re.search(rf"Run {killed} is abandoned \(abandoned by \S+: node lost\)", closed)
    status, error = _status(home, killed)
    assert status == "abandoned" and re.fullmatch(r"abandoned by \S+: node lost", error)
    refused = run_cli("runs", "abandon", killed, home=home, check=False)
    assert refused.returncode == 1
    assert f"run {killed} already finished (abandoned at" in _flat(refused.stderr)
    newest = run_cli("runs", "abandon", started.group(1), home=home, check=False)
    assert "already finished (succeeded at" in _flat(newest.stderr)


def test_a_live_run_cannot_be_abandoned_or_resumed_by_another(
    churn_spec: Path, tmp_path: Path
) -> None:
    spec, home = light(churn_spec), tmp_path / "home"
    running = Running.start(spec, home)
    _reach(running, "ingest")
    run_id = running.run_id()
    # Held still, so that the light run cannot finish while the other commands look at it; a
    # stopped process is alive and its heartbeat stays fresh for LEASE_SECONDS.
    os.kill(running.process.pid, signal.SIGSTOP)
    try:
        refused = run_cli("runs", "abandon", run_id, home=home, check=False)
        assert refused.returncode == 1
        message = _flat(refused.stderr)
        assert f"run {run_id} looks alive: pid {running.process.pid} on " in message
        assert "pass --force to close the record anyway" in message
        second = run_cli("run", str(spec), "--resume", home=home, cwd=spec.parent, check=False)
        assert second.returncode == 1
        message = _flat(second.stderr)
        assert f"run {run_id} of churn is still running (pid {running.process.pid}" in message
        assert _status(home, run_id)[0] == "running"
    finally:
        os.kill(running.process.pid, signal.SIGCONT)
        kill_and_check_nothing_survives(running, signal.SIGTERM)
    assert _status(home, run_id) == ("failed", "terminated by SIGTERM")


RAY_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")
"""Helpers of a local Ray's node. After a kill -9 of the driver they see their raylet go at once,
but then try to report its death to the (also dead) GCS for about a minute before they exit;
they do not hold the run's output open."""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_a_run_on_ray_killed_while_its_tasks_run(
    churn_spec: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    spec, home = light(churn_spec), tmp_path / "home"
    spec.write_text(
        spec.read_text().replace("task: classification", "task: classification\nexecutor: ray")
    )
    running = Running.start(spec, home, env={"RAY_ADDRESS": ""})
    running.wait_for("Ray tasks", lambda: ray_tasks(running) >= 1)
    run_id = running.run_id()

    # The driver's tasks, its raylet and GCS go with it (Ray shares their fate with the driver).
    spared = RAY_AGENTS if sig == signal.SIGKILL else ()
    code = kill_and_check_nothing_survives(running, sig, spared=spared)

    if sig == signal.SIGTERM:
        assert code == 143, running.output
        assert _status(home, run_id) == ("failed", "terminated by SIGTERM")
    else:
        assert code == -signal.SIGKILL
        assert _status(home, run_id)[0] == "abandoned"
