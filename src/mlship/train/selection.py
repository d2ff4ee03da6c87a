"""The leaderboard and the selection rule: which candidate a run keeps, and why that one.

Selection reads cross-validation scores only (the test set is scored after it, once), so it is
kept apart from the orchestration in :mod:`mlship.train.run`: one small place to read the rule a
run applied, ``best`` or ``cheapest_within`` a tolerance of the best, and to test it alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlship.json_values import plain
from mlship.prices import Prices
from mlship.train.catalog import qualified_name
from mlship.train.cost import Usage
from mlship.train.cross_validation import Scored
from mlship.train.folds import Fitted
from mlship.train.pareto import CostKind, Costs, serving_cost
from mlship.train.weighting import final_estimator


@dataclass(frozen=True)
class LeaderboardRow:
    """One candidate's line: its CV score (mean and spread over the folds), what it cost to
    score and to fit, and its search's summary when it was tuned."""

    name: str
    estimator: str
    params: dict[str, Any]
    cv_mean: float
    cv_std: float
    train_mean: float
    fit_seconds: float
    cv_metrics: dict[str, float]
    usage: Usage = field(default_factory=Usage.zero)
    cost: float = 0.0
    fit_cost: float = 0.0
    predict_ms: float | None = None
    trials: int = 0
    tuning: dict[str, Any] | None = None
    model_bytes: int | None = None
    """The fitted model's size, pickled: what serving it holds in memory."""
    serve_cost: float | None = None
    """What 1,000 single-row predictions cost (:func:`mlship.train.pareto.serving_cost`)."""
    distilled_from: str | None = None
    """The teacher whose predictions this candidate learnt from, if it is a distilled student."""

    def costs(self) -> Costs:
        """Its score and its three costs, for the fronts and the selection rule."""
        return Costs(self.name, self.cv_mean, self.fit_cost, self.serve_cost, self.predict_ms)


def jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as JSON values: numpy scalars as Python numbers, anything else as its repr."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        elif isinstance(value, np.generic):
            out[key] = plain(value)
        else:
            out[key] = repr(value)
    return out


def leaderboard_row(
    scored: Scored,
    fitted: Fitted,
    metric: str,
    prices: Prices,
    spent: float,
) -> LeaderboardRow:
    """The line of a candidate cross-validated (or tuned) as ``scored`` and fitted as ``fitted``;
    ``spent`` is what scoring it cost, to which the fit's cost is added."""
    folds = scored.folds
    names = sorted({k for f in folds for k in f.validation})
    means = {k: float(np.mean([f.validation.get(k, np.nan) for f in folds])) for k in names}
    values = [f.validation.get(metric, np.nan) for f in folds]
    predict_ms = fitted.predict_p50_seconds * 1000
    return LeaderboardRow(
        name=scored.recipe.name,
        estimator=qualified_name(final_estimator(fitted.model)),
        params=jsonable({**scored.recipe.params, **scored.params}),
        cv_mean=float(np.mean(values)),
        cv_std=float(np.std(values)),
        train_mean=float(np.mean([f.train.get(metric, np.nan) for f in folds])),
        fit_seconds=float(np.sum([f.fit_seconds for f in folds])),
        cv_metrics=means,
        usage=scored.usage + fitted.usage,
        cost=spent + prices.cost(fitted.usage),
        fit_cost=prices.cost(fitted.usage),
        predict_ms=predict_ms,
        trials=scored.trials,
        tuning=scored.tuning,
        model_bytes=fitted.model_bytes,
        serve_cost=serving_cost(predict_ms, fitted.model_bytes, prices),
    )


def rank(rows: list[LeaderboardRow], bigger: bool) -> list[LeaderboardRow]:
    """Best CV score first (``bigger``: larger is better); a candidate without a score is last."""
    worst = -np.inf if bigger else np.inf

    def key(row: LeaderboardRow) -> float:
        value = row.cv_mean if not np.isnan(row.cv_mean) else worst
        return -value if bigger else value

    return sorted(rows, key=key)


@dataclass(frozen=True)
class Selected:
    """The selected candidate and the sentence that says why it, by which cost."""

    name: str
    cost: CostKind
    reason: str


UNITS: dict[CostKind, str] = {
    "training": "to fit",
    "serving": "per 1,000 predictions",
    "latency": "ms per prediction",
}


def choose(
    rows: list[LeaderboardRow],
    rule: str,
    tolerance: float,
    bigger: bool,
    cost: CostKind = "training",
    currency: str = "",
) -> Selected:
    """The best candidate, or (``cheapest_within``) the cheapest by ``cost`` among those whose
    CV score is within ``tolerance`` of the best; ties go to the better-ranked. A candidate
    whose ``cost`` was not measured is never the cheapest."""
    best = rows[0]
    if rule != "cheapest_within":
        return Selected(best.name, cost, f"best: {best.name} has the best CV score")
    close = [r for r in rows if abs(best.cv_mean - r.cv_mean) <= tolerance + 1e-12]

    def key(row: LeaderboardRow) -> tuple[float, int]:
        value = row.costs().of(cost)
        return (np.inf if value is None else value, rows.index(row))

    chosen = min(close, key=key)
    value = chosen.costs().of(cost)
    money = f" {currency}" if currency and cost != "latency" else ""
    shown = "not measured" if value is None else f"{value:.6g}{money} {UNITS[cost]}"
    if chosen is best:
        reason = (
            f"cheapest_within {tolerance:g} by {cost} cost: {best.name} has the best CV score "
            f"and no candidate within {tolerance:g} of it is cheaper ({shown})"
        )
    else:
        reason = (
            f"cheapest_within {tolerance:g} by {cost} cost: {chosen.name} scores "
            f"{chosen.cv_mean:.4g}, within {tolerance:g} of the best ({best.name}, "
            f"{best.cv_mean:.4g}), and is the cheapest of {len(close)} such candidates "
            f"({shown})"
        )
    return Selected(chosen.name, cost, reason)


def select(
    rows: list[LeaderboardRow],
    rule: str,
    tolerance: float,
    bigger: bool,
    cost: CostKind = "training",
) -> str:
    """The selected candidate's name (see :func:`choose`)."""
    return choose(rows, rule, tolerance, bigger, cost).name


__all__ = ["LeaderboardRow", "Selected", "choose", "jsonable", "leaderboard_row", "rank", "select"]
