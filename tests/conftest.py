"""Shared fixtures: an isolated workspace per test and a small copy of the churn example."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import pytest
from threadpoolctl import threadpool_limits

from mlship.config import Settings
from mlship.examples.churn import write_project
from mlship.workspace import Workspace

SMALL_ROWS = 1500

# The command line's consoles are made once per process and keep the width COLUMNS gives when
# they are made; without it, they read COLUMNS at every write, which is how :func:`invoke_cli`
# gives each command the 200 columns a subprocess gets. A COLUMNS inherited from the parent would
# pin them instead: pytest-xdist's workers inherit COLUMNS=80 from a controller that imported
# readline (which exports the terminal's size, 80 without a terminal, to its children), so long
# lines (paths under a worker's longer temporary directory) would wrap where the tests read them.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

# One BLAS and OpenMP thread per process. The suite runs several test files at once on CI's two
# cores, each starting commands, servers and Ray workers that would otherwise start a thread per
# core apiece: on the tests' small data those threads mostly spin, about a fifth of a small run's
# CPU. Set here, every process the tests start inherits it; threadpoolctl covers libraries this
# process loaded before the variables were read.
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")
threadpool_limits(limits=1)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "ws", n_jobs=1, user="tester")


@pytest.fixture
def workspace(settings: Settings) -> Iterator[Workspace]:
    ws = Workspace.open(settings)
    yield ws
    ws.close()


LIGHTER = {
    "trials: 12, batch: 4": "trials: 4, batch: 2",
    "folds: 5": "folds: 3",
    "n_estimators: 200": "n_estimators: 40",
    "max_iter: 200": "max_iter: 40",
}
"""The churn example's search made smaller: the same models, tuning, pruning, imbalance and
threshold steps, in a fraction of the example's CPU time."""


def lighten(spec: Path) -> Path:
    """``spec`` (the churn example's) with the :data:`LIGHTER` settings; once is enough."""
    text = spec.read_text()
    for heavy, light in LIGHTER.items():
        text = text.replace(heavy, light)
    spec.write_text(text)
    return spec


def small_churn(root: Path) -> Path:
    """The churn example on ``SMALL_ROWS`` customers with a lighter search, written to ``root``;
    the path of its spec."""
    return lighten(write_project(root, n=SMALL_ROWS))


@pytest.fixture
def churn_spec(tmp_path: Path) -> Path:
    """The churn example, with fewer rows and a lighter search so that tests stay quick."""
    return small_churn(tmp_path / "churn")


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """A workspace in which the small churn example has been run once (churn:1); read-only."""
    from mlship.spec import load_spec
    from mlship.train.run import execute

    root = tmp_path_factory.mktemp("trained")
    ws = Workspace.open(Settings(home=root / "ws", n_jobs=1, user="tester"))
    execute(load_spec(small_churn(root / "churn")), ws)
    yield ws
    ws.close()


def copy_workspace(workspace: Workspace, root: Path) -> Path:
    """A copy of ``workspace``'s home under ``root``, for a test that changes it."""
    home = root / "ws"
    shutil.copytree(workspace.settings.home_resolved, home)
    return home


def two_churn_versions(root: Path) -> Path:
    """A workspace home under ``root`` with churn:1 and churn:2, the second trained with a
    narrower search (strong regularisation only), so the two versions answer differently."""
    spec = small_churn(root / "churn")
    home = root / "home"
    invoke_cli("run", str(spec), home=home, cwd=root)
    spec.write_text(spec.read_text().replace("[0.001, 100.0]", "[0.001, 0.01]"))
    invoke_cli("run", str(spec), home=home, cwd=root)
    return home


def mlship_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``MLSHIP_*`` setting, pointed at ``home``, with
    one worker process per command unless ``extra`` says otherwise.

    The suite runs several test files at once on CI's two cores; a command that also starts a
    pool of all cores (the default) oversubscribes them and pays for starting the pool's workers,
    about a quarter of a small run's CPU. The tests that are about several workers ask for them.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSHIP_")}
    env["MLSHIP_HOME"] = str(home)
    env["MLSHIP_N_JOBS"] = "1"
    env["COLUMNS"] = "200"
    env.update(extra or {})
    return env


def _checked(args: tuple[str, ...], returncode: int, stdout: str, stderr: str) -> None:
    if returncode != 0:
        raise AssertionError(
            f"mlship {' '.join(args)} exited {returncode}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        )


def run_cli(
    *args: str,
    home: Path,
    cwd: Path | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``mlship`` command line in a subprocess (``env`` adds variables)."""
    result = subprocess.run(
        [sys.executable, "-m", "mlship", *args],
        cwd=cwd,
        env=mlship_env(home, env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        _checked(args, result.returncode, result.stdout, result.stderr)
    return result


@dataclass(frozen=True)
class CliResult:
    """How one command exited and what it printed (the fields of ``CompletedProcess``)."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def invoke_cli(
    *args: str,
    home: Path,
    cwd: Path | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> CliResult:
    """Run the ``mlship`` entry point, :func:`mlship.cli.main.main`, inside this process.

    It is the function the installed command calls, with the environment :func:`run_cli` gives
    (``MLSHIP_*`` cleared, ``home`` as the workspace, 200 columns), its own argv, working directory
    and captured output, so error handling and exit codes are those of the command. What it saves
    is a fresh interpreter's second of imports per command, which keeps suites that run dozens of
    commands quick. An exception escaping the entry point is reported the way Python reports it:
    a traceback on stderr and exit code 1.
    """
    from mlship.cli.main import main

    stdout, stderr = io.StringIO(), io.StringIO()
    returncode = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, mlship_env(home, env), clear=True))
        stack.enter_context(mock.patch.object(sys, "argv", ["mlship", *args]))
        stack.enter_context(contextlib.chdir(cwd or Path.cwd()))
        stack.enter_context(contextlib.redirect_stdout(stdout))
        stack.enter_context(contextlib.redirect_stderr(stderr))
        try:
            main()
        except SystemExit as exc:
            if isinstance(exc.code, str):
                stderr.write(exc.code + "\n")
            returncode = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except Exception:
            traceback.print_exc()
            returncode = 1
    result = CliResult(args, returncode, stdout.getvalue(), stderr.getvalue())
    if check:
        _checked(args, result.returncode, result.stdout, result.stderr)
    return result


T = TypeVar("T")


def _server(start: AbstractContextManager[T], error: type[Exception], what: str) -> Iterator[T]:
    """Yield what ``start`` gives for the session; a server that cannot start fails the tests
    that need it, with its log, never a silent skip."""
    with ExitStack() as stack:
        try:
            value = stack.enter_context(start)
        except error as exc:
            failure = f"the test {what} could not be started:\n{exc}"
        else:
            failure = ""
        if failure:  # outside the handler, so the log is printed once, not twice
            pytest.fail(failure, pytrace=False)
        yield value


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL (with a password) of an empty database on a throwaway PostgreSQL server;
    SQL sources are never left untested by a silent skip."""
    from tests.services import PostgresError, postgres_server

    yield from _server(postgres_server(), PostgresError, "PostgreSQL server")


@pytest.fixture(scope="session")
def object_store() -> Iterator[Any]:
    """A real S3-compatible store (SeaweedFS on 127.0.0.1) with an empty bucket and a key that
    may use it, shared by the tests of a session (``tests.objectstore.ObjectStore``)."""
    from tests.objectstore import ObjectStoreError, seaweedfs_server

    yield from _server(seaweedfs_server(), ObjectStoreError, "object store (SeaweedFS)")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a throwaway Redis server (``tests.brokers``), shared by a session's tests."""
    from tests.brokers import BrokerError, redis_server

    yield from _server(redis_server(), BrokerError, "Redis server")


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """The URL of a throwaway NATS server with JetStream (``tests.brokers``), shared by a
    session's tests."""
    from tests.brokers import BrokerError, nats_server

    yield from _server(nats_server(), BrokerError, "NATS server")


@pytest.fixture(scope="session")
def team(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real ``mlship server`` on its own PostgreSQL database, with the users of
    ``tests.tracking.TEAM`` and a token each (shared by the tests of a session)."""
    from tests.services import create_database
    from tests.tracking import team_server

    database = create_database(postgres_url, "mlship_team")
    with team_server(tmp_path_factory.mktemp("team"), database) as found:
        yield found


@pytest.fixture(scope="session", params=["sqlite", "postgresql", "http-sqlite", "http-postgresql"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Each metadata backend in turn (``tests.backends.Backend``), shared by a session: the
    behavioural suites of the repositories run once on every one of them."""
    from tests.backends import open_backend

    name = str(request.param)
    postgres = request.getfixturevalue("postgres_url") if name.endswith("postgresql") else None
    with open_backend(name, tmp_path_factory.mktemp(name), postgres) as found:
        yield found


PROXIES = ("http_proxy", "https_proxy", "all_proxy")


@contextlib.contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook endpoint on 127.0.0.1: its URL and the JSON bodies it was sent."""
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", bodies
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook endpoint on 127.0.0.1 that proxies set in the environment do not divert."""
    for name in PROXIES:  # the POST must reach 127.0.0.1 itself, whatever proxy is set
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    with webhook_receiver() as endpoint:
        yield endpoint


HEAVY_FIRST = (
    "tests/e2e/test_run_signals.py",
    "tests/unit/test_training_run.py",
    "tests/e2e/test_training_cli.py",
    "tests/e2e/test_serving.py",
    "tests/e2e/test_gc_tiering_cli.py",
    "tests/e2e/test_readme_tour.py",
    "tests/e2e/test_object_storage_home.py",
    "tests/e2e/test_monitor_ab_cli.py",
    "tests/e2e/test_package.py",
    "tests/e2e/test_out_of_core.py",
    "tests/e2e/test_ci_init_cli.py",
    "tests/e2e/test_registry_cli.py",
    "tests/e2e/test_lifecycle.py",
    "tests/e2e/test_serving_usage.py",
    "tests/e2e/test_run_resume.py",
    "tests/e2e/test_image_cli.py",
    "tests/unit/test_serve_bad_input.py",
    "tests/e2e/test_monitoring.py",
    "tests/e2e/test_annotations_compare_card_cli.py",
    "tests/e2e/test_object_storage_keys.py",
)
"""The files that took longest in a measured full run, longest first (decision record 056)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the longest files first. With ``--dist loadfile`` pytest-xdist hands files to its
    workers in collection order, so a long file collected last would run alone at the end while
    the other workers sit idle; started first, it overlaps with the many short ones."""
    rank = {path: place for place, path in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable
