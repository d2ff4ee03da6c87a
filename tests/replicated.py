"""A real ``mlship deploy haproxy`` for a test: replicas behind HAProxy, stopped with SIGTERM."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mlship.deploy.haproxy import LoggedRequest, parse_log_line
from tests.conftest import mlship_env
from tests.serving import free_port, terminate

START_TIMEOUT = 120.0


@dataclass
class Deployed:
    """The running command: where HAProxy listens, its directory, and what it has printed."""

    url: str
    directory: Path
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def pid(self, replica: int) -> int:
        return int((self.directory / f"replica-{replica}.pid").read_text())

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        """Until the command has printed ``text``; fails with its output if it does not."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.process.poll() is None, f"deploy exited before {text!r}:\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout:g} s:\n{self.output}"
            time.sleep(0.1)

    def logged_requests(self) -> list[LoggedRequest]:
        """Every request HAProxy's log records."""
        text = (self.directory / "haproxy.log").read_text()
        return [r for r in map(parse_log_line, text.splitlines()) if r is not None]

    def stop(self) -> str:
        """SIGTERM, as an operator stops it; its output. Fails if it takes over a minute."""
        terminate(self.process, "mlship deploy", f":\n{self.output}")
        return self.output


@contextmanager
def deployed(
    target: str | None,
    home: Path,
    replicas: int,
    directory: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
) -> Iterator[Deployed]:
    """``mlship deploy haproxy target -n replicas`` (no target: give ``--server`` in ``args``)
    on a free port, every replica up in HAProxy before the block runs; stopped with SIGTERM
    after it; ``env`` adds settings."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlship", "deploy", "haproxy", *([target] if target else []),
         "-n", str(replicas), "--port", str(port), "--dir", str(directory), *args],
        env=mlship_env(home, env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deployment = Deployed(f"http://127.0.0.1:{port}", directory, process)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            deployment.lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deployment.wait_for("HAProxy on", START_TIMEOUT)
        yield deployment
    finally:
        try:
            deployment.stop()
        finally:
            if process.poll() is None:
                process.kill()
            reader.join(timeout=10)
