"""Every worker of ``mlship serve`` answers a keep-alive connection without Nagle's delay.

With Nagle's algorithm on (``TCP_NODELAY`` off), a server that writes a response in two pieces
waits for the client's delayed ACK of the first before it sends the second: every request on a
kept-alive connection after the first one takes about 40 ms longer, ``GET /health`` included.
Measuring that latency would make a flaky test on a shared machine, so this test reads the cause
instead: the ``TCP_NODELAY`` option of the very socket each worker accepted the connection on.

``pidfd_getfd(2)`` (Linux 5.6+) copies a file descriptor out of another process, as a debugger
would; the copy shares the kernel's socket, so ``getsockopt`` on it reads the worker's option
with no code in the server for it. The test looks for the socket whose peer is this client's
connection among each worker's descriptors, so it checks whichever worker the kernel chose.
"""

from __future__ import annotations

import ctypes
import http.client
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import psutil
import pytest

from mlship.workspace import Workspace
from tests.serving import serving

SYS_PIDFD_GETFD = 438  # the same number on x86-64 and arm64


def _socket_of(pid: int, peer: tuple[str, int]) -> socket.socket | None:
    """A copy of the socket in process ``pid`` whose remote end is ``peer``, if it has one."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        for entry in os.scandir(f"/proc/{pid}/fd"):
            try:
                if not os.readlink(entry.path).startswith("socket:"):
                    continue
            except OSError:
                continue
            fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(entry.name), 0)
            if fd < 0:
                error = ctypes.get_errno()
                raise OSError(error, f"pidfd_getfd on process {pid}: {os.strerror(error)}")
            copy = socket.socket(fileno=fd)
            try:
                if copy.family == socket.AF_INET and copy.getpeername() == peer:
                    return copy
            except OSError:  # a listening or unconnected socket has no peer
                pass
            copy.close()
    finally:
        os.close(pidfd)
    return None


def _workers(pid: int) -> Iterator[psutil.Process]:
    for child in psutil.Process(pid).children(recursive=True):
        if "spawn_main" in " ".join(child.cmdline()):
            yield child


@pytest.mark.parametrize("workers", [1, 2])
def test_every_worker_sets_tcp_nodelay_on_its_connections(trained: Workspace, workers: int) -> None:
    home = trained.settings.home
    with serving("churn:1", home, "--no-prediction-log", "--workers", str(workers)) as server:
        pid = server.process.pid
        pids = [w.pid for w in _workers(pid)] if workers > 1 else [pid]
        assert len(pids) == workers
        address = urlsplit(server.base)
        held_by: set[int] = set()
        for _ in range(8):  # new connections, so that both workers are likely to get some
            connection = http.client.HTTPConnection(address.hostname or "", address.port)
            try:
                for _ in range(3):  # kept alive: the same connection each time
                    connection.request("GET", "/health")
                    response = connection.getresponse()
                    response.read()
                    assert response.status == 200 and not response.will_close
                assert connection.sock is not None
                mine = connection.sock.getsockname()
                found = [(pid, s) for pid in pids if (s := _socket_of(pid, mine)) is not None]
                assert len(found) == 1, f"no worker holds the connection from {mine}"
                pid, accepted = found[0]
                with accepted:
                    nodelay = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                assert nodelay, f"worker {pid} answers with Nagle's algorithm on (no TCP_NODELAY)"
                held_by.add(pid)
            finally:
                connection.close()
        assert held_by  # at least one worker checked; which ones is the kernel's choice
