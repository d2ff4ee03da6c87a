"""The database a query source names: its URL with ``${VAR}`` filled in, a relative SQLite file
beside the spec, and the database's own error words on one line, password masked."""

from __future__ import annotations

import os
import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from mlship.data.readers.masking import mask, mask_text
from mlship.errors import DataError

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_QUOTED_LINE = re.compile(r"^LINE (\d+): ")


def database_url(raw_url: str, label: str, base_dir: Path) -> URL:
    """The source's URL with ``${VAR}`` filled in from the environment, parsed."""
    prefix = f"{label} ({mask_text(raw_url)})"
    missing = [name for name in _ENV_REFERENCE.findall(raw_url) if name not in os.environ]
    if missing:
        names = ", ".join(dict.fromkeys(missing))
        raise DataError(
            f"{prefix}: environment variable {names} is not set; `url` refers to it as "
            f"${{{missing[0]}}}, so set it before running"
        )
    text = _ENV_REFERENCE.sub(lambda match: os.environ[match.group(1)], raw_url)
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError:
        raise DataError(
            f"{label} ({mask_text(text)}): is not a valid SQLAlchemy URL; expected e.g. "
            "postgresql+psycopg://user:${PGPASSWORD}@host:5432/db or sqlite:///data.db"
        ) from None
    return _sqlite_beside_spec(url, base_dir)


def _sqlite_beside_spec(url: URL, base_dir: Path) -> URL:
    """A relative SQLite file is relative to the spec, like every other path in it."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:") or Path(database).expanduser().is_absolute():
        return url
    return url.set(database=str(base_dir / database))


def check_sqlite_file(url: URL, prefix: str) -> None:
    """Refuse a SQLite file that is not there: connecting would create it, and reading a source
    must never write (a mistyped path would otherwise leave an empty database behind)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):
        return
    path = Path(database).expanduser()
    if path.is_dir():
        raise DataError(f"{prefix}: is a directory; expected a SQLite database file")
    if not path.exists():
        raise DataError(f"{prefix}: the database file does not exist")


def db_message(exc: sa.exc.SQLAlchemyError, secrets: list[str]) -> str:
    """The database's own words on one line (not SQLAlchemy's wrapper), password masked.

    PostgreSQL quotes the statement with a caret under the fault; the statement it quotes is the
    cursor declaration wrapped around the query, so only the query line number is kept.
    """
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc)
    text = text.split("(Background on this error", 1)[0]
    kept: list[str] = []
    query_line = None
    for line in text.splitlines():
        quoted = _QUOTED_LINE.match(line)
        if quoted:
            query_line = quoted.group(1)
        elif line.strip() and line.strip() != "^":
            kept.append(" ".join(line.split()))
    message = "; ".join(kept) or type(exc).__name__
    if query_line:
        message += f" (line {query_line} of the query)"
    return mask(message, secrets)
