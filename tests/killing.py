"""A real ``mlship run`` (or other) subprocess to kill: its output read live, its process tree
watched."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.conftest import lighten, mlship_env

GRACE_SECONDS = 10.0
STAGE_TIMEOUT = 300.0
"""How long a stage may take to show before the test fails: hang protection only (a command that
starts its own Ray instance on a loaded two-core machine took over two minutes to start its
search)."""


def light(spec: Path) -> Path:
    """The churn example with a shorter search, so that a kill and a resume stay quick."""
    return lighten(spec)


@dataclass
class Running:
    """An ``mlship run`` subprocess whose output (stdout and stderr, one pipe) is read live."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    eof: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(
        cls, spec: Path, home: Path, *args: str, env: dict[str, str] | None = None
    ) -> Running:
        return cls.command(
            [sys.executable, "-m", "mlship", "run", str(spec), *args],
            cwd=spec.parent,
            env=mlship_env(home, {"MLSHIP_N_JOBS": "2", **(env or {})}),
        )

    @classmethod
    def command(cls, args: list[str], *, cwd: Path, env: dict[str, str]) -> Running:
        """Any command, its output read live as an ``mlship run``'s is."""
        process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        running = cls(process)
        threading.Thread(target=running._read, daemon=True).start()
        return running

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
        self.eof.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + STAGE_TIMEOUT
        while not ready():
            assert self.process.poll() is None, f"the run ended before {what}:\n{self.output}"
            assert time.monotonic() < deadline, f"no {what} in time:\n{self.output}"
            time.sleep(0.05)

    def tree(self) -> list[psutil.Process]:
        found: list[psutil.Process] = psutil.Process(self.process.pid).children(recursive=True)
        return found

    def run_id(self) -> str:
        found = re.search(r"Started run ([0-9a-f]{8})", self.output)
        assert found, self.output
        return found.group(1)


def pool_workers(running: Running) -> int:
    """Worker processes of the run's pool: the forkserver's children."""
    servers = [
        p
        for p in running.tree()
        if "multiprocessing.forkserver" in " ".join(_cmdline(p)) and p.ppid() == running.process.pid
    ]
    return sum(len(server.children()) for server in servers)


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        found: list[str] = process.cmdline()
    except psutil.Error:
        return []
    return found


def _alive(processes: list[psutil.Process], spared: tuple[str, ...]) -> list[str]:
    left = []
    for process in processes:
        try:
            if process.status() == psutil.STATUS_ZOMBIE or process.name() in spared:
                continue
            if process.is_running():
                left.append(f"{process.pid} {' '.join(_cmdline(process))[:120]}")
        except psutil.NoSuchProcess:
            continue
    return left


def kill_and_check_nothing_survives(
    running: Running, sig: signal.Signals, *, spared: tuple[str, ...] = ()
) -> int:
    """Send ``sig`` to the run alone; its whole tree must be gone, and its output closed, within
    the grace period (processes named in ``spared`` only need to have closed the output).
    Returns the exit code."""
    tree = running.tree()
    running.process.send_signal(sig)
    code = running.process.wait(timeout=60)
    deadline = time.monotonic() + GRACE_SECONDS
    while _alive(tree, spared) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = _alive(tree, spared)
    output_closed = running.eof.wait(max(0.0, deadline - time.monotonic()) + 1)
    for process in tree:  # never leave them to the next test, whatever the assertions say
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    assert not survivors, f"still running {GRACE_SECONDS:.0f} s after {sig.name}: {survivors}"
    assert output_closed, "the output pipe is still held open"
    return code


def ray_tasks(running: Running) -> int:
    """Ray worker processes of the run that are running one of its tasks."""
    count = 0
    for process in running.tree():
        with contextlib.suppress(psutil.Error):
            count += process.name() == "ray::_call_with_shared"
    return count
