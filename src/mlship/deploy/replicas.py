"""Replica processes: started on a port of their own, their output to a log file, restarted with
backoff when they die, and stopped with SIGTERM so that they drain.

Each replica runs in a session of its own, so a Ctrl-C in the terminal reaches only the command
that supervises them, which stops them in order; on Linux each also gets SIGTERM if the supervisor
itself dies without stopping them (``PR_SET_PDEATHSIG``), so no replica outlives it unnoticed.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlship.store.artifacts import atomic_write

FIRST_BACKOFF_S = 0.5
"""Wait before the first restart of a replica that died; doubled after each death in a row."""

MAX_BACKOFF_S = 30.0
"""Longest wait between restarts of a replica that keeps dying."""

STEADY_S = 30.0
"""A replica that has run this long is healthy again: its next death restarts it at once."""

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Ask Linux to send this process SIGTERM when the process that started it ends."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_process(command: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """``command`` in a session of its own, its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )


def write_pid(path: Path, pid: int) -> None:
    """``path`` holds ``pid`` (written whole: a synced temporary file renamed over it), so a
    script can signal the current process of a replica (``kill -9 $(cat replica-2.pid)``)."""
    atomic_write(path, [f"{pid}\n".encode()])


def describe_exit(code: int) -> str:
    """``exited 1`` or ``killed by SIGKILL``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited {code}"


def stop_process(process: subprocess.Popen[bytes], sig: signal.Signals, grace_s: float) -> int:
    """Send ``sig`` and wait up to ``grace_s`` seconds; SIGKILL after that. The exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
    return wait_or_kill(process, grace_s)


def wait_or_kill(process: subprocess.Popen[bytes], grace_s: float) -> int:
    """Wait up to ``grace_s`` seconds for ``process`` to end; SIGKILL after that. The exit
    code."""
    try:
        return process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
    return process.wait()


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file (what a replica said before it died)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


@dataclass
class Replica:
    """One supervised process (a replica, or HAProxy itself): what runs it, where it listens
    and logs, and its history."""

    index: int
    port: int
    command: tuple[str, ...]
    log: Path
    pid_file: Path
    label: str = ""
    """Its name when it is not a replica (``HAProxy``)."""
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    deaths_in_a_row: int = 0
    restart_at: float | None = None
    """When a dead replica is to be started again (monotonic seconds); None while it runs."""
    last_exit: str = ""

    @property
    def name(self) -> str:
        return self.label or f"replica-{self.index}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        self.process = start_process(self.command, self.log)
        self.started_at = time.monotonic()
        self.restart_at = None
        write_pid(self.pid_file, self.process.pid)

    def died(self) -> int | None:
        """The exit code when the running process has just ended, else None."""
        if self.process is None or self.restart_at is not None:
            return None
        return self.process.poll()

    def schedule_restart(self, code: int, now: float) -> float:
        """Record a death with ``code`` and when to start again; the wait in seconds."""
        self.last_exit = describe_exit(code)
        if now - self.started_at >= STEADY_S:
            self.deaths_in_a_row = 0
        wait: float = min(FIRST_BACKOFF_S * 2.0**self.deaths_in_a_row, MAX_BACKOFF_S)
        self.deaths_in_a_row += 1
        self.restart_at = now + wait
        return wait

    def due(self, now: float) -> bool:
        return self.restart_at is not None and now >= self.restart_at

    def restart(self) -> None:
        self.restarts += 1
        self.start()

    def stop(self, grace_s: float) -> int | None:
        """SIGTERM (the replica drains and flushes its logs), SIGKILL after ``grace_s``."""
        if self.process is None or self.restart_at is not None:
            return None
        return stop_process(self.process, signal.SIGTERM, grace_s)

    def wait(self, grace_s: float) -> int | None:
        """Wait for a replica that was told to stop; SIGKILL after ``grace_s``."""
        if self.process is None or self.restart_at is not None:
            return None
        return wait_or_kill(self.process, grace_s)


def free_ports(count: int, avoid: Collection[int] = (), host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports nothing listens on now, none of them in ``avoid`` (held open
    together while chosen, so they differ from each other)."""
    import socket

    sockets = []
    found: list[int] = []
    try:
        while len(found) < count:
            sock = socket.socket()
            sock.bind((host, 0))
            sockets.append(sock)
            port = int(sock.getsockname()[1])
            if port not in avoid:
                found.append(port)
        return found
    finally:
        for sock in sockets:
            sock.close()


Ready = Callable[[int], bool]
"""Whether the replica listening on a port answers its health endpoint."""


def wait_until_ready(
    replicas: Sequence[Replica], ready: Ready, timeout_s: float, stop: Callable[[], bool]
) -> list[Replica]:
    """Wait until every replica answers ``ready``; the replicas that died first (stop waiting
    then: a replica that cannot start is not restarted blindly), [] when all are ready. Raises
    TimeoutError naming the late ones after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    waiting = list(replicas)
    while waiting:
        dead = [r for r in replicas if r.process is not None and r.process.poll() is not None]
        if dead:
            return dead
        if stop():
            return []
        waiting = [r for r in waiting if not ready(r.port)]
        if waiting and time.monotonic() > deadline:
            names = ", ".join(r.name for r in waiting)
            raise TimeoutError(f"{names} did not answer within {timeout_s:g} s")
        if waiting:
            time.sleep(0.2)
    return []
