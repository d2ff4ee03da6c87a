"""``mlship cost catalog|what-if|budgets``: the shipped cloud prices, recorded runs priced on
them, and the month's spending against the budgets."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mlship.cli.console import out
from mlship.cli.render import fmt, name_column, number_column
from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.config import Settings
    from mlship.price_catalog import PriceCatalog

app = typer.Typer(help="What work costs, and what it would cost elsewhere.", no_args_is_help=True)

RUNS_READ = 1000
"""The most runs ``what-if`` reads, newest first: the most a tracking server lists at once."""

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


_STATE_STYLES = {"ok": "green", "warning": "yellow", "over": "bold red"}


@app.command("budgets")
def budgets(
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Each budget this month: spent so far, forecast at the current rate, share, status."""
    from mlship.costs.budgets import RATE_DAYS, budget_statuses, horizon, spending
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
        items = spending(
            workspace.runs,
            workspace.catalogue.list_models(),
            workspace.logs,
            workspace.settings.prices,
            horizon(now),
            workspace.sealing,
        )
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
