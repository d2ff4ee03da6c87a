"""A real local Ray instance for the tests, started once per session.

Ray is tested as it runs, not mocked: what matters (serialising tasks and their shared inputs,
resolving object references in workers, unwrapping task errors) happens inside Ray. Starting it
takes seconds, so one instance serves the whole session; executors the tests create join it and
leave it running. A Ray that cannot start is an error of every test that needs it, never a skip.

Import the fixture into a test module with ``from tests.ray_fixture import ray_fixture``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from mlship.train.executors import RayExecutor, available_cores
from tests.ports import free_ports


@pytest.fixture(scope="session", name="ray_executor")
def ray_fixture() -> Iterator[RayExecutor]:
    """A :class:`RayExecutor` that owns a local Ray instance with at least two CPUs."""
    executor = RayExecutor(workers=max(2, available_cores()))
    try:
        yield executor
    finally:
        executor.close()


def _wait_until_ready(gcs_port: int, deadline: float) -> None:
    """Until ``ray status`` sees the head node with its CPUs: the client server's port opens
    before the node has registered, and a client that connects then can fail to start."""
    ray = str(Path(sys.executable).with_name("ray"))
    while True:
        status = subprocess.run(
            [ray, "status", f"--address=127.0.0.1:{gcs_port}"],
            capture_output=True,
            text=True,
            env={**os.environ, "RAY_AUTH_MODE": "token"},
            check=False,
        )
        if status.returncode == 0 and "CPU" in status.stdout:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Ray head was not ready in time: {status.stderr[-500:]}")
        time.sleep(1)


@contextmanager
def ray_cluster(workdir: Path, cpus: int = 2) -> Iterator[str]:
    """A separate Ray cluster started with ``ray start --head`` (as an operator would), with a Ray
    Client server; yields its ``ray://127.0.0.1:port`` address and stops it afterwards.

    It does not touch the session's local instance: its own ports, stopped by signalling its
    own process group rather than with ``ray stop`` (which stops every Ray on the machine).
    """
    client_port, gcs_port = free_ports(2)
    log = (workdir / "ray-head.log").open("w")
    head = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--head",
            f"--port={gcs_port}",
            f"--ray-client-server-port={client_port}",
            f"--num-cpus={cpus}",
            "--include-dashboard=false",
            "--block",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            if head.poll() is not None:
                raise RuntimeError(f"ray start --head exited {head.returncode}; see {log.name}")
            try:
                socket.create_connection(("127.0.0.1", client_port), timeout=1).close()
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    message = f"the Ray head did not listen in 90 s; see {log.name}"
                    raise RuntimeError(message) from exc
                time.sleep(0.5)
        _wait_until_ready(gcs_port, deadline)
        yield f"ray://127.0.0.1:{client_port}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            head.wait(timeout=5)
        # The head drains for up to 30 s after SIGTERM; a test cluster has nothing to drain.
        with suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=30)
        log.close()
