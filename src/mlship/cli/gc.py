"""``mlship gc``: list, and with ``--apply`` delete, the artifacts nothing refers to, and move
the ones ``[[gc.rules]]`` tier to the cold tier."""

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
    """List the artifacts no dataset, run or model version refers to and the old ones the
    [[gc.rules]] of mlship.toml tier or delete, with the bytes per tier and what each change
    saves a month; --apply carries it out."""
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
        settings = workspace.settings
        store = collection.collected_store(settings)
        planned = collection.plan(
            workspace.metadata,
            store,
            older_than=age,
            keep_versions=keep_versions,
            prices=settings.prices,
            rules=settings.gc.rules,
            cold=collection.cold_tier(settings),
        )
        _show(planned)
        if not apply:
            if planned.artifacts or planned.datasets or planned.tiered:
                out.print(
                    "Dry run: nothing was deleted or moved; `mlship gc --apply` carries this out."
                )
            return
        outcome = collection.apply(workspace.metadata, store, planned)
    finally:
        workspace.close()
    out.print(
        f"Deleted {outcome.deleted} artifact(s) and {len(planned.datasets)} dataset version(s).",
        highlight=False,
    )
    if planned.tiered:
        out.print(f"Tiered {outcome.tiered} artifact(s) to cold.", highlight=False)


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
    if planned.tiered:
        table = Table(title="Artifacts to tier")
        for column in ("artifact", "what", "size", "written"):
            table.add_column(column)
        for moved in planned.tiered:
            table.add_row(
                moved.sha256[:16], moved.what, byte_size(moved.size), f"{moved.written:%Y-%m-%d}"
            )
        out.print(table)
    currency = planned.currency
    out.print(
        f"To delete: {len(planned.artifacts)} artifact(s), {byte_size(planned.size)}, "
        f"saving {planned.monthly_saving:.4f} {currency} a month at "
        f"{planned.price_gb_month} {currency} per GB-month",
        highlight=False,
    )
    cold = planned.cold
    if cold is not None:
        out.print(
            f"To tier: {len(planned.tiered)} artifact(s), {byte_size(planned.tier_size)} to "
            f"cold ({cold.key}, {cold.gb_month} {currency} per GB-month), saving "
            f"{planned.tier_saving:.4f} {currency} a month",
            highlight=False,
        )
        hot_after, cold_after = planned.after
        out.print(
            f"Stored: {byte_size(planned.hot_bytes)} standard and "
            f"{byte_size(planned.cold_bytes)} cold now; {byte_size(hot_after)} standard and "
            f"{byte_size(cold_after)} cold after",
            highlight=False,
        )
    out.print(
        f"Kept: {planned.kept} referenced; {planned.kept_young} unreferenced but younger than "
        "--older-than",
        highlight=False,
    )
