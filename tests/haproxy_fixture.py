"""A throwaway HAProxy in front of tracking servers, for the tests that kill one of them.

The smallest configuration that does what a deployment's balancer does for ``mlship server``
replicas: health checks (``option httpchk`` on the health route, which answers 401 without a
token: the process is up and judging requests), and on a failure ``retries`` with ``option
redispatch`` to another server, for the failures ``retry-on`` names. A request HAProxy sends again
carries the client's ``Idempotency-Key`` again, so the servers apply it once either way.
``/usr/sbin/haproxy`` is Debian's ``haproxy`` package.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.serving import free_port

HAPROXY = "/usr/sbin/haproxy"

_CONFIG = """\
global
    maxconn 512
    stats socket {socket} mode 600 level user

defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 30s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout

frontend tracking
    bind 127.0.0.1:{port}
    default_backend servers

backend servers
    balance roundrobin
    option httpchk GET /api/v1/health
    http-check expect status 401
    default-server inter 300ms fall 1 rise 2
{servers}
"""


@dataclass(frozen=True)
class Balancer:
    url: str
    config: Path
    process: subprocess.Popen[bytes]
    log: Path
    stats_socket: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def backend_stats(self) -> dict[str, str]:
        """The ``servers`` backend's counters (``show stat``): ``wretr`` requests sent again,
        ``wredis`` sent again to another server, ``hrsp_5xx`` 5xx answers, among others."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.stats_socket))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "servers" and row.get("svname") == "BACKEND":
                return row
        raise AssertionError(f"no backend row in haproxy's statistics:\n{data.decode()}")


def render(port: int, backends: Sequence[int], socket_path: Path) -> str:
    """The configuration of a balancer on ``port`` in front of servers on ``backends``, with
    its statistics on the unix socket ``socket_path``."""
    servers = "\n".join(
        f"    server s{number} 127.0.0.1:{backend} check"
        for number, backend in enumerate(backends, 1)
    )
    return _CONFIG.format(port=port, servers=servers, socket=socket_path)


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def haproxy(backends: Sequence[int]) -> Iterator[Balancer]:
    """HAProxy in the foreground on a free port before ``backends``; stopped at the end."""
    if not Path(HAPROXY).is_file():
        raise AssertionError(f"no {HAPROXY}: install Debian's haproxy package")
    base = Path(tempfile.mkdtemp(prefix="mlship-haproxy-"))
    port = free_port()
    config = base / "haproxy.cfg"
    config.write_text(render(port, backends, base / "stats.sock"))
    check = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, f"haproxy refused its configuration:\n{check.stderr}"
    log = base / "haproxy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 20
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"haproxy did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield Balancer(f"http://127.0.0.1:{port}", config, process, log, base / "stats.sock")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(base, ignore_errors=True)
