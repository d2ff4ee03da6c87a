"""A real ``mlship serve`` on 127.0.0.1 for a test, stopped as an operator would stop it."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import mlship_env

RECORD: dict[str, Any] = {
    "age": 45,
    "tenure_months": 16,
    "monthly_charges": 87.33,
    "total_charges": 1390.73,
    "contract": "month-to-month",
    "internet_service": "fiber",
    "payment_method": "mailed-check",
    "support_calls": 0,
    "paperless_billing": True,
}
"""One valid input of the churn example's model."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    base: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def drain(self) -> None:
        """Read what the server prints as it prints it (a full pipe would block the server)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def output_text(self) -> str:
        """What the server has printed so far."""
        return "".join(self.output)

    def stop(self) -> str:
        """SIGTERM (a graceful shutdown) and what the server printed; fails if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise AssertionError("mlship serve did not stop within 60 s of SIGTERM") from None
        if self.reader is not None:
            self.reader.join(timeout=10)
        return "".join(self.output)


@contextmanager
def serving(
    target: str,
    home: Path,
    *args: str,
    cwd: Path | None = None,
    program: Sequence[str] = (sys.executable, "-m", "mlship"),
    env: Mapping[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
) -> Iterator[Server]:
    """``mlship serve target`` (``program`` is the mlship to run) on a free port, healthy before
    the block runs; over HTTPS, checked with the client context ``tls``, when it is given (the
    certificate options are then among ``args``)."""
    port = free_port()
    process = subprocess.Popen(
        [*program, "serve", target, "--port", str(port), *args],
        env=mlship_env(home, env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    scheme = "https" if tls is not None else "http"
    server = Server(f"{scheme}://127.0.0.1:{port}", process)
    server.reader = threading.Thread(target=server.drain, daemon=True)
    server.reader.start()
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            server.reader.join(timeout=10)
            output = "".join(server.output)
            raise AssertionError(f"mlship serve exited {process.returncode}:\n{output}")
        try:
            health = httpx.get(f"{server.base}/health", timeout=1, verify=tls or True)
            if health.status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("mlship serve did not become healthy within 60 s")
        time.sleep(0.2)
    try:
        yield server
    finally:
        if process.poll() is None:
            server.stop()
