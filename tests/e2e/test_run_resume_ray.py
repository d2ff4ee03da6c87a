"""A search on Ray loses a worker mid-trial: the run finishes, no finished trial lost or repeated.

A spot node that goes away takes its Ray workers with it. The real command tunes the churn
example on a local Ray instance it starts itself; once the study holds two finished trials, one
Ray worker busy with a task is killed outright (SIGKILL). Ray runs the lost task again on another
worker (a task whose worker died is retried), so the same trial, already asked by the driver,
gets its value: the search must end with exactly its budget of finished trials, the trials that
had finished before the kill untouched, and none asked twice. Should Ray give the task up
instead, ``mlship run --resume`` must take the run over with the same guarantees.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil
from optuna.trial import TrialState

from tests.conftest import run_cli
from tests.e2e.test_run_resume import FINISHED, _finished_trials, _searching, _trials
from tests.killing import Running, light

TRIALS = 8
"""The search's budget: the kill waits for a worker busy with a trial, not for a moment between
two trials, so a short search is cut in the middle however loaded the machine is."""
BUSY_TIMEOUT = 60.0
TASK = "_call_with_shared"
"""The function every task of the Ray executor runs (``mlship.train.executors``)."""


def _on_ray(spec: Path) -> Path:
    text = spec.read_text()
    spec.write_text(f"executor: ray\n{text}")
    return spec


def _busy_worker(running: Running) -> psutil.Process:
    """A Ray worker of the run's own instance that is running a task: its title is ``ray::``
    and the task's function. (``ray::DashboardAgent`` and ``ray::RuntimeEnvAgent`` are the
    node's own agents: the raylet goes down with them, which is a node lost, not a worker.)"""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while time.monotonic() < deadline:
        for process in running.tree():
            try:
                title = " ".join(process.cmdline())
            except psutil.Error:
                continue
            if title.startswith(f"ray::{TASK}"):
                return process
        time.sleep(0.05)
    raise AssertionError(f"no busy Ray worker in time:\n{running.output}")


def test_a_ray_worker_killed_mid_trial_loses_and_repeats_no_trial(
    churn_spec: Path, tmp_path: Path
) -> None:
    spec, home = _on_ray(_searching(light(churn_spec), TRIALS)), tmp_path / "home"
    running = Running.start(spec, home)
    running.wait_for("two finished trials", lambda: _finished_trials(home) >= 2)
    short = running.run_id()
    worker = _busy_worker(running)
    done_before = _finished_trials(home)
    worker.send_signal(signal.SIGKILL)
    code = running.process.wait(timeout=300)
    running.eof.wait(timeout=10)
    if code != 0:  # Ray gave the task up: the run is resumed instead
        resumed = run_cli("run", str(spec), "--resume", short, home=home, cwd=spec.parent)
        assert "Registered churn:1" in resumed.stdout
    else:
        assert "Registered churn:1" in running.output, running.output

    _, trials, _ = _trials(home, short)
    finished = [t for t in trials.values() if t.state in FINISHED]
    assert len(finished) == TRIALS, {n: t.state.name for n, t in trials.items()}
    assert done_before >= 2
    asked = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(asked)) == len(asked), "a trial was asked twice"
    assert all(t.state != TrialState.RUNNING for t in trials.values())
