"""``mlship audit``: who changed what, when, and from where."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from mlship.cli.console import out
from mlship.errors import MlshipError
from mlship.workspace import Workspace


def audit(
    user: Annotated[str | None, typer.Option(help="Only this user's entries.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only actions containing this text (a path, a command).")
    ] = None,
    table: Annotated[str | None, typer.Option(help="Only entries that touched this table.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only entries this recent: 30m, 24h, 7d, or an ISO time.")
    ] = None,
    denied: Annotated[bool, typer.Option(help="Only refused attempts.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many entries.", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List the audit log, newest first (admins only, on a server)."""
    from mlship.store.entities import to_json

    workspace = Workspace.open()
    try:
        entries = workspace.audit.list(
            user=user,
            action=action,
            table=table,
            since=_since(since),
            outcome="denied" if denied else None,
            limit=limit,
        )
    finally:
        workspace.close()
    if as_json:
        for entry in entries:
            out.print_json(json.dumps(to_json(entry)))
        return
    grid = Table(title=f"Audit log ({len(entries)} entries, newest first)")
    for column in ("#", "at (UTC)", "user", "role", "from", "action", "outcome", "changes"):
        grid.add_column(column, overflow="fold")
    for entry in entries:
        grid.add_row(
            str(entry.id),
            entry.at.strftime("%Y-%m-%d %H:%M:%S"),
            entry.user,
            entry.role or "-",
            entry.origin,
            entry.action,
            entry.outcome,
            _changes(entry.changes or {}),
        )
    out.print(grid)


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    from mlship.monitor.window import parse_duration
    from mlship.store.clock import as_utc, utcnow

    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise MlshipError(f"--since {text!r}: a duration (30m, 24h, 7d) or an ISO time") from exc
    return utcnow() - timedelta(seconds=seconds)


def _changes(changes: dict[str, Any]) -> str:
    """``runs +1, model_versions ~2 (stage)`` for a table of entries."""
    if "reason" in changes:
        return str(changes["reason"])
    parts = []
    for table, change in sorted(changes.items()):
        if not isinstance(change, dict):
            continue
        counts = []
        if change.get("inserted"):
            counts.append(f"+{change['inserted']}")
        updated = change.get("update") or {}
        if updated:
            columns = sorted({c for row in updated.values() for c in row})
            counts.append(f"~{len(updated)} ({', '.join(columns)})")
        if change.get("deleted"):
            counts.append(f"-{change['deleted']}")
        parts.append(f"{table} {' '.join(counts)}")
    return "; ".join(parts)
