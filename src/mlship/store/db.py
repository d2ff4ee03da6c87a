"""Engines and schema migrations for the metadata store.

SQLite is the embedded default and is opened in WAL mode, so a server reading while a training run
writes does not block, with foreign keys enforced. Any other SQLAlchemy URL (PostgreSQL for teams)
goes through the same code; the schema always comes from the Alembic migrations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; for SQLite, create the file's directory and set pragmas."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


VERSION_TABLE = "mlship_schema_version"
"""Alembic's bookkeeping table. Not the default ``alembic_version``: Optuna keeps its studies in
the same database and its own Alembic history in that default table."""


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def current_revision(engine: Engine) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return tuple(context.get_current_heads())


def head_revision(engine: Engine) -> tuple[str, ...]:
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(_alembic_config(engine)).get_heads())


def _adopt_default_version_table(engine: Engine) -> None:
    """Move mlship's revision out of ``alembic_version``, where workspaces created by mlship
    0.1.0 kept it, so that table is free for Optuna."""
    from alembic.script import ScriptDirectory

    tables = set(inspect(engine).get_table_names())
    if VERSION_TABLE in tables or "alembic_version" not in tables:
        return
    script = ScriptDirectory.from_config(_alembic_config(engine))
    ours = {revision.revision for revision in script.walk_revisions()}
    with engine.begin() as connection:
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


def upgrade(engine: Engine) -> None:
    """Bring the database schema to the newest migration (a no-op when it is already there)."""
    _adopt_default_version_table(engine)
    if set(current_revision(engine)) == set(head_revision(engine)):
        return
    from alembic import command

    config = _alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
