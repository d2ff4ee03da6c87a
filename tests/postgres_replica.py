"""A throwaway replicated PostgreSQL: a primary and a hot standby that streams from it.

The standby is made the way an operator makes one, with ``pg_basebackup -R`` (which writes the
standby's connection to the primary and its ``standby.signal``), and every commit waits for it
(``synchronous_standby_names`` set on the primary once the standby is up, so the standby does not
inherit it and wait for a standby of its own once promoted). So a row whose commit was answered
is on the standby; the failover test kills the primary and checks exactly that. The servers
are run as in :mod:`tests.services` (as the ``postgres`` user when we are root), with durable
commits: the test suite's single server turns ``synchronous_commit`` off, which would make a
commit answer before the standby has it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tests.ports import free_port
from tests.services import (
    DB_NAME,
    DB_USER,
    PostgresError,
    _Cluster,
    _init_and_start,
    create_database,
    find_bindir,
)

_REPLICATION = """
synchronous_commit = on
wal_level = replica
max_wal_senders = 4
hot_standby = on
wal_receiver_status_interval = 1s
"""


@dataclass(frozen=True)
class ReplicatedPostgres:
    """The two servers of a replicated cluster and how to reach them."""

    primary: _Cluster
    standby: _Cluster
    primary_port: int
    standby_port: int
    password: str

    def url(self, port: int, database: str = DB_NAME) -> str:
        """A SQLAlchemy URL of ``database`` on the server at ``port`` alone."""
        return f"postgresql+psycopg://{DB_USER}:{self.password}@127.0.0.1:{port}/{database}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def standby_url(self) -> str:
        return self.url(self.standby_port)

    @property
    def multi_host_url(self) -> str:
        """Both servers in libpq's form, for a client that follows whichever takes writes."""
        return (
            f"postgresql+psycopg://{DB_USER}:{self.password}@127.0.0.1:{self.primary_port},"
            f"127.0.0.1:{self.standby_port}/{DB_NAME}?target_session_attrs=read-write"
        )

    def kill_primary(self) -> None:
        """SIGKILL the primary's postmaster, as a crash or the OOM killer would: no shutdown
        checkpoint, no goodbye to clients; its backends notice and exit on their own."""
        os.kill(_postmaster_pid(self.primary.data), signal.SIGKILL)


def _postmaster_pid(data: Path) -> int:
    return int((data / "postmaster.pid").read_text().splitlines()[0])


@contextmanager
def replicated_postgres() -> Iterator[ReplicatedPostgres]:
    """Start a primary with an empty database :data:`~tests.services.DB_NAME` and a synchronous
    hot standby of it; stop and delete both afterwards (whatever state a test left them in)."""
    bindir = find_bindir()
    primary = _Cluster(bindir, Path(tempfile.mkdtemp(prefix="mlship-pg-primary-")))
    standby = _Cluster(bindir, Path(tempfile.mkdtemp(prefix="mlship-pg-standby-")))
    try:
        password = secrets.token_hex(12)
        primary_port = _init_and_start(primary, password)
        with (primary.data / "postgresql.conf").open("a") as conf:
            conf.write(_REPLICATION)
        primary.run(
            "pg_ctl",
            "restart",
            "-D",
            str(primary.data),
            "-m",
            "fast",
            "-w",
            "-l",
            str(primary.log),
            "-o",
            f"-p {primary_port}",
        )
        pair = ReplicatedPostgres(primary, standby, primary_port, free_port(), password)
        create_database(pair.url(primary_port, "postgres"), DB_NAME)
        _start_standby(pair)
        _require_sync_standby(pair)
        yield pair
    finally:
        for cluster in (standby, primary):
            _stop(cluster)
            shutil.rmtree(cluster.base, ignore_errors=True)


def _start_standby(pair: ReplicatedPostgres) -> None:
    standby = pair.standby
    standby.give(standby.base)
    source = (
        f"host=127.0.0.1 port={pair.primary_port} user={DB_USER} password={pair.password} "
        "application_name=standby"
    )
    standby.run(
        "pg_basebackup",
        "-d",
        source,
        "-D",
        str(standby.data),
        "-R",
        "-X",
        "stream",
        "--checkpoint=fast",
        "--no-sync",
    )
    standby.run(
        "pg_ctl",
        "start",
        "-D",
        str(standby.data),
        "-l",
        str(standby.log),
        "-o",
        f"-p {pair.standby_port} -k {standby.base}",
        "-w",
        "-t",
        "60",
    )


def _require_sync_standby(pair: ReplicatedPostgres) -> None:
    """Make commits wait for the standby, and wait until it is the synchronous one."""
    admin = sa.create_engine(pair.primary_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("ALTER SYSTEM SET synchronous_standby_names = 'standby'"))
            conn.execute(sa.text("SELECT pg_reload_conf()"))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                state = conn.execute(
                    sa.text(
                        "SELECT sync_state FROM pg_stat_replication WHERE application_name = "
                        "'standby' AND state = 'streaming'"
                    )
                ).scalar()
                if state == "sync":
                    return
                time.sleep(0.1)
    finally:
        admin.dispose()
    raise PostgresError(
        "the standby did not become the primary's synchronous standby within 30 s\n"
        f"primary log:\n{pair.primary.server_log()}\nstandby log:\n{pair.standby.server_log()}"
    )


def _stop(cluster: _Cluster) -> None:
    """Stop a server that may be running, promoted, or already killed (then its leftover
    backends are killed too, so nothing holds the directory)."""
    pid_file = cluster.data / "postmaster.pid"
    if not pid_file.exists():
        return
    with suppress(PostgresError):
        cluster.run("pg_ctl", "stop", "-D", str(cluster.data), "-m", "immediate", "-w")
        return
    with suppress(OSError, ValueError, IndexError):
        os.kill(_postmaster_pid(cluster.data), signal.SIGKILL)
