"""Cost against quality: which candidates no other beats on both score and a cost.

A candidate is on the Pareto front of a (score, cost) pair when no other candidate is at least
as good on both and strictly better on one. Three costs are compared, each a different reason to
prefer a cheaper model:

- ``training``: what cross-validating and fitting the candidate cost (the leaderboard's cost);
- ``serving``: what 1,000 predictions cost when served one row at a time;
- ``latency``: the median time of one single-row prediction, the figure a caller waits for.

The serving cost is derived from the measured one-row latency rather than measured again: a
single-row predict runs on one core, so its CPU time is its wall time, and 1,000 predictions hold
one CPU for 1,000 times the median latency, priced at ``prices.cpu_hour``; the model's pickled
bytes are held in memory for that time, priced at ``prices.gb_hour``. Batch scoring amortises the
per-call overhead and costs less per row; serving is what this figure is for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mlship.prices import GB, Prices

CostKind = Literal["training", "serving", "latency"]
COST_KINDS: tuple[CostKind, ...] = ("training", "serving", "latency")

PREDICTIONS = 1000
"""The serving cost is quoted per this many predictions."""


@dataclass(frozen=True)
class Point:
    """A candidate as the front sees it: its CV score and one of its costs (None: not known)."""

    name: str
    score: float
    cost: float | None


def dominates(a: Point, b: Point, bigger: bool) -> bool:
    """``a`` is at least as good as ``b`` on score and cost and strictly better on one."""
    if not _known(a) or not _known(b):
        return _known(a) and not _known(b)
    assert a.cost is not None and b.cost is not None
    score_ok = a.score >= b.score if bigger else a.score <= b.score
    score_better = a.score > b.score if bigger else a.score < b.score
    return score_ok and a.cost <= b.cost and (score_better or a.cost < b.cost)


def front(points: Sequence[Point], bigger: bool) -> list[str]:
    """The names of the points no other point dominates, in the order given.

    A point without a score or a cost is never on the front (and any point with both dominates
    it). Two points equal on both figures are both on the front: neither is better.
    """
    return [
        p.name
        for p in points
        if _known(p) and not any(dominates(q, p, bigger) for q in points if q is not p)
    ]


def _known(point: Point) -> bool:
    return point.cost is not None and not math.isnan(point.cost) and not math.isnan(point.score)


def serving_cost(predict_ms: float | None, model_bytes: int | None, prices: Prices) -> float | None:
    """What :data:`PREDICTIONS` single-row predictions cost: one CPU busy for the median latency
    of each, plus the model's bytes held in memory for that time (None: latency not measured)."""
    if predict_ms is None or math.isnan(predict_ms):
        return None
    seconds = predict_ms / 1000 * PREDICTIONS
    cpu = seconds / 3600 * prices.cpu_hour
    memory = (model_bytes or 0) / GB * seconds / 3600 * prices.gb_hour
    return cpu + memory


@dataclass(frozen=True)
class Costs:
    """A candidate's three costs, as the fronts and the selection rule compare them."""

    name: str
    score: float
    training: float | None
    serving: float | None
    latency: float | None

    def of(self, kind: CostKind) -> float | None:
        return {"training": self.training, "serving": self.serving, "latency": self.latency}[kind]


def fronts(candidates: Sequence[Costs], bigger: bool) -> dict[str, list[CostKind]]:
    """For each candidate, the fronts it is on (an empty list: dominated on every pair)."""
    on: dict[str, list[CostKind]] = {c.name: [] for c in candidates}
    for kind in COST_KINDS:
        for name in front([Point(c.name, c.score, c.of(kind)) for c in candidates], bigger):
            on[name].append(kind)
    return on


__all__ = [
    "COST_KINDS",
    "PREDICTIONS",
    "CostKind",
    "Costs",
    "Point",
    "dominates",
    "front",
    "fronts",
    "serving_cost",
]
