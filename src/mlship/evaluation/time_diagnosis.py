"""The fit diagnosis of a time-ordered run: over-fitting told apart from drift and bias.

A model that does worse on the test set than in cross-validation may have memorised its training
rows (over-fitting), or the world may have moved on (drift): the newest rows differ from the older
ones it learned from, and no amount of regularisation brings it back. The two leave different
marks on a backtest (:mod:`mlship.evaluation.backtest`), which is what this module reads:

* **drift** when the score worsens with time (the test set's loss is at least :data:`DRIFT_RISE`
  above the folds' mean loss, and most steps from one block to the next make it worse) *and* the
  errors shift: for a regressor the test set's residuals are biased (the squared mean residual is
  at least :data:`BIAS_SHARE` of the squared error) or they trend across it (a line through them
  moves by at least :data:`TREND_SHARE` of their root mean square); for a classifier the error
  rate rises from the folds to the test set or across the test set; or, whatever the score
  does, when a regressor's residuals lean the same way by at least :data:`BIAS_SHARE` of the
  squared error on both the latest fold and the test set (a lasting bias).
* **overfitting** when training is far above validation (the gap rule of
  :func:`mlship.evaluation.diagnosis.fit_verdict`) on *every* fold, the smallest training window
  as well as the largest;
* **underfitting** and **a good fit** as for any other split.

The learning curve of a time split has one point per fold: the real training windows, which grow
fold after fold, rather than shuffled fractions of the rows, which would mix the future into the
past.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlship.evaluation.backtest import Backtest, TimeOrder, run_backtest
from mlship.evaluation.diagnosis import (
    ERROR_GAP,
    SCORE_GAP,
    baseline_scores,
    fit_verdict,
    materialize_folds,
)
from mlship.json_values import rounded, rounded_list
from mlship.spec.models import Task
from mlship.train.folds import FoldResult
from mlship.train.metrics import greater_is_better, metric_label

DRIFT_RISE = 0.2
BIAS_SHARE = 0.25
TREND_SHARE = 1.0
# A classifier's error rate must rise by this share of itself (and by RATE_FLOOR at least)
# across the test set to count as a trend.
RATE_TREND = 0.5
RATE_FLOOR = 0.05
DRIFT_ADVICE = (
    "Error grows with time: the newest rows differ from the older ones; refit on recent data or "
    "add time features."
)


def _loss(value: float | None, bigger: bool) -> float | None:
    """A score turned into a loss that grows as the score worsens (1 - score for scores up to 1,
    the error itself for errors)."""
    if value is None or not np.isfinite(value):
        return None
    return 1.0 - value if bigger else value


def _worse_steps(losses: Sequence[float | None]) -> tuple[int, int]:
    """How many steps from one block to the next make the loss larger, out of how many."""
    pairs = [(a, b) for a, b in pairwise(losses) if a is not None and b is not None]
    return sum(1 for a, b in pairs if b > a), len(pairs)


def _rise(later: float | None, earlier: Sequence[float | None]) -> float | None:
    """How much larger ``later`` is than the mean of ``earlier``, as a share of that mean."""
    known = [v for v in earlier if v is not None]
    if later is None or not known:
        return None
    mean = float(np.mean(known))
    return (later - mean) / mean if mean > 1e-12 else None


@dataclass(frozen=True)
class ScoreTrend:
    """The selection metric block after block in time order: each fold, then the test set."""

    metric: str
    bigger: bool
    scores: tuple[float | None, ...]
    worse_steps: int
    steps: int
    rise: float | None
    """How much larger the test set's loss is than the folds' mean loss, as a share of it."""

    @classmethod
    def of(cls, backtest: Backtest) -> ScoreTrend:
        bigger = greater_is_better(backtest.task, backtest.metric)
        scores = tuple(row.score for row in backtest.rows)
        losses = [_loss(s, bigger) for s in scores]
        worse, steps = _worse_steps(losses)
        return cls(backtest.metric, bigger, scores, worse, steps, _rise(losses[-1], losses[:-1]))

    @property
    def falling(self) -> bool:
        """The score worsens with time: the test set well below the folds, most steps down."""
        return (
            self.rise is not None
            and self.rise >= DRIFT_RISE
            and self.steps > 0
            and 2 * self.worse_steps > self.steps
        )

    @property
    def cv_mean(self) -> float | None:
        known = [s for s in self.scores[:-1] if s is not None]
        return float(np.mean(known)) if known else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "scores": rounded_list(self.scores, 6),
            "cv_mean": rounded(self.cv_mean),
            "test": rounded(self.scores[-1]),
            "worse_steps": self.worse_steps,
            "steps": self.steps,
            "test_loss_rise": rounded(self.rise),
            "falling": self.falling,
        }


@dataclass(frozen=True)
class ErrorTrend:
    """How the errors move in time: their level on every block (the mean residual of a
    regressor, the error rate of a classifier), and on the test set their size and trend."""

    kind: Literal["residual", "error rate"]
    levels: tuple[float, ...]
    sizes: tuple[float, ...]
    test_trend: float

    @classmethod
    def of(cls, backtest: Backtest) -> ErrorTrend:
        kind: Literal["residual", "error rate"] = (
            "residual" if backtest.task == "regression" else "error rate"
        )
        levels = tuple(row.errors.level for row in backtest.rows)
        sizes = tuple(row.errors.size for row in backtest.rows)
        return cls(kind, levels, sizes, backtest.test.errors.trend)

    @property
    def test_level(self) -> float:
        return self.levels[-1]

    @property
    def test_size(self) -> float:
        return self.sizes[-1]

    def _share(self, block: int) -> float | None:
        """The share of a block's squared error that is bias (residuals only)."""
        squared = self.sizes[block] ** 2
        if self.kind != "residual" or not squared > 0:
            return None
        return float(min(self.levels[block] ** 2 / squared, 1.0))

    @property
    def bias_share(self) -> float | None:
        """The share of the test set's squared error that is bias (residuals only)."""
        return self._share(-1)

    @property
    def latest_fold_share(self) -> float | None:
        """The same on the latest fold, the block just before the test set."""
        return self._share(-2) if len(self.levels) > 1 else None

    @property
    def biased(self) -> bool:
        share = self.bias_share
        return share is not None and share >= BIAS_SHARE

    @property
    def lasting_bias(self) -> bool:
        """The residuals lean the same way, and heavily, on the latest fold and the test set:
        the newest rows sit away from what the older ones taught, whatever the score does."""
        latest = self.latest_fold_share
        return (
            self.biased
            and latest is not None
            and latest >= BIAS_SHARE
            and self.levels[-2] * self.levels[-1] > 0
        )

    @property
    def trending(self) -> bool:
        if self.kind == "residual":
            return self.test_size > 0 and abs(self.test_trend) >= TREND_SHARE * self.test_size
        return self.test_trend >= max(RATE_FLOOR, RATE_TREND * self.test_level)

    @property
    def rising(self) -> bool:
        """The error rate of the test set is well above that of the folds (classifiers)."""
        if self.kind != "error rate":
            return False
        rise = _rise(self.test_level, list(self.levels[:-1]))
        return rise is not None and rise >= DRIFT_RISE

    @property
    def shifted(self) -> bool:
        """The errors are systematic and move with time, not scattered around zero."""
        return self.biased or self.trending or self.rising

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "levels": rounded_list(self.levels, 6),
            "test_level": rounded(self.test_level),
            "sizes": rounded_list(self.sizes, 6),
            "test_size": rounded(self.test_size),
            "test_trend": rounded(self.test_trend),
            "bias_share": rounded(self.bias_share),
            "latest_fold_bias_share": rounded(self.latest_fold_share),
            "biased": self.biased,
            "lasting_bias": self.lasting_bias,
            "trending": self.trending,
            "rising": self.rising,
            "shifted": self.shifted,
        }


@dataclass(frozen=True)
class GapTrend:
    """The gap between training and validation on every fold, each a larger training window,
    measured as the fit verdict measures it."""

    gaps: tuple[float | None, ...]
    limit: float
    relative: bool

    @classmethod
    def of(cls, backtest: Backtest, baseline: Sequence[float | None]) -> GapTrend:
        bigger = greater_is_better(backtest.task, backtest.metric)
        known = [b for b in baseline if b is not None and np.isfinite(b)]
        base = float(np.mean(known)) if known else None
        gaps: list[float | None] = []
        for row in backtest.folds:
            if row.score is None or row.train_score is None:
                gaps.append(None)
            elif bigger:
                gaps.append(row.train_score - row.score)
            else:
                gaps.append((row.score - row.train_score) / base if base else None)
        return cls(tuple(gaps), SCORE_GAP if bigger else ERROR_GAP, not bigger)

    @property
    def everywhere(self) -> bool:
        """Training is far above validation on every fold."""
        return bool(self.gaps) and all(g is not None and g > self.limit for g in self.gaps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "gaps": rounded_list(self.gaps, 6),
            "limit": self.limit,
            "relative": self.relative,
            "everywhere": self.everywhere,
        }


@dataclass(frozen=True)
class TimeFindings:
    """What the backtest says about the model over time, and whether that is drift."""

    scores: ScoreTrend
    errors: ErrorTrend
    gaps: GapTrend

    @classmethod
    def of(cls, backtest: Backtest, baseline: Sequence[float | None]) -> TimeFindings:
        return cls(
            ScoreTrend.of(backtest), ErrorTrend.of(backtest), GapTrend.of(backtest, baseline)
        )

    @property
    def drift(self) -> bool:
        return (self.scores.falling and self.errors.shifted) or self.errors.lasting_bias

    def drift_reason(self) -> str:
        if not self.scores.falling:
            return self._bias_reason()
        name = metric_label(self.scores.metric)
        shown = ", ".join(_num(s) for s in self.scores.scores[:-1])
        rise = self.scores.rise or 0.0
        text = (
            f"Validation {name} worsens with time: {shown} on the folds, oldest first, then "
            f"{_num(self.scores.scores[-1])} on the test set (the latest rows), whose loss is "
            f"{rise:.0%} above the folds' mean."
        )
        errors = self.errors
        if errors.kind == "residual":
            side = "above" if errors.test_level > 0 else "below"
            text += (
                f" On the test set the residuals average {errors.test_level:+.4g} (actual "
                f"{side} predicted), {errors.bias_share or 0.0:.0%} of the squared error, and "
                f"move by {errors.test_trend:+.4g} from its first row to its last."
            )
        else:
            folds = float(np.mean(errors.levels[:-1])) if len(errors.levels) > 1 else 0.0
            text += (
                f" The error rate is {errors.test_level:.1%} on the test set against {folds:.1%} "
                f"on the folds, and moves by {errors.test_trend:+.1%} across the test set."
            )
        if self.gaps.everywhere:
            text += (
                " Training is also above validation on every fold, but a shift that grows with "
                "time is not noise the model memorised."
            )
        return text

    def _bias_reason(self) -> str:
        errors = self.errors
        side = "above" if errors.test_level > 0 else "below"
        return (
            f"The residuals lean one way on the newest rows: they average "
            f"{errors.levels[-2]:+.4g} on the latest fold ({errors.latest_fold_share or 0.0:.0%} "
            f"of its squared error) and {errors.test_level:+.4g} on the test set "
            f"({errors.bias_share or 0.0:.0%}): the newest rows sit {side} what the model "
            "learned from the older ones."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "drift": self.drift,
            "scores": self.scores.as_dict(),
            "errors": self.errors.as_dict(),
            "gaps": self.gaps.as_dict(),
        }


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def learning_curve_over_time(backtest: Backtest) -> dict[str, Any]:
    """One learning-curve point per fold: its real training window, its scores."""
    folds = backtest.folds
    return {
        "metric": backtest.metric,
        "kind": "time folds",
        "train_sizes": [row.train.rows for row in folds],
        "train_mean": rounded_list([row.train_score for row in folds], 6),
        "train_std": [None for _ in folds],
        "validation_mean": rounded_list([row.score for row in folds], 6),
        "validation_std": [None for _ in folds],
    }


def judge(
    backtest: Backtest, baseline: Sequence[float | None], curve: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The fit verdict of a time-ordered run from its backtest and per-fold baseline scores."""
    findings = TimeFindings.of(backtest, baseline)
    folds = backtest.folds
    fit = fit_verdict(
        backtest.task,
        backtest.metric,
        [row.train_score for row in folds],
        [row.score for row in folds],
        baseline,
        curve,
        overfitting=findings.gaps.everywhere,
    )
    if findings.drift:
        fit.update(verdict="drift", reason=findings.drift_reason(), advice=DRIFT_ADVICE)
    elif fit["verdict"] == "overfitting":
        fit["reason"] += (
            " It is so on every fold, from the smallest training window to the largest."
        )
    fit["time"] = findings.as_dict()
    return fit


def diagnose_over_time(
    task: Task,
    model: Any,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    test_predictions: Any,
    y_test: pd.Series,
    *,
    metric: str,
    cv: Any,
    fold_scores: Sequence[FoldResult],
    test_score: float | None,
    order: TimeOrder,
    positive: Any = None,
) -> tuple[dict[str, Any], Backtest]:
    """The diagnosis (learning curve, baseline, verdict) of a time-ordered run, and its
    backtest; ``model`` is refitted on each fold, unfitted."""
    folds = materialize_folds(cv, X_train, y_train, task)
    backtest = run_backtest(
        task,
        model,
        X_train,
        y_train,
        test_predictions,
        y_test,
        metric=metric,
        folds=folds,
        fold_scores=fold_scores,
        test_score=test_score,
        order=order,
        positive=positive,
    )
    baseline = baseline_scores(task, y_train, folds, metric=metric, positive=positive)
    curve = learning_curve_over_time(backtest)
    fit = judge(backtest, baseline, curve)
    fit["source"] = "time series cross-validation"
    fit["folds"] = len(folds)
    known = [b for b in baseline if b is not None and np.isfinite(b)]
    diagnosis = {
        "learning_curve": curve,
        "baseline": {
            "strategy": "class priors" if task == "classification" else "mean",
            "scores": [rounded(v) for v in baseline],
            "mean": rounded(float(np.mean(known))) if known else None,
        },
        "fit": fit,
    }
    return diagnosis, backtest
