"""``mlship cost report``: every cost of a window, added up by team, owner, model, stage or kind,
with the month's forecast, the cost per day of each kind and the storage per class.

The figures are the items of :mod:`mlship.costs.items` and :mod:`mlship.costs.storage`, cut to
the window, so the groups add up to the total exactly, and a budget or an alert rule reading the
same items sees the same figures. Items are gathered from the start of the calendar month when
that is earlier than the window, so the forecast counts the whole month so far.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mlship.costs.items import (
    Allocation,
    CostItem,
    Forecast,
    Owners,
    allocate,
    forecast_month,
    month_end,
    month_start,
    training_items,
    usage_items,
    window,
)
from mlship.costs.ledger import UsageRecord
from mlship.costs.storage import (
    STANDARD,
    ClassOf,
    SizeOf,
    artifacts_kept,
    deployment_models,
    logs_kept,
    storage_items,
)
from mlship.prices import GB, Prices
from mlship.store.entities import Dataset, RegisteredModel, Run
from mlship.store.logstore import LogStore

KIND_ORDER = ("training", "serving", "batch", "stream", "monitoring", "storage")
"""The kinds of cost, in the order the charts and tables list them."""


@dataclass(frozen=True, kw_only=True)
class Daily:
    """What one kind of work cost on one (UTC) day of the window."""

    day: date
    kind: str
    cost: float


@dataclass(frozen=True, kw_only=True)
class ClassUse:
    """The bytes kept in one storage class and what keeping them cost over the window."""

    storage_class: str
    stored_bytes: int
    cost: float


@dataclass(frozen=True, kw_only=True)
class CostReport:
    """A window's costs allocated by one grouping, with the totals and the month's forecast."""

    by: str
    start: datetime
    end: datetime
    currency: str
    groups: tuple[Allocation, ...]
    total: Allocation
    forecast: Forecast
    daily: tuple[Daily, ...]
    storage: tuple[ClassUse, ...]
    notes: tuple[str, ...] = ()

    def share(self, group: Allocation) -> float | None:
        """The group's part of the total; None when nothing cost anything."""
        return group.cost / self.total.cost if self.total.cost > 0 else None

    @property
    def kinds(self) -> list[str]:
        present = {d.kind for d in self.daily}
        return [k for k in KIND_ORDER if k in present]

    def as_json(self) -> dict[str, Any]:
        """The report as plain JSON values (``--json``), every figure unrounded."""

        def allocation(a: Allocation) -> dict[str, Any]:
            return {
                "group": a.group,
                "cost": a.cost,
                "share": self.share(a),
                "items": a.items,
                "cpu_hours": a.cpu_seconds / 3600,
                "memory_gb_hours": a.memory_gb_hours,
                "predictions": a.predictions,
                "cost_per_1000_predictions": a.per_thousand_predictions,
                "stored_gb": a.stored_bytes / GB,
            }

        return {
            "by": self.by,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "currency": self.currency,
            "groups": [allocation(a) for a in self.groups],
            "total": allocation(self.total),
            "forecast": {
                "month_to_date": self.forecast.month_to_date,
                "rate_per_day": self.forecast.rate_per_day,
                "rate_since": self.forecast.rate_since.isoformat(),
                "month_end": month_end(self.end).isoformat(),
                "forecast": self.forecast.forecast,
            },
            "daily": [
                {"day": d.day.isoformat(), "kind": d.kind, "cost": d.cost} for d in self.daily
            ],
            "storage": [
                {
                    "storage_class": s.storage_class,
                    "stored_gb": s.stored_bytes / GB,
                    "cost": s.cost,
                }
                for s in self.storage
            ],
            "notes": list(self.notes),
        }


def gathered_from(start: datetime, now: datetime) -> datetime:
    """Where items must be read from: the window's start, or the month's when that is earlier."""
    return min(start, month_start(now))


def gather(
    *,
    runs: Sequence[Run],
    models: Sequence[RegisteredModel],
    datasets: Sequence[Dataset],
    records: Iterable[UsageRecord],
    logs: LogStore,
    size_of: SizeOf,
    prices: Prices,
    price_of: Callable[[str], float],
    since: datetime,
    now: datetime,
    storage_class: str = STANDARD,
    class_of: ClassOf | None = None,
) -> tuple[list[CostItem], list[str]]:
    """Every cost item from ``since`` to ``now``: training runs, the usage ledger and storage;
    and notes on what could not be measured."""
    owners = Owners.of(models)
    records = list(records)
    items = training_items(runs, prices, owners) + usage_items(records, prices, owners)
    kept = artifacts_kept(datasets, models, runs, owners, size_of, storage_class, class_of)
    logged, unmeasured = logs_kept(logs, since, owners, deployment_models(records), storage_class)
    items += storage_items(kept + logged, now, price_of)
    notes = []
    if unmeasured:
        notes.append(
            f"{logs.where} does not give the sizes of log parts: the storage of "
            f"{', '.join(unmeasured)} is left out"
        )
    return window(items, since, now), notes


def _total(items: Sequence[CostItem]) -> Allocation:
    return Allocation(
        group="total",
        cost=sum(i.cost for i in items),
        items=len(items),
        cpu_seconds=sum(i.cpu_seconds for i in items),
        memory_gb_hours=sum(i.memory_gb_hours for i in items),
        predictions=sum(i.predictions for i in items),
        stored_bytes=sum(i.stored_bytes for i in items),
    )


def _days(start: datetime, end: datetime) -> list[datetime]:
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    found = []
    while day < end:
        found.append(day)
        day += timedelta(days=1)
    return found


def build_report(
    items: Sequence[CostItem],
    *,
    by: str,
    start: datetime,
    end: datetime,
    currency: str,
    notes: Sequence[str] = (),
) -> CostReport:
    """The report of ``[start, end)`` from ``items`` (which may reach back further, for the
    month's forecast), allocated ``by`` one of :data:`~mlship.costs.items.GROUPINGS`."""
    inside = window(items, start, end)
    groups = allocate(inside, by)  # checks ``by``
    daily = []
    for day in _days(start, end):
        that_day = window(inside, day, day + timedelta(days=1))
        for kind in KIND_ORDER:
            cost = sum(i.cost for i in that_day if i.kind == kind)
            if any(i.kind == kind for i in that_day):
                daily.append(Daily(day=day.date(), kind=kind, cost=cost))
    classes: dict[str, tuple[int, float]] = {}
    for item in inside:
        if item.kind == "storage":
            name = item.storage_class or STANDARD
            size, cost = classes.get(name, (0, 0.0))
            classes[name] = (size + item.stored_bytes, cost + item.cost)
    return CostReport(
        by=by,
        start=start,
        end=end,
        currency=currency,
        groups=tuple(groups),
        total=_total(inside),
        forecast=forecast_month(items, end),
        daily=tuple(daily),
        storage=tuple(
            ClassUse(storage_class=name, stored_bytes=size, cost=cost)
            for name, (size, cost) in sorted(classes.items(), key=lambda kv: -kv[1][1])
        ),
        notes=tuple(notes),
    )
