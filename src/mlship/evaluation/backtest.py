"""A backtest of a time-ordered run: every time fold, and the test set after them, as a row saying
which span of time the model learned from, which later span it was scored on, and how it erred.

On time-ordered data one mean over the folds hides what matters most: whether the model does
worse the further it reaches into the future. So each fold keeps its place in time, and the test
set (the latest rows) is the last row of the table. Besides the score, every row carries how the
model errs on its rows in time order (:class:`Errors`): for a regressor the mean residual (the
bias) and how the residuals move from the block's first row to its last; for a classifier the
error rate and how it moves. The fold rows come from refitting the model on each fold's training
rows, which the residuals need (cross-validation keeps scores, not predictions); the scores shown
are the run's own fold scores when it has them, so the table agrees with the leaderboard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import clone

from mlship.json_values import rounded
from mlship.spec.models import Task
from mlship.spec.training import Split
from mlship.train.folds import FoldResult
from mlship.train.scoring import predict_outputs, score_metric
from mlship.train.splits import Index, time_values

Folds = list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]
TimeValue = str | float | int
TimeKind = Literal["number", "date", "datetime"]
_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class TimeOrder:
    """When each row of a time-ordered run happened: the training part's times (in its row
    order, which the folds index) and the test set's, as the numbers that order them
    (nanoseconds since the epoch unless ``kind`` is ``number``; ``date`` when every time is a
    midnight, so days are shown without a time of day)."""

    column: str
    train: np.ndarray[Any, Any]
    test: np.ndarray[Any, Any]
    kind: TimeKind

    def show(self, value: float) -> TimeValue:
        """A time as people read it: a date, a date and time, or the number itself."""
        if self.kind == "number":
            number = float(value)
            return int(number) if number.is_integer() else number
        stamp = pd.Timestamp(int(value))
        return stamp.date().isoformat() if self.kind == "date" else stamp.isoformat()

    def span(self, times: np.ndarray[Any, Any]) -> Span:
        return Span(self.show(float(times.min())), self.show(float(times.max())), len(times))


def time_order(frame: pd.DataFrame, split: Split, train: Index, test: Index) -> TimeOrder:
    """The :class:`TimeOrder` of a timeseries split of ``frame`` into ``train`` and ``test``."""
    column = split.time or ""
    times = time_values(frame, split)
    kind: TimeKind = "number"
    if pd.api.types.is_datetime64_any_dtype(frame[column]):
        kind = "date" if bool((times.astype("int64") % _DAY == 0).all()) else "datetime"
    return TimeOrder(column, times[train], times[test], kind)


@dataclass(frozen=True)
class Span:
    """The first and last time of a block of rows, and how many rows it has."""

    start: TimeValue
    end: TimeValue
    rows: int

    def text(self) -> str:
        return f"{self.start} \u2013 {self.end}"

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.start, "to": self.end, "rows": self.rows}


@dataclass(frozen=True)
class Errors:
    """How a model errs on one block of rows, taken in time order.

    ``level`` is the mean residual (actual minus predicted: the bias) for a regressor and the
    error rate for a classifier; ``size`` is the root mean squared residual, or again the error
    rate; ``trend`` is how far a straight line through the residuals (or the misses) moves from
    the block's first row to its last.
    """

    level: float
    size: float
    trend: float

    @classmethod
    def of(cls, task: Task, actual: Any, predicted: Any, times: np.ndarray[Any, Any]) -> Errors:
        order = np.argsort(times, kind="stable")
        if task == "regression":
            values = np.asarray(actual, dtype=float) - np.asarray(predicted, dtype=float)
            size = float(np.sqrt(np.mean(values**2)))
        else:
            truth = np.asarray(actual, dtype=object)
            values = (truth != np.asarray(predicted, dtype=object)).astype(float)
            size = float(values.mean())
        ordered = values[order]
        return cls(float(ordered.mean()), size, _line_rise(ordered))

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": rounded(self.level),
            "size": rounded(self.size),
            "trend": rounded(self.trend),
        }


def _line_rise(values: np.ndarray[Any, Any]) -> float:
    """The rise of the least-squares line through ``values`` (one per step) over the block."""
    count = len(values)
    if count < 2:
        return 0.0
    steps = np.arange(count, dtype=float)
    slope = np.polyfit(steps, values, 1)[0]
    return float(slope * (count - 1))


@dataclass(frozen=True)
class BacktestRow:
    """One fold (or the test set): the span trained on, the span scored, and the results."""

    label: str
    train: Span
    valid: Span
    score: float | None
    train_score: float | None
    errors: Errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "train": self.train.as_dict(),
            "validation": self.valid.as_dict(),
            "score": rounded(self.score),
            "train_score": rounded(self.train_score),
            "errors": self.errors.as_dict(),
        }


@dataclass(frozen=True)
class Backtest:
    """The time folds in time order, then the test set (the latest rows, scored once)."""

    column: str
    metric: str
    task: Task
    folds: tuple[BacktestRow, ...]
    test: BacktestRow

    @property
    def rows(self) -> tuple[BacktestRow, ...]:
        return (*self.folds, self.test)

    def test_sentence(self) -> str:
        span = self.test.valid
        return f"The test set is the latest {span.rows:,} rows ({span.text()}), scored once."

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.column,
            "metric": self.metric,
            "errors": "residual" if self.task == "regression" else "error rate",
            "rows": [row.as_dict() for row in self.rows],
            "test_set": self.test_sentence(),
        }


def run_backtest(
    task: Task,
    model: Any,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    test_predictions: Any,
    y_test: pd.Series,
    *,
    metric: str,
    folds: Folds,
    fold_scores: Sequence[FoldResult],
    test_score: float | None,
    order: TimeOrder,
    positive: Any = None,
) -> Backtest:
    """Refit ``model`` (unfitted) on every fold's training rows, and gather the table.

    ``fold_scores`` are the selected candidate's cross-validation results on ``folds``; when
    they are missing, the refits' own scores stand in. ``test_predictions`` are the selected
    model's predictions of the test set, which scored ``test_score``.
    """
    recorded = {result.fold: result for result in fold_scores}
    rows = []
    for number, (train, valid) in enumerate(folds):
        fitted = clone(model).fit(X_train.iloc[train], y_train.iloc[train])
        X_valid, y_valid = X_train.iloc[valid], y_train.iloc[valid]
        predicted, _ = predict_outputs(fitted, X_valid, task)
        result = recorded.get(number)
        score: float | None
        if result is not None and metric in result.validation:
            score, train_score = result.validation[metric], result.train.get(metric)
        else:
            score = score_metric(task, metric, fitted, X_valid, y_valid, positive)
            train_score = score_metric(
                task, metric, fitted, X_train.iloc[train], y_train.iloc[train], positive
            )
        rows.append(
            BacktestRow(
                label=f"fold {number + 1}",
                train=order.span(order.train[train]),
                valid=order.span(order.train[valid]),
                score=score,
                train_score=train_score,
                errors=Errors.of(task, y_valid, predicted, order.train[valid]),
            )
        )
    test = BacktestRow(
        label="test",
        train=order.span(order.train),
        valid=order.span(order.test),
        score=test_score,
        train_score=None,
        errors=Errors.of(task, y_test, test_predictions, order.test),
    )
    return Backtest(order.column, metric, task, tuple(rows), test)
