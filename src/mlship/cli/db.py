"""``mlship db``: the metadata database's operations, beginning with failover."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

app = typer.Typer(help="The metadata database: failover of a replicated PostgreSQL.")


def _log(line: str) -> None:
    """One timestamped line on stderr, written at once (the watcher runs for days)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    print(f"{now} {line}", file=sys.stderr, flush=True)


@app.command("failover-watch")
def failover_watch(
    primary: Annotated[
        str,
        typer.Option(
            envvar="MLSHIP_FAILOVER_PRIMARY",
            help="SQLAlchemy URL of the primary (postgresql+psycopg://user@host:port/db); a "
            "password is better in ~/.pgpass or PGPASSWORD than on the command line.",
        ),
    ],
    standby: Annotated[
        str,
        typer.Option(
            envvar="MLSHIP_FAILOVER_STANDBY",
            help="URL of the standby to promote, as a superuser or a user granted EXECUTE on "
            "pg_promote.",
        ),
    ],
    failures: Annotated[
        int, typer.Option(help="Failed checks in a row that mean the primary is gone.", min=1)
    ] = 3,
    interval: Annotated[float, typer.Option(help="Seconds between checks.", min=0.05)] = 1.0,
    timeout: Annotated[
        float, typer.Option(help="Seconds a check may take (connect and query).", min=0.1)
    ] = 3.0,
) -> None:
    """Check the primary every INTERVAL seconds and promote the standby after FAILURES failed
    checks in a row; then stop. The old primary must then be fenced: rebuilt as a standby of
    the new one before it starts again (README, "Database failover")."""
    from mlship.store.failover import Watcher

    Watcher(primary, standby, failures, interval, timeout, log=_log).run()
