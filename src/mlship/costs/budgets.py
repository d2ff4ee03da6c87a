"""Monthly budgets against what was spent, and the cost metrics alert rules watch.

Both read one list of :class:`~mlship.costs.items.CostItem` (:func:`spending`): training runs
and the usage ledger today; any other kind of cost (stored bytes, for one) counts as soon as its
items are added to that list, since everything here adds up items whatever their kind.

A budget's status is judged on the month's *forecast*, not on what was spent so far: a budget
that will be overspent at the current rate is worth hearing about while there is still a month
left to act. The forecast is never below the month to date, so a budget already overspent is
``over`` too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from mlship.budget_settings import Budget
from mlship.costs.items import (
    RATE_DAYS,
    CostItem,
    forecast_month,
    month_start,
    window,
)
from mlship.store.clock import as_utc

BudgetState = Literal["ok", "warning", "over"]

COST_METRICS = (
    "cost.forecast",
    "cost.month_to_date",
    "cost.per_1000_predictions",
    "cost.budget_share",
)
"""The cost metrics an alert rule can watch."""


def horizon(now: datetime, longest_window: float = 0.0) -> datetime:
    """The oldest moment budgets and cost metrics at ``now`` look at: the month's start, the
    forecast's rate window or the longest rule window, whichever is earliest."""
    now = as_utc(now)
    return min(
        month_start(now),
        now - timedelta(days=RATE_DAYS),
        now - timedelta(seconds=longest_window),
    )


def of_subject(
    items: Iterable[CostItem], *, model: str | None = None, team: str | None = None
) -> list[CostItem]:
    """The items billed to ``model`` or to ``team`` (exactly one is given)."""
    if (model is None) == (team is None):
        raise ValueError("expected a model or a team, exactly one")
    if model is not None:
        return [item for item in items if item.model == model]
    return [item for item in items if item.team == team]


def items_of(budget: Budget, items: Iterable[CostItem]) -> list[CostItem]:
    return of_subject(items, model=budget.model, team=budget.team)


@dataclass(frozen=True)
class BudgetStatus:
    """One budget this month: spent so far, forecast at the current rate, and its state."""

    budget: Budget
    month_to_date: float
    rate_per_day: float
    forecast: float

    @property
    def share(self) -> float:
        """The forecast as a share of the budget (1.0 spends it exactly)."""
        return self.forecast / self.budget.monthly

    @property
    def state(self) -> BudgetState:
        if self.share >= 1:
            return "over"
        return "warning" if self.share >= self.budget.warn_at else "ok"


def status_of(budget: Budget, items: Sequence[CostItem], now: datetime) -> BudgetStatus:
    forecast = forecast_month(items_of(budget, items), as_utc(now), RATE_DAYS)
    return BudgetStatus(
        budget=budget,
        month_to_date=forecast.month_to_date,
        rate_per_day=forecast.rate_per_day,
        forecast=forecast.forecast,
    )


def budget_statuses(
    budgets: Iterable[Budget], items: Sequence[CostItem], now: datetime
) -> list[BudgetStatus]:
    """Every budget's status at ``now``, in the order they are declared."""
    return [status_of(budget, items, now) for budget in budgets]


def budget_of(
    budgets: Iterable[Budget], *, model: str | None = None, team: str | None = None
) -> Budget | None:
    """The budget of ``model`` or of ``team``, if one is declared."""
    for budget in budgets:
        if (model is not None and budget.model == model) or (
            team is not None and budget.team == team
        ):
            return budget
    return None


def cost_metrics(
    items: Sequence[CostItem],
    budgets: Iterable[Budget],
    now: datetime,
    *,
    model: str | None = None,
    team: str | None = None,
    seconds: float | None = None,
) -> dict[str, float | None]:
    """The :data:`COST_METRICS` of a model or a team at ``now``.

    ``cost.per_1000_predictions`` is the serving cost per 1,000 predictions over the last
    ``seconds`` (None without predictions, or without a duration); ``cost.budget_share`` the
    forecast over the subject's budget (None when it has none).
    """
    now = as_utc(now)
    mine = of_subject(items, model=model, team=team)
    forecast = forecast_month(mine, now, RATE_DAYS)
    per_thousand: float | None = None
    if seconds is not None:
        served = [
            item
            for item in window(mine, now - timedelta(seconds=seconds), now)
            if item.kind == "serving"
        ]
        predictions = sum(item.predictions for item in served)
        if predictions:
            per_thousand = sum(item.cost for item in served) / predictions * 1000
    budget = budget_of(budgets, model=model, team=team)
    return {
        "cost.forecast": forecast.forecast,
        "cost.month_to_date": forecast.month_to_date,
        "cost.per_1000_predictions": per_thousand,
        "cost.budget_share": None if budget is None else forecast.forecast / budget.monthly,
    }
