"""Metrics per group of test rows: how the model does for each value of a sensitive column.

A model can score well overall and badly for one group. For every value of each declared column
the test rows of that value are scored with the same metric functions as training
(:func:`mlship.train.metrics.compute_metric`), from one set of predictions. Two things are
flagged:

* a **worse** slice: a metric more than :data:`WORSE_BY` worse than the overall figure, in the
  metric's own direction. Scores such as accuracy or ROC-AUC are compared by difference; errors in
  the target's units (RMSE, MAE, median absolute error) by ratio, 5% of the overall error, since
  0.05 of a price in thousands means nothing.
* a **small** slice: fewer than :data:`SMALL_SLICE` rows, whose metrics are too noisy to trust.

A column with many values (an age, a postcode) keeps its :data:`MOST_VALUES` most frequent ones
and folds the rest into one ``other`` slice, so the table stays readable.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlship.spec.models import Task
from mlship.train.metrics import compute_metric, greater_is_better

SMALL_SLICE = 30
WORSE_BY = 0.05
MOST_VALUES = 20
IN_TARGET_UNITS = frozenset({"rmse", "mae", "median_ae"})
MISSING = "(missing)"


@dataclass(frozen=True)
class Slice:
    """The test rows with one value of one column, and their metrics."""

    column: str
    value: str
    rows: int
    metrics: dict[str, float | None]
    worse: tuple[str, ...] = ()
    """The metrics that are more than the tolerance worse than overall."""

    @property
    def small(self) -> bool:
        return self.rows < SMALL_SLICE

    @property
    def flagged(self) -> bool:
        return self.small or bool(self.worse)


@dataclass(frozen=True)
class SliceReport:
    """Every slice of every sensitive column, beside the overall figures they are judged by."""

    task: Task
    metric: str
    """The run's selection metric, shown first."""
    metrics: tuple[str, ...]
    rows: int
    overall: dict[str, float | None]
    slices: list[Slice] = field(default_factory=list)
    folded: dict[str, int] = field(default_factory=dict)
    """Column -> how many of its values went into its ``other`` slice."""

    def of(self, column: str) -> list[Slice]:
        return [found for found in self.slices if found.column == column]

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(found.column for found in self.slices))


def is_worse(task: Task, metric: str, value: float | None, overall: float | None) -> bool:
    """Whether ``value`` is more than the tolerance worse than ``overall`` (see the module)."""
    if value is None or overall is None:
        return False
    if metric in IN_TARGET_UNITS:
        return value > overall + abs(overall) * WORSE_BY
    gap = overall - value if greater_is_better(task, metric) else value - overall
    return gap > WORSE_BY


def _text(value: Any) -> str:
    """A group's value as people write it: ``34``, not the ``34.0`` of a column with gaps."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _labels(values: pd.Series) -> tuple[np.ndarray[Any, Any], int]:
    """One label per row (its value as text, missing ones named), with the rarer values
    folded into ``other``; and how many values were folded."""
    text = values.astype("object").where(values.notna(), MISSING).map(_text).to_numpy()
    counts = pd.Series(text).value_counts(sort=True)
    if len(counts) <= MOST_VALUES:
        return text, 0
    kept = set(counts.index[:MOST_VALUES])
    folded = len(counts) - MOST_VALUES
    other = f"other ({folded} values)"
    return np.array([t if t in kept else other for t in text], dtype=object), folded


def _finite(value: float | None) -> float | None:
    """A metric, or ``None`` where it is undefined (an R² of one row is NaN)."""
    return value if value is not None and math.isfinite(value) else None


def slice_metrics(
    task: Task,
    metric: str,
    names: Sequence[str],
    y: pd.Series,
    predictions: np.ndarray[Any, Any],
    proba: np.ndarray[Any, Any] | None,
    classes: Any,
    groups: Mapping[str, pd.Series],
    positive: Any = None,
) -> SliceReport:
    """Score each value of each column of ``groups`` (aligned with ``y``) on its own rows.

    ``predictions`` and ``proba`` are the model's outputs for all the rows, ``classes`` its
    classes (``None`` for a regressor); ``names`` are the metrics shown after ``metric``.
    """
    shown = tuple(dict.fromkeys([metric, *names]))
    truth = y.reset_index(drop=True)

    def scores(mask: np.ndarray[Any, Any] | None) -> dict[str, float | None]:
        rows = (truth, predictions, proba)
        if mask is not None:
            rows = (
                truth[mask].reset_index(drop=True),
                predictions[mask],
                None if proba is None else proba[mask],
            )
        # A slice may hold one class only; scikit-learn warns, and the metrics say "undefined".
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return {
                name: _finite(compute_metric(task, name, *rows, classes, positive))
                for name in shown
            }

    overall = scores(None)
    report = SliceReport(task, metric, shown, len(truth), overall)
    for column, values in groups.items():
        labels, folded = _labels(values.reset_index(drop=True))
        if folded:
            report.folded[column] = folded
        order = pd.Series(labels).value_counts(sort=True).index
        for label in order:
            mask = labels == label
            found = scores(mask)
            worse = tuple(
                name for name in shown if is_worse(task, name, found[name], overall[name])
            )
            report.slices.append(Slice(column, str(label), int(mask.sum()), found, worse))
    return report
