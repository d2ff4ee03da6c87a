"""Fixtures of the web UI's browser tests: headless Chromium, and ``mlship ui`` serving the
``trained`` workspace in a subprocess."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from mlship.workspace import Workspace
from tests.browser import chromium
from tests.conftest import mlship_env
from tests.serving import Server, free_port, start_server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def local_ui(trained: Workspace) -> Iterator[Server]:
    """``mlship ui`` on the trained workspace, on a free port of 127.0.0.1."""
    port = free_port()
    server = start_server(
        [sys.executable, "-m", "mlship", "ui", "--port", str(port)],
        mlship_env(trained.settings.home_resolved),
        f"http://127.0.0.1:{port}",
        ready="/ui/runs",
    )
    try:
        yield server
    finally:
        server.stop()
