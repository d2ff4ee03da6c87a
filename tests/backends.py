"""Every metadata backend a user can run, for the behavioural suites of the repositories.

A suite takes the ``backend`` fixture of ``tests/conftest.py`` and runs once per backend:

- ``sqlite``: the embedded default, a database file in the workspace;
- ``postgresql``: the local repositories on a real PostgreSQL database;
- ``http-sqlite`` and ``http-postgresql``: a client of a real ``mlship server`` process whose
  own store is SQLite or PostgreSQL, reached over HTTP with an admin's token.

:meth:`Backend.workspace_as` opens a workspace acting as another user with a role (a token of a
new user on a server; the settings' user locally, where roles are not checked), so suites can
exercise rules between people (a reviewer approving a scientist's request) on every backend.
Each backend is shared by the tests of a session: tests use names of their own (:func:`unique`).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mlship.config import Settings
from mlship.workspace import Workspace
from tests.conftest import invoke_cli, mlship_env
from tests.serving import Server, free_port, start_server

BACKENDS = ("sqlite", "postgresql", "http-sqlite", "http-postgresql")

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test of the session uses (backends are shared by a session)."""
    return f"{prefix}-{next(_counter)}"


@dataclass
class Backend:
    name: str
    root: Path
    """A directory of this backend's own (client workspaces live under it)."""
    database_url: str | None = None
    """The store's database (None: the workspace's SQLite file)."""
    server: Server | None = None
    server_home: Path | None = None
    admin_token: str | None = None
    workspaces: list[Workspace] = field(default_factory=list)

    @property
    def remote(self) -> bool:
        return self.server is not None

    @property
    def home(self) -> Path:
        """The workspace directory local backends keep their files (and SQLite database) in."""
        return self.server_home if self.server_home is not None else self.root / "ws"

    def workspace_as(self, user: str = "admin", role: str = "admin") -> Workspace:
        """A workspace acting as ``user`` (created with ``role`` on a server when new)."""
        if self.server is None:
            settings = Settings(home=self.home, database_url=self.database_url, user=user, n_jobs=1)
        else:
            settings = Settings(
                home=self.root / f"client-{user}",
                url=self.server.base,
                token=self._token_of(user, role),
                user=user,
                n_jobs=1,
            )
        ws = Workspace.open(settings)
        self.workspaces.append(ws)
        return ws

    def _token_of(self, user: str, role: str) -> str:
        assert self.admin_token is not None and self.server is not None
        if user == "admin":
            return self.admin_token
        tokens = getattr(self, "_tokens", {})
        roles = getattr(self, "_roles", {})
        if roles.setdefault(user, role) != role:  # shared by a session: one role per name
            raise AssertionError(
                f"{user} is already a {roles[user]} on the {self.name} backend; "
                f"pick another name for a {role}"
            )
        self._roles = roles
        if user not in tokens:
            env = {"MLSHIP_URL": self.server.base, "MLSHIP_TOKEN": self.admin_token}
            home = self.root / "admin-client"
            invoke_cli("users", "add", user, "--role", role, home=home, env=env)
            created = invoke_cli("tokens", "create", user, home=home, env=env)
            tokens[user] = _secret(created.stdout)
            self._tokens = tokens
        return str(tokens[user])

    def close(self) -> None:
        for ws in self.workspaces:
            ws.close()
        self.workspaces.clear()


def _secret(output: str) -> str:
    return next(line.strip() for line in output.splitlines() if line.strip().startswith("mls_"))


@contextmanager
def open_backend(name: str, root: Path, postgres_url: str | None) -> Iterator[Backend]:
    """The backend ``name`` (one of :data:`BACKENDS`), started under ``root``."""
    database_url = None
    if name.endswith("postgresql"):
        from tests.services import create_database

        assert postgres_url is not None
        # A database per start, named after ``root`` (``postgresql0``, ``postgresql1``...): a test
        # worker of ``pytest -n`` that gets the files of a backend in turns starts it again.
        database_url = create_database(postgres_url, "mlship_" + root.name.replace("-", "_"))
    if not name.startswith("http-"):
        backend = Backend(name, root, database_url)
        try:
            yield backend
        finally:
            backend.close()
        return
    home = root / "server"
    server_env = {"MLSHIP_USER": "ops"}
    if database_url is not None:
        server_env["MLSHIP_DATABASE_URL"] = database_url
    invoke_cli("users", "add", "admin", "--role", "admin", home=home, env=server_env)
    admin = _secret(invoke_cli("tokens", "create", "admin", home=home, env=server_env).stdout)
    port = free_port()
    server = start_server(
        [sys.executable, "-m", "mlship", "server", "--port", str(port)],
        mlship_env(home, server_env),
        f"http://127.0.0.1:{port}",
        ready="/api/v1/health",
        ready_status=401,
    )
    backend = Backend(name, root, database_url, server, home, admin)
    try:
        yield backend
    finally:
        backend.close()
        if server.process.poll() is None:
            server.stop()
