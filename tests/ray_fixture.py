"""A real local Ray instance for the tests, started once per session.

Ray is tested as it runs, not mocked: what matters (serialising tasks and their shared inputs,
resolving object references in workers, unwrapping task errors) happens inside Ray. Starting it
takes seconds, so one instance serves the whole session; executors the tests create join it and
leave it running. A Ray that cannot start is an error of every test that needs it, never a skip.

Import the fixture into a test module with ``from tests.ray_fixture import ray_fixture``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlship.train.executors import RayExecutor, available_cores


@pytest.fixture(scope="session", name="ray_executor")
def ray_fixture() -> Iterator[RayExecutor]:
    """A :class:`RayExecutor` that owns a local Ray instance with at least two CPUs."""
    executor = RayExecutor(workers=max(2, available_cores()))
    try:
        yield executor
    finally:
        executor.close()
