"""The metadata database in a backup: a consistent snapshot taken while the workspace is in use,
its check, and its restore.

SQLite is copied with its online backup API, in one step inside one read transaction, so a run
writing at the same time is either wholly in the copy or not at all, and rows still in the
write-ahead log are included (a plain file copy of a WAL database misses them, or catches the
file between two states). PostgreSQL is dumped with ``pg_dump``, which reads the whole database
in one transaction snapshot, in its custom format, which ``pg_restore`` both lists (a check that
the archive is readable) and restores. PostgreSQL's tools are looked for where Debian keeps them,
off the PATH, the newest first (a dump must be made by a ``pg_dump`` at least as new as the
server).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url

from mlship.errors import ConfigError, MlshipError

Kind = Literal["sqlite", "postgresql"]
FILES: dict[Kind, str] = {"sqlite": "database.sqlite", "postgresql": "database.pgdump"}
_TIMEOUT = 3600


def kind_of(url: str) -> Kind:
    """Which kind of database ``url`` names (ConfigError for one a backup cannot take)."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return "sqlite"
    if backend == "postgresql":
        return "postgresql"
    raise ConfigError(
        f"cannot back up a {backend} database (MLSHIP_DATABASE_URL): backups take SQLite and "
        "PostgreSQL"
    )


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ConfigError(f"the SQLite URL {url!r} names no file to back up or restore into")
    return Path(database)


def snapshot(url: str, target: Path) -> Kind:
    """Write a consistent snapshot of the database at ``url`` to the local file ``target``."""
    kind = kind_of(url)
    if kind == "sqlite":
        _sqlite_snapshot(sqlite_path(url), target)
    else:
        _run("pg_dump", ["--format=custom", "--no-owner", f"--file={target}"], url)
    return kind


def _sqlite_snapshot(source: Path, target: Path) -> None:
    if not source.is_file():
        raise ConfigError(f"there is no workspace database at {source} to back up")
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        # One self-contained file: the workspace turns WAL back on when it opens it.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()
    with target.open("rb") as handle:
        os.fsync(handle.fileno())


def problem(kind: Kind, path: Path) -> str | None:
    """What is wrong with the snapshot at ``path``, or None when it reads: SQLite's
    ``PRAGMA integrity_check``, or ``pg_restore --list`` of the archive."""
    if kind == "sqlite":
        try:
            connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                rows = connection.execute("PRAGMA integrity_check").fetchall()
            finally:
                connection.close()
        except sqlite3.DatabaseError as exc:
            return f"not a readable SQLite database: {exc}"
        found = [str(row[0]) for row in rows]
        return None if found == ["ok"] else "integrity_check: " + "; ".join(found[:5])
    try:
        _tool_output("pg_restore", ["--list", str(path)])
    except MlshipError as exc:
        return str(exc)
    return None


def check_target(kind: Kind, url: str) -> None:
    """Raise ConfigError unless a snapshot of ``kind`` can be restored into ``url``."""
    target = kind_of(url)
    if target != kind:
        hint = (
            "give --database-url of an empty PostgreSQL database"
            if kind == "postgresql"
            else "restore it into SQLite (leave out --database-url)"
        )
        raise ConfigError(f"the backup's database is {kind}, the target is {target}: {hint}")


def restore(kind: Kind, path: Path, url: str) -> None:
    """Load the snapshot at ``path`` into the empty database at ``url``."""
    check_target(kind, url)
    if kind == "sqlite":
        from mlship.store.artifacts import atomic_write

        with path.open("rb") as handle:
            atomic_write(sqlite_path(url), iter(lambda: handle.read(1 << 20), b""))
        return
    _run(
        "pg_restore",
        ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", str(path)],
        url,
    )


def find_tool(name: str) -> Path:
    """PostgreSQL's ``name`` (pg_dump, pg_restore): in ``pg_config --bindir``, the newest
    /usr/lib/postgresql/*/bin, or the PATH; a ConfigError naming what is missing otherwise."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(Path(found.stdout.strip()))
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates.extend(sorted(versions, key=_major, reverse=True))
    for directory in candidates:
        if (directory / name).is_file():
            return directory / name
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise ConfigError(
        f"{name} is not installed (looked in pg_config --bindir, /usr/lib/postgresql/*/bin and "
        f"the PATH); install PostgreSQL's client tools (Debian: postgresql-client) to back up "
        "or restore a PostgreSQL workspace"
    )


def _major(bindir: Path) -> int:
    name = bindir.parent.name
    return int(name) if name.isdigit() else 0


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """``url`` as a libpq connection string, without its password, which goes to the tool in
    PGPASSWORD instead (not on a command line every user of the machine can read)."""
    parsed: URL = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(tool: str, args: list[str], url: str) -> None:
    conninfo, env = _libpq(url)
    _tool_output(tool, [*args, f"--dbname={conninfo}"], env)


def _tool_output(tool: str, args: list[str], env: dict[str, str] | None = None) -> str:
    path = find_tool(tool)
    try:
        done = subprocess.run(
            [str(path), *args],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            timeout=_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise MlshipError(f"{tool} did not finish within {_TIMEOUT} s") from None
    if done.returncode != 0:
        said = " ".join(done.stderr.split())[:800]
        raise MlshipError(f"{tool} failed (exit {done.returncode}): {said}")
    return done.stdout
