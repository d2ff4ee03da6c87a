"""How ``mlship data show`` prints what an incremental ingest added to the previous version."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from mlship.cli.console import out


def print_increment(increment: dict[str, Any]) -> None:
    """The rows added, replaced and unchanged, the previous version, and each source's range."""
    previous = increment.get("previous")
    restarted = increment.get("restarted")
    if restarted:
        basis = f"a new start ({restarted})"
    elif previous:
        basis = f"dataset {previous[:12]} + the new rows"
    else:
        basis = "the first ingest"
    out.print(
        f"Increment: {basis}; {increment.get('rows_read', 0)} rows read, "
        f"{increment.get('rows_added', 0)} added, {increment.get('rows_replaced', 0)} replaced, "
        f"{increment.get('rows_unchanged', 0)} unchanged; deletions: "
        f"{increment.get('deletions', 'unsupported')}"
    )
    table = Table(title="Read since the marks")
    for name in ("source", "mode", "from", "to", "rows"):
        table.add_column(name)
    for label, read in (increment.get("sources") or {}).items():
        table.add_row(
            label,
            str(read.get("mode", "")),
            _place(read.get("from")),
            _place(read.get("to")),
            str(read.get("rows", "")),
        )
    out.print(table)


def _place(place: Any) -> str:
    """A mark as people read it: ``byte 120 (line 7)`` of a file, a key or time of a table."""
    if place is None:
        return "the start"
    if isinstance(place, dict):
        return f"byte {place.get('byte')} (line {place.get('line')})"
    return str(place)
