"""Worker processes die with the process that started them; SIGTERM stops a run like Ctrl-C.

A pool worker waits for its next task on a pipe whose write end it holds itself, so it never sees
its parent go: after the parent was killed (``kill -9``, an out-of-memory kill, a CI job cancelled)
the workers, the forkserver they were forked from (which waits for them) and the resource tracker
(which waits for all of them) lived on for good, each holding the parent's stdout and stderr open,
so whatever waited for that output waited too.

Every worker therefore arms a lifeline when it starts (:func:`arm`): on Linux the kernel sends it
SIGKILL when its parent process ends (``PR_SET_PDEATHSIG``), and on every platform a daemon thread
ends it as soon as the process that owns the pool (which for a forkserver worker is not its parent)
is gone. With the workers gone, the forkserver and the resource tracker see their pipes close and
exit on their own.

SIGTERM, which CI runners and Kubernetes send to cancel, ends Python at once by default: no
``finally`` runs, so neither the run's record nor its workers are seen to. Inside
:func:`sigterm_interrupts` it raises :class:`Terminated` instead, a ``KeyboardInterrupt``, which
takes the path Ctrl-C takes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import psutil

WATCH_SECONDS = 0.5
"""How often the watchdog thread looks for the owner where it cannot wait for it."""
_PR_SET_PDEATHSIG = 1
_EXIT_CODE = 128 + 9
"""What a worker whose owner died exits with: as if it had been killed with SIGKILL (a number, as
the constant is missing where there is no such signal)."""


def arm(owner_pid: int) -> None:
    """End this process when its parent or process ``owner_pid`` ends (call it first thing in a
    worker). The owner having gone already ends it at once.

    The kernel's parent-death signal is only asked for when the parent is not the owner (a
    forkserver, which has one thread): it fires when the *thread* that started the process ends,
    and the owner may start workers from short-lived threads. The owner is watched either way.
    """
    if os.getppid() != owner_pid:
        _die_with_parent()
    try:
        owner = psutil.Process(owner_pid)
    except psutil.NoSuchProcess:
        os._exit(_EXIT_CODE)
    threading.Thread(target=_watch, args=(owner,), name="mlship-lifeline", daemon=True).start()


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent ended before the request was in place
        os._exit(_EXIT_CODE)


def _watch(owner: psutil.Process) -> None:
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            fd = pidfd_open(owner.pid)
        except OSError:
            fd = None
        if fd is not None and owner.is_running():  # still the same process: not a reused pid
            import select

            select.select([fd], [], [])  # readable once the process has ended
            os._exit(_EXIT_CODE)
    while owner.is_running() and owner.status() != psutil.STATUS_ZOMBIE:
        threading.Event().wait(WATCH_SECONDS)
    os._exit(_EXIT_CODE)


def install(initializer: Any, owner_pid: int, *initargs: Any) -> None:
    """A pool initializer: :func:`arm` the worker, then run ``initializer(*initargs)``."""
    arm(owner_pid)
    if initializer is not None:
        initializer(*initargs)


@contextmanager
def joblib_workers() -> Iterator[None]:
    """joblib's process workers (loky) started inside the block carry a lifeline too.

    scikit-learn parallelises through joblib (a learning curve with ``n_jobs``); its workers are
    children of this process but would otherwise outlive it like any pool's. Their executor is
    reused across calls while its initializer stays the same, and restarted when it changes.
    """
    import joblib

    with joblib.parallel_config(backend="loky", initializer=arm, initargs=(os.getpid(),)):
        yield


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop the way an interrupt stops."""

    def __str__(self) -> str:
        return "terminated by SIGTERM"


_sigterm = threading.Event()


def sigterm_received() -> bool:
    """Whether SIGTERM arrived inside :func:`sigterm_interrupts`: libraries that turn a signal
    into a plain ``KeyboardInterrupt`` (Ray does) lose :class:`Terminated` on the way."""
    return _sigterm.is_set()


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    _sigterm.set()
    # A second SIGTERM while the first is being handled ends the process at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Terminated


@contextmanager
def sigterm_interrupts() -> Iterator[threading.Event]:
    """SIGTERM raises :class:`Terminated` in the main thread inside the block; the event yielded
    is set once it has arrived. Only for the main thread of a program (as signal handlers are)."""
    _sigterm.clear()
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield _sigterm
    finally:
        signal.signal(signal.SIGTERM, previous)
