"""Throwaway message brokers for the test suite: Debian's ``redis-server`` and ``nats-server``.

Streams are tested against the real brokers because what matters is what a fake would have to
guess: when a pending entry can be claimed, what a redelivery carries, how a duplicate publish is
answered. Each server keeps its data in a fresh temporary directory, listens only on 127.0.0.1 on
a free port and is stopped when the session ends. ``scripts/services.sh`` installs both.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.ports import free_port

_TIMEOUT = 30.0


class BrokerError(RuntimeError):
    """A throwaway broker could not be started; the message carries its command and its log."""


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/bin") / name, Path("/usr/sbin") / name) if p.is_file()), None
    )
    if found is None:
        raise BrokerError(f"{name} is not installed; run scripts/services.sh (as root)")
    return found


def _wait_for(process: subprocess.Popen[bytes], port: int, greeting: bytes, log: Path) -> None:
    """Until the server on ``port`` answers with ``greeting``; raise with its log if it exits
    or takes longer than the timeout."""
    deadline = time.monotonic() + _TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if greeting == b"":
                    return
                sock.sendall(b"PING\r\n")
                if greeting in sock.recv(4096):
                    return
        except OSError:
            time.sleep(0.05)
    process.kill()
    text = log.read_text(errors="replace") if log.exists() else "(no log)"
    raise BrokerError(
        f"{' '.join(map(str, process.args))} did not start on port {port} "  # type: ignore[arg-type]
        f"(exit code {process.poll()}); its log:\n{text}"
    )


@contextmanager
def _running(command: list[str], port: int, greeting: bytes, base: Path) -> Iterator[None]:
    log = base / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=base)
    try:
        _wait_for(process, port, greeting, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def redis_server(password: str | None = None) -> Iterator[str]:
    """Start a Redis server (append-only file on, fsync every write, as a stream's durable
    writes need) and yield its URL, ``redis://127.0.0.1:PORT/0`` (without the password the
    server may require)."""
    base = Path(tempfile.mkdtemp(prefix="mlship-redis-"))
    port = free_port()
    command = [
        _binary("redis-server"),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(base),
        "--save", "",
        "--appendonly", "yes",
        "--appendfsync", "always",
        "--protected-mode", "no",
    ]  # fmt: skip
    if password is not None:
        command += ["--requirepass", password]
    with _running(command, port, b"-NOAUTH" if password else b"+PONG", base):
        yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def nats_server(
    *, jetstream: bool = True, user: str | None = None, password: str | None = None
) -> Iterator[str]:
    """Start a NATS server with JetStream (file storage in a temporary directory; or without
    it) and yield its URL, ``nats://127.0.0.1:PORT`` (without the credentials the server may
    require)."""
    base = Path(tempfile.mkdtemp(prefix="mlship-nats-"))
    port = free_port()
    command = [
        _binary("nats-server"),
        "--addr", "127.0.0.1",
        "--port", str(port),
    ]  # fmt: skip
    if jetstream:
        command += ["--jetstream", "--store_dir", str(base / "jetstream")]
    if user is not None and password is not None:
        command += ["--user", user, "--pass", password]
    with _running(command, port, b"INFO", base):
        yield f"nats://127.0.0.1:{port}"
