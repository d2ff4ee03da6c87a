"""Nested cross-validation: an honest estimate of what tuning-then-fitting will score.

The CV score of a tuned candidate is optimistic: the same folds chose its parameters and scored
them. Nested CV repeats the whole procedure inside each outer fold — tune on the outer training
rows' own inner folds, fit the winner on those rows, score it on the outer fold it never saw — and
reports the outer scores. Candidates without a search are simply fitted and scored per outer fold.

Every fold (the run's own, each outer fold's inner ones, and the outer ones) lives in one list that
the executor ships to its workers once; jobs name folds by their position in it. The estimate is
reported beside the leaderboard; it does not change which candidate is selected, nor its
parameters (those come from the search over all the training rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlship.errors import DataError
from mlship.train.cost import Usage
from mlship.train.executors import Executor
from mlship.train.folds import FoldJob, FoldResult, run_fold
from mlship.train.splits import Fold, NestedFold


@dataclass(frozen=True)
class OuterFold:
    """One outer fold: its number, its position in the fold list, and its inner folds'."""

    number: int
    fold: int
    inner: tuple[int, ...]


def lay_out(
    folds: Sequence[Fold], nested: Sequence[NestedFold]
) -> tuple[list[Fold], list[OuterFold]]:
    """The run's folds followed by every outer fold's inner folds and the outer fold itself.

    The run's folds keep positions ``0 .. len(folds) - 1``, so everything that does not know about
    nesting reads the same list unchanged.
    """
    every = list(folds)
    outer: list[OuterFold] = []
    for number, part in enumerate(nested):
        start = len(every)
        every.extend(part.inner)
        every.append((part.train, part.valid))
        outer.append(OuterFold(number, len(every) - 1, tuple(range(start, len(every) - 1))))
    return every, outer


@dataclass(frozen=True)
class NestedScore:
    """A candidate's outer-fold scores, with the parameters each outer fold's tuning chose."""

    candidate: str
    metric: str
    scores: list[float]
    params: list[dict[str, Any]]
    usage: Usage

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        return float(np.std(self.scores))

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "mean": self.mean,
            "std": self.std,
            "scores": self.scores,
            "params": self.params,
            "tuned": any(self.params),
            "cpu_seconds": self.usage.cpu_seconds,
        }


Tune = Callable[[str, OuterFold], tuple[dict[str, Any], Usage]]
"""Tune a candidate on one outer fold's inner folds: its best parameters and what tuning used."""


def nested_scores(
    candidates: Sequence[str],
    tuned: set[str],
    outer: Sequence[OuterFold],
    tune: Tune,
    executor: Executor,
    shared: dict[str, Any],
    metric: str,
) -> dict[str, NestedScore]:
    """Tune (candidates in ``tuned``) inside each outer fold, then fit and score every outer fold.

    The outer fits of all candidates go to the executor together, so they run in parallel.
    """
    chosen: dict[tuple[str, int], dict[str, Any]] = {}
    spent: dict[str, Usage] = {name: Usage.zero() for name in candidates}
    for name in candidates:
        for part in outer:
            params, usage = tune(name, part) if name in tuned else ({}, Usage.zero())
            chosen[name, part.number] = params
            spent[name] = spent[name] + usage
    jobs = [
        FoldJob(name, part.fold, chosen[name, part.number], trial=-1)
        for name in candidates
        for part in outer
    ]
    results: list[FoldResult] = executor.map(run_fold, jobs, shared=shared)
    scores: dict[str, NestedScore] = {}
    for name in candidates:
        mine = [r for r in results if r.candidate == name]
        failed = next((r for r in mine if not r.ok), None)
        if failed is not None:
            number = next(p.number for p in outer if p.fold == failed.fold) + 1
            raise DataError(
                f"candidate {name} failed on outer fold {number} of nested cross-validation: "
                f"{failed.error}"
            )
        scores[name] = NestedScore(
            candidate=name,
            metric=metric,
            scores=[r.validation[metric] for r in mine],
            params=[chosen[name, p.number] for p in outer],
            usage=spent[name] + sum((r.usage for r in mine), Usage.zero()),
        )
    return scores
