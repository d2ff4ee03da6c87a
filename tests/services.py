"""Servers the test suite runs for itself: a throwaway PostgreSQL cluster.

SQL sources are tested against a real server because drivers differ in exactly the places a mock
would paper over: server-side cursors, type mapping, and the wording of errors. The cluster lives in
a fresh temporary directory, listens only on 127.0.0.1 on a free port, and is stopped and deleted
when the session ends. ``scripts/services.sh`` installs the server when it is missing.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from tests.ports import free_port

SERVER_USER = "postgres"
DB_USER = "mlship"
DB_NAME = "mlship_test"
_TIMEOUT = 120

# Durability is pointless for a cluster that is deleted after the session; turning it off keeps
# table creation quick.
_SETTINGS = """
listen_addresses = '127.0.0.1'
unix_socket_directories = '{sockets}'
fsync = off
synchronous_commit = off
full_page_writes = off
"""


class PostgresError(RuntimeError):
    """The throwaway server could not be set up; the message carries the command output and log."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``, which Debian keeps off the PATH."""
    for candidate in _bindir_candidates():
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise PostgresError(
        "no PostgreSQL server binaries (initdb, pg_ctl) found via pg_config, "
        "/usr/lib/postgresql/*/bin or PATH; run scripts/services.sh to install them"
    )


def _bindir_candidates() -> list[Path]:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates.extend(sorted(versions, key=_major_version, reverse=True))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    return candidates


def _major_version(bindir: Path) -> int:
    name = bindir.parent.name
    return int(name) if name.isdigit() else 0


class _Cluster:
    """Runs the server commands, as the ``postgres`` user when we are root (the server refuses
    to run as root), in a directory that user owns."""

    def __init__(self, bindir: Path, base: Path) -> None:
        self.bindir = bindir
        self.base = base
        self.data = base / "data"
        self.log = base / "server.log"
        self.owner = pwd.getpwnam(SERVER_USER) if os.geteuid() == 0 else None

    def give(self, path: Path) -> None:
        """Hand ``path`` to the server's user, so that it can read or write it."""
        if self.owner is not None:
            os.chown(path, self.owner.pw_uid, self.owner.pw_gid)

    def run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.owner is not None:
            command = _as_user(SERVER_USER, command)
        result = subprocess.run(
            command,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise PostgresError(
                f"{' '.join(command)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
                f"server log ({self.log}):\n{self.server_log()}"
            )

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return "(no server log was written)"


def _as_user(user: str, command: Sequence[str]) -> list[str]:
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *command]
    return ["su", user, "-s", "/bin/sh", "-c", shlex.join(command)]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster and yield a SQLAlchemy URL of an empty database.

    The database user has a password (and the server requires it over TCP) so that tests can check
    that passwords never reach lineage or error messages. Raises :class:`PostgresError`, with the
    command output and the server log, when anything fails.
    """
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresError(
                f"running as root, and there is no {SERVER_USER!r} user to run the server as "
                "(PostgreSQL refuses to run as root); run scripts/services.sh"
            ) from None
    cluster = _Cluster(find_bindir(), Path(tempfile.mkdtemp(prefix="mlship-pg-")))
    started = False
    try:
        password = secrets.token_hex(12)
        port = _init_and_start(cluster, password)
        started = True
        url = f"postgresql+psycopg://{DB_USER}:{password}@127.0.0.1:{port}"
        _create_database(f"{url}/postgres", DB_NAME)
        yield f"{url}/{DB_NAME}"
    finally:
        if started:
            cluster.run("pg_ctl", "stop", "-D", str(cluster.data), "-m", "fast", "-w")
        shutil.rmtree(cluster.base, ignore_errors=True)


def _init_and_start(cluster: _Cluster, password: str) -> int:
    cluster.give(cluster.base)
    password_file = cluster.base / "password"
    password_file.write_text(password + "\n")
    cluster.give(password_file)
    cluster.run(
        "initdb",
        "-D",
        str(cluster.data),
        "-U",
        DB_USER,
        f"--pwfile={password_file}",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
    )
    password_file.unlink()
    with (cluster.data / "postgresql.conf").open("a") as conf:
        conf.write(_SETTINGS.format(sockets=cluster.base))
    port = free_port()
    cluster.run(
        "pg_ctl",
        "start",
        "-D",
        str(cluster.data),
        "-l",
        str(cluster.log),
        "-o",
        f"-p {port}",
        "-w",
        "-t",
        "60",
    )
    return port


def _create_database(admin_url: str, name: str) -> None:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def create_database(url: str, name: str) -> str:
    """A new empty database called ``name`` on the server of ``url``; its URL."""
    parsed = sa.engine.make_url(url)
    _create_database(parsed.set(database="postgres").render_as_string(hide_password=False), name)
    return parsed.set(database=name).render_as_string(hide_password=False)
