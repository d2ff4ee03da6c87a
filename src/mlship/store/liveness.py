"""Whether a run that says ``running`` is still being worked on.

A process that is killed (``kill -9``, the out-of-memory killer, a lost node) cannot record that it
stopped, so its run would say ``running`` for ever. Every run therefore records the process that
works on it (host and pid) and a heartbeat, renewed by that process every
:data:`HEARTBEAT_SECONDS` (:mod:`mlship.train.heartbeat`; over a tracking server each renewal is a
lease granted by the server's clock). A ``running`` run is shown as ``abandoned`` when its heartbeat
is older than :data:`LEASE_SECONDS`, or at once when it ran on this host and its process is gone.

The judgement is made when runs are read and is not written back: a process that was only slow
to renew (a stopped laptop, a network hiccup) shows as ``running`` again at its next heartbeat.
``mlship runs abandon`` is what closes a run for good.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

import psutil

from mlship.errors import MlshipError
from mlship.store.clock import as_utc, utcnow
from mlship.store.entities import Run

HEARTBEAT_SECONDS = 10.0
"""How often a running run's process renews its heartbeat."""
LEASE_SECONDS = 3 * HEARTBEAT_SECONDS
"""How old a heartbeat may be before its run counts as abandoned: two renewals may be missed."""
ABANDONED = "abandoned"
FINISHED = ("succeeded", "failed", ABANDONED)
"""Statuses of runs that no process works on any more."""
_CLOCK_SLACK_SECONDS = 1.0
"""How much later than a heartbeat a process may have started and still be the one that sent it
(process start times are rounded to clock ticks)."""


class RunStateError(MlshipError):
    """A run is not in a state that allows what was asked (still alive, already finished)."""


@dataclass(frozen=True)
class Worker:
    """The process that works on a run."""

    host: str
    pid: int

    @classmethod
    def this_process(cls) -> Worker:
        return cls(this_host(), os.getpid())


@dataclass(frozen=True)
class Liveness:
    """What the record of a ``running`` run says about its process."""

    alive: bool
    reason: str
    """Why it counts as alive or abandoned, for messages."""


def this_host() -> str:
    return socket.gethostname()


def process_exists(pid: int, since: datetime) -> bool:
    """Whether process ``pid`` of this host exists and was started by ``since`` (a later start
    means the pid was reused by another process after the one that recorded it ended)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        started: float = process.create_time()
        return started <= since.timestamp() + _CLOCK_SLACK_SECONDS
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class RunRecord(Protocol):
    """What judging a run reads: a stored row or an entity."""

    @property
    def status(self) -> str: ...
    @property
    def heartbeat_at(self) -> datetime | None: ...
    @property
    def host(self) -> str | None: ...
    @property
    def pid(self) -> int | None: ...


def judge(run: RunRecord, now: datetime | None = None) -> Liveness | None:
    """Whether the process of ``run`` is alive; None when the run is not ``running``, or when it
    has no heartbeat at all (recorded before heartbeats were): nothing can be told of those."""
    if run.status != "running" or run.heartbeat_at is None:
        return None
    beat = as_utc(run.heartbeat_at)
    age = ((now or utcnow()) - beat).total_seconds()
    where = f"pid {run.pid} on {run.host}" if run.pid is not None else "its process"
    if run.host == this_host() and run.pid is not None and not process_exists(run.pid, beat):
        return Liveness(
            False, f"its process ({where}) is gone; last heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC"
        )
    if age > LEASE_SECONDS:
        return Liveness(
            False,
            f"no heartbeat from {where} for {age:.0f} s (a running run renews it every "
            f"{HEARTBEAT_SECONDS:.0f} s)",
        )
    return Liveness(True, f"{where} renewed its heartbeat {max(age, 0):.0f} s ago")


def shown(run: Run, now: datetime | None = None) -> Run:
    """``run`` as it should be shown: ``abandoned``, with the reason as its error, when its
    process is gone. The stored row does not change."""
    found = judge(run, now)
    if found is not None and not found.alive:
        return replace(run, status=ABANDONED, error=f"abandoned: {found.reason}")
    return run
