"""Shared fixtures: an isolated workspace per test and a small copy of the churn example."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlship.config import Settings
from mlship.examples.churn import write_project
from mlship.workspace import Workspace

SMALL_ROWS = 1500


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "ws", n_jobs=1, user="tester")


@pytest.fixture
def workspace(settings: Settings) -> Iterator[Workspace]:
    ws = Workspace.open(settings)
    yield ws
    ws.close()


@pytest.fixture
def churn_spec(tmp_path: Path) -> Path:
    """The churn example, with fewer rows so that tests stay quick."""
    return write_project(tmp_path / "churn", n=SMALL_ROWS)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """A workspace in which the small churn example has been run once (churn:1); read-only."""
    from mlship.spec import load_spec
    from mlship.train.run import execute

    root = tmp_path_factory.mktemp("trained")
    ws = Workspace.open(Settings(home=root / "ws", n_jobs=1, user="tester"))
    execute(load_spec(write_project(root / "churn", n=SMALL_ROWS)), ws)
    yield ws
    ws.close()


def mlship_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSHIP_")}
    env["MLSHIP_HOME"] = str(home)
    env["COLUMNS"] = "200"
    return env


def run_cli(
    *args: str, home: Path, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real ``mlship`` command line in a subprocess."""
    result = subprocess.run(
        [sys.executable, "-m", "mlship", *args],
        cwd=cwd,
        env=mlship_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"mlship {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL (with a password) of an empty database on a throwaway PostgreSQL server.

    A server that cannot start fails the tests that need it, with the server log: a silent skip
    would let SQL sources go untested.
    """
    from contextlib import ExitStack

    from tests.services import PostgresError, postgres_server

    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
        except PostgresError as exc:
            failure = f"the test PostgreSQL server could not be started:\n{exc}"
        else:
            failure = ""
        if failure:  # outside the handler, so the log is printed once, not twice
            pytest.fail(failure, pytrace=False)
        yield url
