"""Alembic environment: migrate the connection mlship hands over, or the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from mlship.store.db import VERSION_TABLE
from mlship.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _ours(name: str | None, kind: str, parent_names: object) -> bool:
    """Autogenerate looks at mlship's tables only; other tools share the database."""
    return kind != "table" or name in target_metadata.tables


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs table rebuilds for ALTER
        compare_type=True,
        version_table=VERSION_TABLE,
        include_name=_ours,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as new_connection:
            _run(new_connection)
