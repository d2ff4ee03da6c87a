"""A real ``mlship serve`` on 127.0.0.1 for a test, stopped as an operator would stop it."""

from __future__ import annotations

import signal
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
from tests.ports import free_port

__all__ = ["RECORD", "Server", "bearer", "free_port", "serving", "start_server", "terminate"]

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


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header that carries ``token`` (a deployment key or an API token)."""
    return {"Authorization": f"Bearer {token}"}


def terminate(process: subprocess.Popen[Any], what: str, detail: str = "") -> None:
    """SIGTERM, as an operator stops a server; fails (after killing it) if it takes over a
    minute, with ``detail`` (its output, say) in the message."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(f"{what} did not stop within 60 s of SIGTERM{detail}") from None


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

    def client(self, token: str | None = None, **options: Any) -> httpx.Client:
        """An HTTP client of this server, sending ``token`` as a bearer token when given."""
        headers = bearer(token) if token else {}
        return httpx.Client(base_url=self.base, headers=headers, **options)

    def output_text(self) -> str:
        """What the server has printed so far."""
        return "".join(self.output)

    def stop(self) -> str:
        """SIGTERM (a graceful shutdown) and what the server printed; fails if it hangs."""
        terminate(self.process, "mlship serve")
        if self.reader is not None:
            self.reader.join(timeout=10)
        return "".join(self.output)


def start_server(
    command: Sequence[str],
    env: Mapping[str, str],
    base: str,
    *,
    cwd: Path | None = None,
    ready: str = "/health",
    ready_status: int = 200,
    verify: ssl.SSLContext | bool = True,
) -> Server:
    """Start ``command`` (an mlship server listening at ``base``), drain its output, and return
    once ``ready`` answers ``ready_status``; fails with the output if it exits or hangs."""
    process = subprocess.Popen(
        list(command), env=dict(env), cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    server = Server(base, process)
    server.reader = threading.Thread(target=server.drain, daemon=True)
    server.reader.start()
    what = "mlship " + _verb(command)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            server.reader.join(timeout=10)
            raise AssertionError(f"{what} exited {process.returncode}:\n{server.output_text()}")
        try:
            if httpx.get(f"{base}{ready}", timeout=1, verify=verify).status_code == ready_status:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{what} did not answer {ready} within 60 s")
        time.sleep(0.2)


def _verb(command: Sequence[str]) -> str:
    return next((word for word in command if word in ("serve", "server")), "server")


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
    certificate options are then among ``args``). It stops at once on SIGTERM unless ``args``
    give ``--drain-seconds``: tests that do not look at the drain do not wait for it."""
    port = free_port()
    if "--drain-seconds" not in args:
        args = (*args, "--drain-seconds", "0")
    scheme = "https" if tls is not None else "http"
    server = start_server(
        [*program, "serve", target, "--port", str(port), *args],
        mlship_env(home, env),
        f"{scheme}://127.0.0.1:{port}",
        cwd=cwd,
        verify=tls or True,
    )
    process = server.process
    try:
        yield server
    finally:
        if process.poll() is None:
            server.stop()
