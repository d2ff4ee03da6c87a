"""``mlship gc``: list, and with ``--apply`` delete, the artifacts nothing refers to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mlship.cli.console import out
from mlship.cli.render import byte_size
from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.store.gc import Plan


def gc(
    older_than: Annotated[
        str,
        typer.Option(
            help="Only artifacts written longer ago than this (90d, 12h, 30m, or 0 for any): "
            "work that has stored an artifact but not yet recorded it is younger."
        ),
    ] = "90d",
    keep_versions: Annotated[
        int | None,
        typer.Option(
            help="Keep the N newest dataset versions of each pipeline; older ones no run or "
            "model version uses are dropped with their artifacts.",
            min=0,
        ),
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Delete; without it nothing changes.")
    ] = False,
) -> None:
    """List the artifacts no dataset, run or model version refers to, their sizes and what
    storing them costs a month; --apply deletes them."""
    from mlship.store import gc as collection
    from mlship.workspace import Workspace

    try:
        age = collection.parse_age(older_than)
    except ValueError as exc:
        raise MlshipError(str(exc)) from None
    workspace = Workspace.open()
    try:
        if workspace.remote is not None:
            raise MlshipError(
                "`mlship gc` walks the artifact store and the database themselves; run it on "
                "the tracking server's host (without MLSHIP_URL)"
            )
        store = collection.collected_store(workspace.settings)
        planned = collection.plan(
            workspace.metadata,
            store,
            older_than=age,
            keep_versions=keep_versions,
            prices=workspace.settings.prices,
        )
        _show(planned)
        if not apply:
            if planned.artifacts or planned.datasets:
                out.print("Dry run: nothing was deleted; `mlship gc --apply` deletes these.")
            return
        deleted = collection.apply(workspace.metadata, store, planned)
    finally:
        workspace.close()
    out.print(
        f"Deleted {deleted} artifact(s) and {len(planned.datasets)} dataset version(s).",
        highlight=False,
    )


def _show(planned: Plan) -> None:
    for dataset in planned.datasets:
        out.print(
            f"Dataset version {dataset.id} ({dataset.pipeline or 'no pipeline'}, "
            f"{dataset.data_hash[:12]}, {dataset.created_at:%Y-%m-%d}): no run or model "
            "version uses it",
            highlight=False,
        )
    if planned.artifacts:
        table = Table(title="Artifacts to delete")
        for column in ("artifact", "size", "written", "why"):
            table.add_column(column)
        for doomed in planned.artifacts:
            table.add_row(
                doomed.sha256[:16],
                byte_size(doomed.size),
                f"{doomed.written:%Y-%m-%d %H:%M}",
                doomed.why,
            )
        out.print(table)
    out.print(
        f"To delete: {len(planned.artifacts)} artifact(s), {byte_size(planned.size)}, "
        f"saving {planned.monthly_saving:.4f} {planned.currency} a month at "
        f"{planned.price_gb_month} {planned.currency} per GB-month",
        highlight=False,
    )
    out.print(
        f"Kept: {planned.kept} referenced; {planned.kept_young} unreferenced but younger than "
        "--older-than",
        highlight=False,
    )
