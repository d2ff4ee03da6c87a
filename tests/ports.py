"""Ports for the servers the tests start, chosen so that two test workers never pick the same one.

The usual way to find a port (bind to port 0, note the number, close the socket, start a server on
it a moment later) leaves a window in which another process is handed the same number: the kernel
takes port-0 binds, and the local end of every outgoing connection, from one shared ephemeral
range. One test process rarely meets itself in that window; two workers of ``pytest -n 2`` that
each start servers and open hundreds of connections do, and a server then fails to start with
"address already in use".

So the tests take their ports from a block below the ephemeral range that nothing hands out on its
own, split into one slice per worker (``PYTEST_XDIST_WORKER`` and ``PYTEST_XDIST_WORKER_COUNT``,
which pytest-xdist sets; a run without workers has the whole block). A worker walks its slice in
turn, so two calls never return the same port while the first is still starting, and hands out
only a port it can bind at that moment (a server of an earlier run may still hold one).
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

FIRST = 20000
"""The bottom of the block: above the ports Ray gives its workers (10002-19999 by default)."""
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOCK = threading.Lock()


def _block_end() -> int:
    """The first port of the ephemeral range (32768 on Linux unless configured otherwise)."""
    try:
        low = int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return low if low > FIRST + 1000 else 32768


def worker_slice(
    worker: str | None = None, count: str | None = None, end: int | None = None
) -> range:
    """The ports of this worker: its share of ``[FIRST, end)`` (``end`` is where the ephemeral
    range starts). ``worker`` is ``gw0``, ``gw1``... and ``count`` the number of workers, as
    pytest-xdist names them; without them (no workers) the whole block."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "") if worker is None else worker
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") if count is None else count
    end = _block_end() if end is None else end
    index = int(worker.removeprefix("gw")) if worker.startswith("gw") else 0
    workers = max(int(count), index + 1)
    size = (end - FIRST) // workers
    return range(FIRST + index * size, FIRST + (index + 1) * size)


def _walk() -> Iterator[int]:
    ports = worker_slice()
    start = os.getpid() % len(ports)  # a fresh run does not retry the ports the last one used
    return itertools.cycle([*ports[start:], *ports[:start]])


_CANDIDATES = _walk()


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port of this worker's slice that nothing on 127.0.0.1 holds now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` different ports of this worker's slice that nothing on 127.0.0.1 holds now."""
    found: list[int] = []
    ports = worker_slice()
    with _LOCK:
        for port in itertools.islice(_CANDIDATES, len(ports)):
            if _bindable(port):
                found.append(port)
                if len(found) == count:
                    return found
    raise AssertionError(f"fewer than {count} ports free in {ports}")
