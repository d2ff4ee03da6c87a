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
    scored: Scored, fitted: Fitted, metric: str, prices: Prices, spent: float
) -> LeaderboardRow:
    """The line of a candidate cross-validated (or tuned) as ``scored`` and fitted as ``fitted``;
    ``spent`` is what scoring it cost, to which the fit's cost is added."""
    folds = scored.folds
    names = sorted({k for f in folds for k in f.validation})
    means = {k: float(np.mean([f.validation.get(k, np.nan) for f in folds])) for k in names}
    values = [f.validation.get(metric, np.nan) for f in folds]
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
        predict_ms=fitted.predict_p50_seconds * 1000,
        trials=scored.trials,
        tuning=scored.tuning,
    )


def rank(rows: list[LeaderboardRow], bigger: bool) -> list[LeaderboardRow]:
    """Best CV score first (``bigger``: larger is better); a candidate without a score is last."""
    worst = -np.inf if bigger else np.inf

    def key(row: LeaderboardRow) -> float:
        value = row.cv_mean if not np.isnan(row.cv_mean) else worst
        return -value if bigger else value

    return sorted(rows, key=key)


def select(rows: list[LeaderboardRow], rule: str, tolerance: float, bigger: bool) -> str:
    """The selected candidate: the best, or the cheapest to fit within ``tolerance`` of it."""
    best = rows[0]
    if rule != "cheapest_within":
        return best.name
    close = [r for r in rows if abs(best.cv_mean - r.cv_mean) <= tolerance + 1e-12]
    return min(close, key=lambda r: (r.fit_cost, rows.index(r))).name


__all__ = ["LeaderboardRow", "jsonable", "leaderboard_row", "rank", "select"]
