"""``mlship cost catalog|what-if|report|budgets``: the shipped cloud prices, recorded runs
priced on them, every cost of a window allocated by team, owner, model, stage or kind, and the
month's spending against the budgets."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlship.cli.console import out
from mlship.cli.cost_items import RUNS_READ
from mlship.cli.render import fmt, name_column, number_column
from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.config import Settings
    from mlship.costs.items import Allocation
    from mlship.costs.report import CostReport
    from mlship.price_catalog import PriceCatalog
    from mlship.workspace import Workspace

app = typer.Typer(help="What work costs, and what it would cost elsewhere.", no_args_is_help=True)

Provider = Annotated[
    str | None,
    typer.Option("--provider", help="Only this provider's entries: aws, gcp or azure."),
]


def _catalog(settings: Settings) -> PriceCatalog:
    from mlship.price_catalog import shipped_catalog, with_overrides

    return with_overrides(shipped_catalog(), settings.catalog)


@app.command("catalog")
def catalog(provider: Provider = None) -> None:
    """The price catalog: instance types and storage classes, with the settings' changes."""
    from mlship.config import load_settings

    prices = _catalog(load_settings()).of_provider(provider)
    money = prices.currency
    machines = Table(title=f"Instance types ({money} per hour, as of {prices.as_of.isoformat()})")
    name_column(machines, "provider")
    name_column(machines, "type")
    name_column(machines, "family")
    for header in ("vCPU", "memory GiB", "on-demand", "spot", "reserved 1y"):
        number_column(machines, header)
    for instance in sorted(prices.instances, key=lambda i: (i.provider, i.on_demand_hour)):
        machines.add_row(
            instance.provider,
            instance.name,
            instance.family,
            str(instance.vcpus),
            fmt(instance.memory_gib, 0),
            fmt(instance.on_demand_hour, 4),
            fmt(instance.spot_hour, 4),
            fmt(instance.reserved_hour, 4),
        )
    out.print(machines)
    storage = Table(title=f"Storage classes ({money} per GB-month)")
    name_column(storage, "provider")
    name_column(storage, "class")
    name_column(storage, "name")
    number_column(storage, "GB-month")
    for kept in sorted(prices.storage, key=lambda s: (s.provider, -s.gb_month)):
        storage.add_row(kept.provider, kept.key, kept.name, fmt(kept.gb_month, 4))
    out.print(storage)
    out.print(f"Source: {prices.source}", soft_wrap=True)


@app.command("what-if")
def what_if(
    since: Annotated[
        str, typer.Option(help="Runs started within this long: 30m, 24h, 7d.")
    ] = "30d",
    instance: Annotated[
        list[str] | None,
        typer.Option(help="Instance type to price on (repeatable); every one by default."),
    ] = None,
    provider: Provider = None,
) -> None:
    """Price the recorded training runs on cloud machines: on demand, spot and reserved."""
    from mlship.monitor.window import parse_duration
    from mlship.price_catalog import what_if as price_runs
    from mlship.prices import Usage
    from mlship.store.clock import as_utc, utcnow
    from mlship.workspace import Workspace

    try:
        cutoff: datetime = utcnow() - timedelta(seconds=parse_duration(since))
    except ValueError as exc:
        raise MlshipError(f"--since {since!r}: {exc}") from exc
    workspace = Workspace.open()
    try:
        prices = _catalog(workspace.settings).of_provider(provider)
        runs = workspace.runs.list_runs(RUNS_READ)
    finally:
        workspace.close()
    chosen = [prices.instance(name) for name in instance] if instance else list(prices.instances)
    usages = [
        Usage(
            wall_seconds=run.wall_seconds or 0.0,
            cpu_seconds=run.cpu_seconds,
            peak_memory_bytes=run.peak_memory_bytes or 0,
        )
        for run in runs
        if as_utc(run.started_at) >= cutoff and run.cpu_seconds is not None
    ]
    unmeasured = sum(
        1 for run in runs if as_utc(run.started_at) >= cutoff and run.cpu_seconds is None
    )
    if not usages:
        out.print(f"No measured training run started in the last {since}: nothing to price.")
        return
    cpu_hours = sum(u.cpu_seconds for u in usages) / 3600
    results = sorted((price_runs(usages, i) for i in chosen), key=lambda r: r.on_demand)
    table = Table(
        title=f"{len(usages)} runs of the last {since} ({cpu_hours:.4f} CPU-hours), "
        f"priced in {prices.currency} as of {prices.as_of.isoformat()}"
    )
    name_column(table, "provider")
    name_column(table, "type")
    for header in ("instance hours", "on-demand", "spot", "reserved 1y", "spot saves"):
        number_column(table, header)
    name_column(table, "fits")
    for result in results:
        table.add_row(
            result.instance.provider,
            result.instance.name,
            fmt(result.instance_hours, 4),
            fmt(result.on_demand, 4),
            fmt(result.spot, 4),
            fmt(result.reserved, 4),
            f"{result.spot_saving:.0%}",
            "yes" if result.too_big == 0 else f"{result.too_big} runs too big",
        )
    out.print(table)
    if len(runs) == RUNS_READ and as_utc(runs[-1].started_at) >= cutoff:
        out.print(f"Only the newest {RUNS_READ} runs were read: use a shorter --since")
    if unmeasured:
        out.print(f"{unmeasured} runs without a measured usage (running or cut short) left out")


def _cost_report(workspace: Workspace, by: str, start: datetime, now: datetime) -> CostReport:
    from mlship.cli.cost_items import workspace_costs
    from mlship.costs.budgets import horizon
    from mlship.costs.report import build_report

    # Read back to the forecast's rate window too, so the month's forecast sees its days.
    items, notes = workspace_costs(workspace, min(start, horizon(now)), now, measured_since=start)
    return build_report(
        items,
        by=by,
        start=start,
        end=now,
        currency=workspace.settings.prices.currency,
        notes=notes,
    )


def _print_report(report: CostReport) -> None:
    from mlship.cli.render import byte_size
    from mlship.costs.report_page import amount, forecast_text, money
    from mlship.html.page import fmt_share

    table = Table(
        title=f"Costs of the {report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M} UTC "
        f"window by {report.by} ({report.currency})"
    )
    name_column(table, report.by)
    for header in (
        "cost",
        "share",
        "CPU-hours",
        "memory GB-hours",
        "predictions",
        "per 1,000 predictions",
        "stored",
    ):
        number_column(table, header)

    def row(group: Allocation) -> list[str]:
        share = report.share(group)
        per_thousand = group.per_thousand_predictions
        return [
            escape(group.group),
            amount(group.cost),
            fmt_share(share),
            fmt(group.cpu_seconds / 3600),
            fmt(group.memory_gb_hours),
            f"{group.predictions:,}",
            "-" if per_thousand is None else amount(per_thousand),
            byte_size(group.stored_bytes),
        ]

    for group in report.groups:
        table.add_row(*row(group))
    table.add_section()
    table.add_row(*row(report.total), style="bold")
    out.print(table)
    out.print(
        f"Total {money(report.total.cost, report.currency)} over {len(report.groups)} "
        f"{report.by} groups ({report.total.items} cost items)"
    )
    out.print(forecast_text(report), soft_wrap=True)
    for note in report.notes:
        out.print(f"Note: {escape(note)}", soft_wrap=True)


@app.command("report")
def report(
    by: Annotated[
        str, typer.Option("--by", help="Allocate by team, owner, model, stage or kind.")
    ] = "team",
    since: Annotated[
        str, typer.Option(help="The window: costs incurred within this long: 24h, 7d, 30d.")
    ] = "30d",
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write the report with its charts as one HTML page."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Every cost of a window (training, serving, batch, stream, monitoring, storage), allocated
    by team, owner, model, stage or kind, with the month's forecast."""
    from mlship.costs.items import GROUPINGS
    from mlship.monitor.window import parse_duration
    from mlship.store.clock import utcnow
    from mlship.workspace import Workspace

    if by not in GROUPINGS:
        raise typer.BadParameter(
            f"{by!r}; expected one of {', '.join(GROUPINGS)}", param_hint="--by"
        )
    hint = "--since"
    try:
        seconds = parse_duration(since)
    except ValueError as exc:
        raise typer.BadParameter(f"{since!r}: {exc}", param_hint=hint) from exc
    if seconds <= 0:
        raise typer.BadParameter(
            f"{since!r}: the window must be longer than 0", param_hint="--since"
        )
    now = utcnow()
    try:
        start = now - timedelta(seconds=seconds)
    except OverflowError:
        raise typer.BadParameter(
            f"{since!r}: longer than the calendar goes back", param_hint="--since"
        ) from None
    workspace = Workspace.open()
    try:
        made = _cost_report(workspace, by, start, now)
    finally:
        workspace.close()
    if html is not None:
        from mlship.costs.report_page import write_page

        try:
            write_page(made, html)
        except OSError as exc:
            raise MlshipError(f"cannot write the report to {html}: {exc.strerror or exc}") from exc
    if as_json:
        out.print_json(json.dumps(made.as_json(), allow_nan=False))
    else:
        _print_report(made)
    if html is not None and not as_json:
        out.print(f"Report written to {html}", soft_wrap=True)


_STATE_STYLES = {"ok": "green", "warning": "yellow", "over": "bold red"}


@app.command("budgets")
def budgets(
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Each budget this month: spent so far, forecast at the current rate, share, status."""
    from mlship.cli.cost_items import workspace_costs
    from mlship.costs.budgets import budget_statuses, horizon
    from mlship.costs.items import RATE_DAYS
    from mlship.store.clock import utcnow
    from mlship.workspace import Workspace

    now = utcnow()
    workspace = Workspace.open()
    try:
        declared = workspace.settings.budgets
        currency = workspace.settings.prices.currency
        if not declared:
            out.print(
                'No budgets: declare them in mlship.toml as [[budgets]] with team = "..." '
                'or model = "..." and monthly = AMOUNT.',
                markup=False,
            )
            return
        items, _ = workspace_costs(workspace, horizon(now), now)
    finally:
        workspace.close()
    statuses = budget_statuses(declared, items, now)
    if as_json:
        rows = [
            {
                "team": s.budget.team,
                "model": s.budget.model,
                "monthly": s.budget.monthly,
                "warn_at": s.budget.warn_at,
                "month_to_date": s.month_to_date,
                "rate_per_day": s.rate_per_day,
                "forecast": s.forecast,
                "share": s.share,
                "status": s.state,
                "currency": currency,
            }
            for s in statuses
        ]
        out.print_json(json.dumps({"month": f"{now:%Y-%m}", "budgets": rows}))
        return
    table = Table(
        title=f"Budgets of {now:%B %Y} ({currency}; forecast at the rate of the last "
        f"{RATE_DAYS:g} days)"
    )
    name_column(table, "budget")
    for header in ("monthly", "spent", "forecast", "per day", "share"):
        number_column(table, header)
    name_column(table, "status")
    for status in statuses:
        table.add_row(
            status.budget.described,
            fmt(status.budget.monthly, 2),
            fmt(status.month_to_date, 2),
            fmt(status.forecast, 2),
            fmt(status.rate_per_day, 2),
            f"{status.share:.0%}",
            f"[{_STATE_STYLES[status.state]}]{status.state}[/]",
        )
    out.print(table)
    over = [s.budget.described for s in statuses if s.state == "over"]
    if over:
        out.print(f"Forecast over budget: {', '.join(over)}")
