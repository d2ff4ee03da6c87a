"""One replica of the real model server under rising load: ``mlship serve`` in a subprocess
with one worker, its CPU and memory read from the operating system while each rate is held.

The server is the command users deploy, started as a replica is (its own session, ended with
the command that started it), so what is measured is what a pod runs: the routing, validation,
model and serialisation of every request. With ``cpu`` the server is pinned to that many cores
(the rest are left to the load generator), as a pod's CPU limit would hold it.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mlship.costs.sizing import Step
from mlship.errors import MlshipError
from mlship.loadtest.open_loop import Load, percentile, run

READY_TIMEOUT_S = 120.0
"""How long the server may take to load the model and answer its readiness probe."""

SAMPLE_S = 0.05
"""How often the server's memory is read during a step."""


@dataclass
class Replica:
    """A running server: where it answers and its process."""

    url: str
    pid: int
    log: Path


def _cores(cpu: float) -> set[int]:
    """The cores to pin the server to: the last ``ceil(cpu)`` of those this process may use."""
    allowed = sorted(os.sched_getaffinity(0))
    wanted = math.ceil(cpu)
    if wanted > len(allowed):
        raise MlshipError(f"--cpu {cpu:g}: this machine lets mlship use {len(allowed)} cores")
    return set(allowed[-wanted:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    """The last lines the server wrote (why it did not start)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a pod is stopped; SIGKILL when it has not ended within 30 s."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def replica(ref: str, log: Path, cpu: float | None) -> Iterator[Replica]:
    """``mlship serve ref`` on a free port of 127.0.0.1, ready; stopped on the way out."""
    pinned = _cores(cpu) if cpu is not None and hasattr(os, "sched_setaffinity") else None
    port = _free_port()
    command = (
        sys.executable, "-m", "mlship", "serve", ref, "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1", "--no-prediction-log", "--drain-seconds", "0",
        "--log-level", "warning",
    )  # fmt: skip
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        if pinned is not None:
            os.sched_setaffinity(process.pid, pinned)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise MlshipError(
                    f"mlship serve {ref} exited {process.returncode} before it was ready:\n"
                    + _tail(log)
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise MlshipError(
                    f"mlship serve {ref} was not ready within {READY_TIMEOUT_S:g} s:\n" + _tail(log)
                )
            time.sleep(0.2)
        if pinned is not None:  # and any process it started before it was pinned
            import psutil

            for child in psutil.Process(process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.cpu_affinity(sorted(pinned))
        yield Replica(f"{base}/predict", process.pid, log)
    finally:
        _stop(process)


def _usage(process: Any) -> tuple[float, int]:
    """CPU-seconds so far and resident bytes now, of the process and its children."""
    import psutil

    members = [process]
    with contextlib.suppress(psutil.Error):
        members += process.children(recursive=True)
    cpu, rss = 0.0, 0
    for member in members:
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            cpu += times.user + times.system
            rss += member.memory_info().rss
    return cpu, rss


def measure(server: Replica, body: bytes, rate: float, duration_s: float) -> Step:
    """Hold ``rate`` requests a second on ``server`` for ``duration_s`` seconds: latency and
    failures from the load, CPU-seconds per second and the peak resident memory from the
    server's process while it ran."""
    import psutil

    process = psutil.Process(server.pid)
    peak = [_usage(process)[1]]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE_S):
            peak[0] = max(peak[0], _usage(process)[1])

    sampler = threading.Thread(target=sample, daemon=True)
    cpu_before, _ = _usage(process)
    started = time.monotonic()
    sampler.start()
    try:
        result = run(Load(server.url, rate, duration_s, clients=32, body=body, timeout_s=10.0))
    finally:
        stop.set()
        sampler.join()
    cpu_after, rss = _usage(process)
    elapsed = time.monotonic() - started
    ok = [o.latency_s * 1000 for o in result.outcomes if o.ok]
    p99 = percentile(ok, 0.99)
    return Step(
        rate=rate,
        requests=len(result.outcomes),
        failed=len(result.outcomes) - len(ok),
        p99_ms=None if p99 is None else round(p99, 3),
        cpu_cores=round(max(0.0, cpu_after - cpu_before) / elapsed, 4) if elapsed > 0 else 0.0,
        peak_rss_bytes=max(peak[0], rss),
    )


def example_record(signature: dict[str, Any]) -> dict[str, Any]:
    """A record the model accepts, made from its signature: the first category seen in
    training, the middle of a numeric input's training range, false, an empty text, a fixed
    time. Every request of a sweep sends it, so the sweep measures the server, not the data."""
    from mlship.train.signature import Signature

    found = Signature.from_dict(signature)
    record: dict[str, Any] = {}
    for column in found.inputs:
        low, high = found.ranges.get(column.name, (0.0, 0.0))
        if column.type == "category":
            seen = found.categories.get(column.name)
            record[column.name] = seen[0] if seen else ""
        elif column.type == "integer":
            record[column.name] = round((low + high) / 2)
        elif column.type == "float":
            record[column.name] = (low + high) / 2
        elif column.type == "boolean":
            record[column.name] = False
        elif column.type == "datetime":
            record[column.name] = "2024-01-01T00:00:00+00:00"
        else:
            record[column.name] = ""
    return record


def first_answer(server: Replica, body: bytes) -> None:
    """One request, checked: a payload the model refuses would make every step of the sweep
    fail, and read as a replica that can serve nothing."""
    try:
        response = httpx.post(
            server.url, content=body, headers={"content-type": "application/json"}, timeout=60
        )
    except httpx.HTTPError as exc:
        raise MlshipError(f"the replica did not answer a first request ({exc})") from None
    if not response.is_success:
        raise MlshipError(
            f"the replica refused the request body with HTTP {response.status_code}: "
            f"{response.text[:500]}"
        )
