"""Engines and schema migrations for the metadata store.

SQLite is the embedded default and is opened in WAL mode, so a server reading while a training run
writes does not block, with foreign keys enforced. Any other SQLAlchemy URL (PostgreSQL for teams)
goes through the same code; the schema always comes from the Alembic migrations.

Several processes may use one SQLite file at once (parallel runs, a server beside them), so:
every SQLite transaction starts with ``BEGIN IMMEDIATE``, taking the write lock up front. A
transaction that reads and then writes (the dataset of a content hash, the next version number)
would otherwise read in one snapshot and then fail with ``database is locked`` when it tries to
write after another process has; waiting for the lock at the start (``busy_timeout``, 30 s)
serialises the writers instead, each reading what the previous one committed. Migrations run
once, under a lock: a file lock in the workspace home, and inside the database (the same
``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), re-checking the schema version
once the lock is held, so concurrent first commands on a new workspace do not each create the
tables. A read-only, full or failing database is reported as such (:mod:`mlship.store.failures`).

A PostgreSQL URL may list several servers (:mod:`mlship.dburl`) so that, with
``target_session_attrs=read-write``, new connections go to whichever is the primary. The pool
checks a connection before handing it out (``pool_pre_ping``) and replaces connections older
than :data:`POOL_RECYCLE_SECONDS`, so after a failover no request is given a connection to the
dead server or to one that has turned standby; and a connection that meets a read-only server or
an administrator's shutdown is treated as lost, so the whole pool is refreshed at once rather
than one failing request per pooled connection. Retrying the work that was running is
:mod:`mlship.store.retry`'s.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import ExceptionContext, make_url

from mlship.dburl import sqlalchemy_url
from mlship.store.failures import Place
from mlship.store.locks import file_lock

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_SECONDS = 30
MIGRATION_LOCK_KEY = 0x6D6C73686970  # "mlship": the advisory lock migrations take on PostgreSQL
DATABASE_SETTING = "MLSHIP_DATABASE_URL (or MLSHIP_HOME)"
POOL_RECYCLE_SECONDS = 300
"""Connections are replaced after this long, so none outlives a failover by much even when
nothing made it fail (a server that was demoted and restarted answers the ping)."""
CONNECT_TIMEOUT_SECONDS = 5
"""How long libpq waits for each listed server before trying the next (unless the URL says):
a server that vanished from the network would otherwise hold every new connection for the
operating system's TCP timeout, minutes."""
_SERVER_GONE = frozenset({"25006", "57P01", "57P02", "57P03"})
"""Read-only transaction, admin shutdown, crash shutdown, cannot connect now."""


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # No implicit BEGIN from the driver: _sqlite_begin issues BEGIN IMMEDIATE (see above).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    _use_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _use_wal(cursor: Any) -> None:
    """Put the database in WAL mode (persistent in the file, so usually already done).

    Switching the journal mode needs the database to itself, and SQLite answers ``database is
    locked`` at once, without the busy handler, when another connection is opening it at the
    same moment (many first commands on a new workspace). So the mode is read first, and set
    with retries until another connection has set it or the busy timeout has passed."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    delay = 0.005
    while True:
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


_SQLITE_CODES = {"SQLITE_FULL": errno.ENOSPC, "SQLITE_IOERR": errno.EIO}
_SQLITE_REFUSED = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")


def _sqlite_code(path: Path, name: str) -> int | None:
    """The errno that matches SQLite's error ``name`` for the database at ``path``, or None."""
    for prefix, code in _SQLITE_CODES.items():
        if name.startswith(prefix):
            return code
    if not name.startswith(_SQLITE_REFUSED):
        return None
    try:  # refused: by a read-only filesystem, by permissions, or (None) for another reason
        read_only = bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return None  # the folder itself is missing or unreadable: SQLite's text says more
    if read_only:
        return errno.EROFS
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return errno.EACCES
    return errno.EROFS if name.startswith("SQLITE_READONLY") else None


def _sqlite_failures(path: Path) -> Any:
    """A ``handle_error`` hook that names the database file when the disk refuses it."""
    place = Place("the metadata database", path, DATABASE_SETTING)

    def handle(context: ExceptionContext) -> None:
        name = getattr(context.original_exception, "sqlite_errorname", "") or ""
        code = _sqlite_code(path, name)
        if code is not None:
            raise place.error(OSError(code, name, str(path))) from context.original_exception

    return handle


def _server_gone(context: ExceptionContext) -> None:
    """Count a read-only server and a shut-down one as a lost connection (see above)."""
    state = getattr(context.original_exception, "sqlstate", None)
    if state in _SERVER_GONE:
        context.is_disconnect = True


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; for SQLite, create the file's directory and set pragmas."""
    parsed = make_url(sqlalchemy_url(url))
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            path = Path(parsed.database)
            with Place("the metadata database", path, DATABASE_SETTING).guard():
                path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        if parsed.database and parsed.database != ":memory:":
            event.listen(engine, "handle_error", _sqlite_failures(Path(parsed.database)))
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    engine = create_engine(
        parsed,
        pool_pre_ping=True,
        pool_recycle=POOL_RECYCLE_SECONDS,
        connect_args=connect_args,
    )
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine, "handle_error", _server_gone)
    return engine


VERSION_TABLE = "mlship_schema_version"
"""Alembic's bookkeeping table. Not the default ``alembic_version``: Optuna keeps its studies in
the same database and its own Alembic history in that default table."""


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # The ini parser reads % as interpolation: a percent-encoded password or host list has some.
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def current_revision(bind: Engine | Connection) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    with nullcontext(bind) if isinstance(bind, Connection) else bind.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return tuple(context.get_current_heads())


def head_revision(engine: Engine) -> tuple[str, ...]:
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(_alembic_config(engine)).get_heads())


def _adopt_default_version_table(connection: Connection) -> None:
    """Move mlship's revision out of ``alembic_version``, where workspaces created by mlship
    0.1.0 kept it, so that table is free for Optuna (inside the caller's transaction)."""
    from alembic.script import ScriptDirectory

    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables or "alembic_version" not in tables:
        return
    script = ScriptDirectory.from_config(_alembic_config(connection.engine))
    ours = {revision.revision for revision in script.walk_revisions()}
    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    found = [row[0] for row in rows]
    mine = [revision for revision in found if revision in ours]
    if not mine:
        return
    connection.execute(
        text(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    )
    for revision in mine:
        connection.execute(
            text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:r)"),  # noqa: S608 (a constant)
            {"r": revision},
        )
    if len(mine) == len(found):
        connection.execute(text("DROP TABLE alembic_version"))
    else:
        for revision in mine:
            connection.execute(
                text("DELETE FROM alembic_version WHERE version_num = :r"), {"r": revision}
            )


def upgrade(engine: Engine, lock_file: Path | None = None) -> None:
    """Bring the database schema to the newest migration (a no-op when it is already there).

    When there is work to do, it is done by one process at a time: under ``lock_file`` (the
    workspace's lock) and the database's own lock, with the version read again once both are
    held, so a process that waited finds the schema done and returns."""
    if set(current_revision(engine)) == set(head_revision(engine)):
        return  # the usual case: no lock taken
    from alembic import command

    config = _alembic_config(engine)
    locked = file_lock(lock_file) if lock_file is not None else nullcontext()
    with locked, engine.begin() as connection:  # BEGIN IMMEDIATE on SQLite: the write lock
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        _adopt_default_version_table(connection)
        if set(current_revision(connection)) == set(head_revision(engine)):
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
