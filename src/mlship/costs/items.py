"""Costs as one kind of value, whatever incurred them, and how they add up by who and what.

A training run, an interval of a model server's work, a batch scoring, a monitoring pass and
the bytes kept in storage all become :class:`CostItem` values: an interval, a price and what to
allocate it to (owner, team, model, version, stage, kind). Reports, budgets and alert rules
all read these, so a figure in one is the same figure in the others.

Allocation follows the registry: a model's owner and its ``team`` tag own everything done for
it, training runs included once their model is registered (before that, the run's own owner and
``team`` tag). The stage is the one the work recorded, else the version's stage now.

An item's cost is spread evenly over its interval, so a window that cuts an item counts the
part inside it (:meth:`CostItem.within`). Storage is an item over the time the bytes were kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from mlship.costs.ledger import UsageRecord
from mlship.prices import Prices, Usage
from mlship.store.entities import RegisteredModel, Run

TEAM_TAG = "team"
"""The tag of a model (or of a run not registered yet) that names the team it is billed to."""

GROUPINGS = ("team", "owner", "model", "stage", "kind")
"""What ``--by`` can allocate by."""

UNALLOCATED = "(none)"
"""The group of items that name no team, owner, model or stage."""


@dataclass(frozen=True, kw_only=True)
class CostItem:
    """What one piece of work or one stored thing cost, over the interval it was incurred."""

    kind: str
    """``training``, ``serving``, ``batch``, ``stream``, ``monitoring`` or ``storage``."""
    started_at: datetime
    ended_at: datetime
    cost: float
    source: str
    """What incurred it: a run id, a deployment, a dataset hash, a log's name."""
    model: str | None = None
    version: int | None = None
    stage: str | None = None
    owner: str | None = None
    team: str | None = None
    cpu_seconds: float = 0.0
    memory_gb_hours: float = 0.0
    requests: int = 0
    predictions: int = 0
    stored_bytes: int = 0
    storage_class: str | None = None

    def group(self, by: str) -> str:
        """The name of this item's group when allocating ``by`` one of :data:`GROUPINGS`."""
        if by not in GROUPINGS:
            raise ValueError(f"cannot allocate by {by!r}: expected one of {', '.join(GROUPINGS)}")
        value = self.kind if by == "kind" else getattr(self, by)
        return str(value) if value is not None else UNALLOCATED

    def within(self, start: datetime, end: datetime) -> CostItem | None:
        """The part of this item inside ``[start, end)``, its cost and usage in proportion to
        the time inside; None when nothing is. An instant item is inside when it ended there."""
        lo, hi = max(self.started_at, start), min(self.ended_at, end)
        span = (self.ended_at - self.started_at).total_seconds()
        if span <= 0:
            return self if start <= self.ended_at < end else None
        if hi <= lo:
            return None
        share = (hi - lo).total_seconds() / span
        if share >= 1:
            return self
        return replace(
            self,
            started_at=lo,
            ended_at=hi,
            cost=self.cost * share,
            cpu_seconds=self.cpu_seconds * share,
            memory_gb_hours=self.memory_gb_hours * share,
            requests=round(self.requests * share),
            predictions=round(self.predictions * share),
        )


@dataclass(frozen=True)
class Owners:
    """Who a model's costs go to, read from the registry once per report."""

    owner: dict[str, str] = field(default_factory=dict)
    team: dict[str, str] = field(default_factory=dict)
    stage: dict[tuple[str, int], str] = field(default_factory=dict)
    registered: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Run id -> the (model, version) registered from it."""

    @classmethod
    def of(cls, models: Iterable[RegisteredModel]) -> Owners:
        owners = cls()
        for model in models:
            owners.owner[model.name] = model.owner
            team = model.tags.get(TEAM_TAG)
            if team is not None:
                owners.team[model.name] = str(team)
            for version in model.versions:
                owners.stage[(model.name, version.version)] = version.stage
                owners.registered.setdefault(version.run_id, (model.name, version.version))
        return owners


@dataclass(frozen=True, kw_only=True)
class Payer:
    """Who a run's costs go to: its registered model's owner and team, else its own."""

    model: str | None
    version: int | None
    stage: str | None
    owner: str | None
    team: str | None

    @classmethod
    def of_run(cls, run: Run, owners: Owners) -> Payer:
        model, version = owners.registered.get(run.id, (None, None))
        team = owners.team.get(model) if model else None
        if team is None and run.tags.get(TEAM_TAG) is not None:
            team = str(run.tags[TEAM_TAG])
        return cls(
            model=model,
            version=version,
            stage=owners.stage.get((model, version)) if model and version else None,
            owner=owners.owner.get(model, run.owner) if model else run.owner,
            team=team,
        )


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def training_items(runs: Iterable[Run], prices: Prices, owners: Owners) -> list[CostItem]:
    """One item per measured run (running or cut-short runs have no usage yet), priced now."""
    items = []
    for run in runs:
        if run.cpu_seconds is None:
            continue
        usage = Usage(
            wall_seconds=run.wall_seconds or 0.0,
            cpu_seconds=run.cpu_seconds,
            peak_memory_bytes=run.peak_memory_bytes or 0,
        )
        started = _utc(run.started_at)
        ended = (
            _utc(run.finished_at)
            if run.finished_at
            else started + timedelta(seconds=usage.wall_seconds)
        )
        payer = Payer.of_run(run, owners)
        items.append(
            CostItem(
                kind="training",
                started_at=started,
                ended_at=max(ended, started),
                cost=prices.cost(usage),
                source=run.id,
                model=payer.model,
                version=payer.version,
                stage=payer.stage,
                owner=payer.owner,
                team=payer.team,
                cpu_seconds=usage.cpu_seconds,
                memory_gb_hours=usage.peak_memory_bytes / 2**30 * usage.wall_seconds / 3600,
            )
        )
    return items


def usage_items(records: Iterable[UsageRecord], prices: Prices, owners: Owners) -> list[CostItem]:
    """One item per ledger record, priced now and allocated by the registry."""
    items = []
    for record in records:
        model, version = record.model, record.version
        stage = record.stage
        if stage is None and model is not None and version is not None:
            stage = owners.stage.get((model, version))
        items.append(
            CostItem(
                kind=record.kind,
                started_at=_utc(record.started_at),
                ended_at=_utc(record.ended_at),
                cost=record.cost(prices),
                source=record.deployment or record.kind,
                model=model,
                version=version,
                stage=stage,
                owner=owners.owner.get(model) if model else None,
                team=owners.team.get(model) if model else None,
                cpu_seconds=record.cpu_seconds,
                memory_gb_hours=record.memory_gb_hours,
                requests=record.requests,
                predictions=record.predictions,
            )
        )
    return items


@dataclass(frozen=True, kw_only=True)
class Allocation:
    """The items of one group, added up."""

    group: str
    cost: float
    items: int
    cpu_seconds: float
    memory_gb_hours: float
    predictions: int
    stored_bytes: int

    @property
    def per_thousand_predictions(self) -> float | None:
        """Cost per 1,000 predictions of this group's work; None when it made none."""
        return self.cost / self.predictions * 1000 if self.predictions else None


def allocate(items: Iterable[CostItem], by: str) -> list[Allocation]:
    """``items`` added up per group of ``by``, the dearest group first."""
    groups: dict[str, list[CostItem]] = defaultdict(list)
    for item in items:
        groups[item.group(by)].append(item)
    allocations = [
        Allocation(
            group=name,
            cost=sum(i.cost for i in members),
            items=len(members),
            cpu_seconds=sum(i.cpu_seconds for i in members),
            memory_gb_hours=sum(i.memory_gb_hours for i in members),
            predictions=sum(i.predictions for i in members),
            stored_bytes=sum(i.stored_bytes for i in members),
        )
        for name, members in groups.items()
    ]
    return sorted(allocations, key=lambda a: (-a.cost, a.group))


def window(items: Iterable[CostItem], start: datetime, end: datetime) -> list[CostItem]:
    """The parts of ``items`` inside ``[start, end)``."""
    inside = (item.within(start, end) for item in items)
    return [item for item in inside if item is not None]


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_end(now: datetime) -> datetime:
    start = month_start(now)
    return (start + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True, kw_only=True)
class Forecast:
    """This calendar month's spend so far and at the current rate by its end (UTC)."""

    month_to_date: float
    rate_per_day: float
    """Spend per day over the rate window (the last ``rate_days``, or the month so far)."""
    forecast: float
    rate_since: datetime


RATE_DAYS = 7.0
"""Days of recent spending the month's forecast extrapolates."""


def forecast_month(
    items: Sequence[CostItem], now: datetime, rate_days: float = RATE_DAYS
) -> Forecast:
    """Month to date plus the rest of the month at the rate of the last ``rate_days`` days.

    The rate window is the last ``rate_days`` days, or since the first item when that is later,
    so a workspace a day old is not averaged over a week it did not exist.
    """
    now = _utc(now)
    start = month_start(now)
    so_far = sum(i.cost for i in window(items, start, now))
    first = min((i.started_at for i in items), default=now)
    rate_since = max(now - timedelta(days=rate_days), first)
    seconds = (now - rate_since).total_seconds()
    recent = sum(i.cost for i in window(items, rate_since, now)) if seconds > 0 else 0.0
    rate = recent / seconds * 86400 if seconds > 0 else 0.0
    remaining_days = (month_end(now) - now).total_seconds() / 86400
    return Forecast(
        month_to_date=so_far,
        rate_per_day=rate,
        forecast=so_far + rate * remaining_days,
        rate_since=rate_since,
    )
