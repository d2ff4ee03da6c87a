"""``mlship gc``: list, and with ``--apply`` delete, the artifacts nothing refers to, and move
the ones ``[[gc.rules]]`` tier to the cold tier."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mlship.cli.console import out
from mlship.cli.render import byte_size
from mlship.errors import MlshipError
from mlship.prices import GB

if TYPE_CHECKING:
    from mlship.config import Settings
    from mlship.store.gc import Plan
    from mlship.store.log_retention import ExpiredPart, MonitoringNeeds
    from mlship.workspace import Workspace


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
        expired = _expired_logs(workspace)
        _show_logs(expired, planned)
        if not apply:
            if planned.artifacts or planned.datasets or planned.tiered or expired:
                out.print(
                    "Dry run: nothing was deleted or moved; `mlship gc --apply` carries this out."
                )
            return
        outcome = collection.apply(workspace.metadata, store, planned)
        workspace.logs.delete([e.part for e in expired])
    finally:
        workspace.close()
    out.print(
        f"Deleted {outcome.deleted} artifact(s) and {len(planned.datasets)} dataset version(s).",
        highlight=False,
    )
    if planned.tiered:
        out.print(f"Tiered {outcome.tiered} artifact(s) to cold.", highlight=False)
    if expired:
        out.print(f"Deleted {len(expired)} log part(s).", highlight=False)


def _expired_logs(workspace: Workspace) -> list[ExpiredPart]:
    """The prediction-log and usage-log parts the ``what = "logs"`` rules delete, less the ones
    a window of the alert rules in ``gc.monitor_rules`` still reads."""
    from mlship.costs.ledger import USAGE
    from mlship.store.clock import utcnow
    from mlship.store.log_retention import expired_parts
    from mlship.store.logstore import prediction_logs

    rules = [r for r in workspace.settings.gc.rules if r.what == "logs"]
    if not rules:
        return []
    needs = _monitoring_needs(workspace.settings)
    store, now = workspace.logs, utcnow()
    predictions = prediction_logs(store)
    found: dict[object, ExpiredPart] = {}
    for rule in rules:
        for part in expired_parts(
            store,
            [*predictions, USAGE],
            older_than=rule.age,
            now=now,
            needs=needs,
            sealing=workspace.sealing,
            windowed=frozenset(predictions),
        ):
            found.setdefault(part.part, part)
    return sorted(found.values(), key=lambda e: (e.part.log, e.part.name))


def _monitoring_needs(settings: Settings) -> MonitoringNeeds:
    """The widest duration and row windows of the alert rules in ``gc.monitor_rules``."""
    from mlship.monitor.rules import load_rules
    from mlship.store.log_retention import MonitoringNeeds

    if settings.gc.monitor_rules is None:
        return MonitoringNeeds()
    windows = [rule.window for rule in load_rules(settings.gc.monitor_rules).rules]
    return MonitoringNeeds(
        seconds=max((w.seconds for w in windows if w.seconds is not None), default=0.0),
        rows=max((w.rows for w in windows if w.rows is not None), default=0),
    )


def _show_logs(expired: list[ExpiredPart], planned: Plan) -> None:
    if not expired:
        return
    logs: dict[str, list[ExpiredPart]] = {}
    for part in expired:
        logs.setdefault(part.part.log, []).append(part)
    table = Table(title="Log parts to delete")
    for column in ("log", "parts", "size", "newest written"):
        table.add_column(column)
    for log, parts in logs.items():
        newest = max(p.written for p in parts)
        table.add_row(
            log, str(len(parts)), byte_size(sum(p.size for p in parts)), f"{newest:%Y-%m-%d %H:%M}"
        )
    out.print(table)
    size = sum(p.size for p in expired)
    saving = size / GB * planned.price_gb_month
    out.print(
        f"To delete: {len(expired)} log part(s), {byte_size(size)}, saving {saving:.4f} "
        f"{planned.currency} a month",
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
