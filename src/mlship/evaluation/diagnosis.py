"""How well the model fits: a learning curve, the gap between training and validation scores, a
baseline to measure both against, a verdict in plain words, and which input columns matter.

Everything here is measured on the training part with the run's own folds, except permutation
importance, which shuffles one input column of the test set at a time. Importance is measured on
the pipeline's raw input columns (before encoding), because those are the columns a person knows
and can act on.

The verdict compares the selection metric between training and validation folds:

* **overfitting**: validation is well below training. For a score bounded by 1 (accuracy, AUC,
  R², ...) "well below" means a gap larger than :data:`SCORE_GAP`; for an error (RMSE, log loss,
  ...) the gap is taken relative to the baseline's error and must exceed :data:`ERROR_GAP`.
* **underfitting**: both training and validation close less than :data:`SKILL_FLOOR` of the
  distance from a dummy model (class priors, or the mean) to a perfect score.
* **a good fit** otherwise.

While a column is suspected of leaking the target (:mod:`mlship.train.leakage`), no verdict is
given: :func:`distrusted_verdict` says the scores cannot be trusted until it is explained.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.exceptions import FitFailedWarning
from sklearn.inspection import permutation_importance
from sklearn.model_selection import check_cv, learning_curve

from mlship.json_values import rounded, rounded_list
from mlship.spec.models import Task
from mlship.train.folds import FoldResult
from mlship.train.metrics import (
    PROBABILITY_METRICS,
    compute_metric,
    greater_is_better,
    metric_label,
)
from mlship.train.scoring import score_metric

SCORE_GAP = 0.05
ERROR_GAP = 0.1
SKILL_FLOOR = 0.2
# Validation must rise by this share of the baseline-to-perfect distance between the last two
# learning-curve points for the curve to count as still rising.
STILL_RISING = 0.01
TRAIN_SIZES = (0.1, 0.325, 0.55, 0.775, 1.0)
IMPORTANCE_REPEATS = 5

Folds = list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]


def _scorer(
    task: Task,
    metric: str,
    sign: float,
    positive: Any,
    estimator: Any,
    X: pd.DataFrame,
    y: pd.Series,
) -> float:
    value = score_metric(task, metric, estimator, X, y, positive)
    return math.nan if value is None else sign * value


def metric_scorer(
    task: Task, metric: str, *, higher_is_better: bool = False, positive: Any = None
) -> Any:
    """A scikit-learn scorer (``scorer(estimator, X, y)``) of one mlship metric.

    It returns the metric itself, or with ``higher_is_better`` the metric negated when smaller is
    better, which is what permutation importance expects. It pickles, so it can run in worker
    processes.
    """
    sign = -1.0 if higher_is_better and not greater_is_better(task, metric) else 1.0
    return functools.partial(_scorer, task, metric, sign, positive)


def materialize_folds(cv: Any, X: pd.DataFrame, y: pd.Series, task: Task) -> Folds:
    """The (train, validation) index pairs of ``cv``: a splitter, a number of folds, or the pairs
    themselves (as :func:`mlship.train.splits.cv_folds` returns them)."""
    splitter = check_cv(cv, y, classifier=task == "classification")
    return [(np.asarray(train), np.asarray(valid)) for train, valid in splitter.split(X, y)]


def learning_curve_scores(
    task: Task,
    model: Any,
    X: pd.DataFrame,
    y: pd.Series,
    *,
    metric: str,
    folds: Folds,
    seed: int,
    n_jobs: int,
    positive: Any = None,
) -> dict[str, Any]:
    """Training and validation scores of the metric for five training-set sizes, on ``folds``.

    A fit that fails at a small size (a class missing from the subset, say) scores NaN and is left
    out of that size's mean rather than failing the evaluation.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.simplefilter("ignore", UserWarning)
        sizes, train, valid = learning_curve(
            clone(model),
            X,
            y,
            train_sizes=np.array(TRAIN_SIZES),
            cv=folds,
            scoring=metric_scorer(task, metric, positive=positive),
            n_jobs=n_jobs,
            shuffle=True,
            random_state=seed,
            error_score=np.nan,
        )

    def mean(scores: np.ndarray[Any, Any]) -> list[float | None]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return rounded_list(np.nanmean(scores, axis=1), 6)

    def std(scores: np.ndarray[Any, Any]) -> list[float | None]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return rounded_list(np.nanstd(scores, axis=1), 6)

    return {
        "metric": metric,
        "train_sizes": [int(size) for size in sizes],
        "train_mean": mean(train),
        "train_std": std(train),
        "validation_mean": mean(valid),
        "validation_std": std(valid),
    }


def baseline_scores(
    task: Task,
    y: pd.Series,
    folds: Folds,
    *,
    metric: str,
    positive: Any = None,
    weights: Any = None,
) -> list[float | None]:
    """The validation score of a dummy model on each fold: the class priors for a classifier,
    the mean for a regressor (of weighted rows, with sample ``weights``, as the folds were
    scored). It ignores the inputs, so it needs only the target."""
    values: list[float | None] = []
    target = np.asarray(y)
    w = None if weights is None else np.asarray(weights, dtype=float)
    for train, valid in folds:
        fit_weight = None if w is None else w[train]
        placeholder_train = np.zeros((len(train), 1))
        placeholder_valid = np.zeros((len(valid), 1))
        if task == "classification":
            classifier = DummyClassifier(strategy="prior").fit(
                placeholder_train, target[train], sample_weight=fit_weight
            )
            predictions = classifier.predict(placeholder_valid)
            proba = (
                classifier.predict_proba(placeholder_valid)
                if metric in PROBABILITY_METRICS
                else None
            )
            classes = classifier.classes_
        else:
            regressor = DummyRegressor(strategy="mean").fit(
                placeholder_train, target[train], sample_weight=fit_weight
            )
            predictions, proba, classes = regressor.predict(placeholder_valid), None, None
        values.append(
            compute_metric(
                task,
                metric,
                target[valid],
                predictions,
                proba,
                classes,
                positive,
                None if w is None else w[valid],
            )
        )
    return values


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _skill(value: float | None, baseline: float | None, bigger: bool) -> float | None:
    """How much of the distance from the baseline to a perfect score ``value`` covers: 0 at the
    baseline, 1 when perfect (1 for a score, 0 for an error)."""
    if value is None or baseline is None:
        return None
    distance = (1.0 - baseline) if bigger else baseline
    if distance <= 0:
        return None
    return (value - baseline) / distance if bigger else (baseline - value) / distance


def _still_rising(curve: dict[str, Any] | None, baseline: float | None, bigger: bool) -> bool:
    if not curve:
        return False
    valid = [v for v in curve["validation_mean"] if v is not None]
    if len(valid) < 2:
        return False
    gain = float(valid[-1] - valid[-2]) * (1 if bigger else -1)
    scale = (1.0 - baseline if bigger else baseline) if baseline is not None else None
    if not scale or scale <= 0:
        scale = max(abs(float(valid[-1])), 1e-12)
    return gain / scale > STILL_RISING


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def fit_verdict(
    task: Task,
    metric: str,
    train: Sequence[float | None],
    validation: Sequence[float | None],
    baseline: Sequence[float | None],
    curve: dict[str, Any] | None = None,
    *,
    overfitting: bool | None = None,
) -> dict[str, Any]:
    """Overfitting, underfitting or a good fit, from per-fold training, validation and baseline
    scores of ``metric``; with the numbers that decided it, the reason and one piece of advice.

    ``overfitting``, when given, decides overfitting in place of the gap between the means (time
    folds judge the gap fold by fold: see :mod:`mlship.evaluation.time_diagnosis`).
    """
    bigger = greater_is_better(task, metric)
    train_mean, valid_mean, base_mean = _mean(train), _mean(validation), _mean(baseline)
    relative = not bigger
    gap: float | None = None
    if train_mean is not None and valid_mean is not None:
        gap = train_mean - valid_mean if bigger else valid_mean - train_mean
        if relative:
            gap = gap / base_mean if base_mean else None
    limit = ERROR_GAP if relative else SCORE_GAP
    train_skill = _skill(train_mean, base_mean, bigger)
    valid_skill = _skill(valid_mean, base_mean, bigger)
    rising = _still_rising(curve, base_mean, bigger)
    name = metric_label(metric)
    too_far = gap is not None and gap > limit
    if overfitting is not None:
        too_far = overfitting and gap is not None
    if too_far and gap is not None:
        verdict = "overfitting"
        if relative:
            reason = (
                f"Validation {name} ({_num(valid_mean)}) is above training ({_num(train_mean)}) "
                f"by {gap:.0%} of the baseline's error, where up to {limit:.0%} counts as close: "
                "the model does much better on rows it has seen than on new ones."
            )
        else:
            reason = (
                f"Validation {name} ({_num(valid_mean)}) is {gap:.3g} below training "
                f"({_num(train_mean)}), where up to {limit:g} counts as close: the model does "
                "much better on rows it has seen than on new ones."
            )
        advice = "More regularisation, a simpler model or more training data should close the gap."
    elif (
        train_skill is not None
        and valid_skill is not None
        and train_skill < SKILL_FLOOR
        and valid_skill < SKILL_FLOOR
    ):
        verdict = "underfitting"
        reason = (
            f"Training ({_num(train_mean)}) and validation ({_num(valid_mean)}) {name} both "
            f"cover less than {SKILL_FLOOR:.0%} of the way from a dummy baseline "
            f"({_num(base_mean)}) to a perfect score."
        )
        advice = (
            "A more flexible model, less regularisation or more informative features should "
            "help; the inputs may also hold little signal about the target."
        )
    else:
        verdict = "a good fit"
        reason = (
            f"Training ({_num(train_mean)}) and validation ({_num(valid_mean)}) {name} are "
            f"close, and clear of the dummy baseline ({_num(base_mean)})."
        )
        advice = (
            "The validation score is still rising with more rows, so more data should help."
            if rising
            else "The learning curve has levelled off: better features would help more than "
            "more rows."
        )
    return {
        "verdict": verdict,
        "metric": metric,
        "greater_is_better": bigger,
        "train": rounded(train_mean),
        "validation": rounded(valid_mean),
        "baseline": rounded(base_mean),
        "gap": rounded(gap),
        "gap_kind": "relative to the baseline's error" if relative else "absolute",
        "gap_limit": limit,
        "train_skill": rounded(train_skill),
        "validation_skill": rounded(valid_skill),
        "skill_floor": SKILL_FLOOR,
        "still_rising": rising,
        "reason": reason,
        "advice": advice,
    }


UNTRUSTED = "possible leakage"


def distrusted_verdict(fit: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """``fit`` with its verdict replaced by one that withholds judgement: a column suspected of
    leaking the target makes every score look better than the model will do, so neither "a good
    fit" nor any other reading of those scores stands until the column is explained. The verdict
    it replaces is kept as ``withheld``."""
    named = ", ".join(repr(c) for c in columns)
    return {
        **fit,
        "verdict": UNTRUSTED,
        "withheld": fit.get("verdict"),
        "reason": (
            f"The scores cannot be trusted until the suspect column(s) {named} are explained: "
            "a column that gives the target away makes training, validation and test scores "
            "all look better than the model will do on new rows."
        ),
        "advice": (
            "Check when and how each suspect column is recorded; remove it if it is not known "
            "at prediction time, or list it under leakage.allow if it is."
        ),
    }


def diagnose(
    task: Task,
    model: Any,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    *,
    metric: str,
    cv: Any,
    fold_scores: Sequence[FoldResult],
    seed: int,
    n_jobs: int,
    positive: Any = None,
    weights: Any = None,
) -> dict[str, Any]:
    """The learning curve, the baseline and the fit verdict of ``model`` on the training part.

    ``fold_scores`` are the selected candidate's cross-validation scores; without them the
    learning curve's last point (the full folds) stands in for them.
    """
    candidates = {score.candidate for score in fold_scores}
    if len(candidates) > 1:
        raise ValueError(
            f"fold scores of one candidate expected, got those of {sorted(candidates)}"
        )
    folds = materialize_folds(cv, X_train, y_train, task)
    curve = learning_curve_scores(
        task,
        model,
        X_train,
        y_train,
        metric=metric,
        folds=folds,
        seed=seed,
        n_jobs=n_jobs,
        positive=positive,
    )
    baseline = baseline_scores(
        task, y_train, folds, metric=metric, positive=positive, weights=weights
    )
    if fold_scores:
        train = [s.train.get(metric) for s in fold_scores]
        validation = [s.validation.get(metric) for s in fold_scores]
        source = "cross-validation"
    else:
        train, validation = [curve["train_mean"][-1]], [curve["validation_mean"][-1]]
        source = "learning curve"
    verdict = fit_verdict(task, metric, train, validation, baseline, curve)
    verdict["source"] = source
    verdict["folds"] = len(folds)
    return {
        "learning_curve": curve,
        "baseline": {
            "strategy": "class priors" if task == "classification" else "mean",
            "scores": [rounded(v) for v in baseline],
            "mean": rounded(_mean(baseline)),
        },
        "fit": verdict,
    }


def permutation_importances(
    task: Task,
    model: Any,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    *,
    metric: str,
    seed: int,
    n_jobs: int,
    repeats: int = IMPORTANCE_REPEATS,
    positive: Any = None,
) -> dict[str, Any]:
    """How much the metric worsens on the test set when one input column is shuffled.

    Columns are the pipeline's raw inputs, most important first; a value near zero (or below) means
    the model does not rely on the column.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = permutation_importance(
            model,
            X_test,
            y_test,
            scoring=metric_scorer(task, metric, higher_is_better=True, positive=positive),
            n_repeats=repeats,
            random_state=seed,
            n_jobs=n_jobs,
        )
    ranked = sorted(
        zip(X_test.columns, result.importances_mean, result.importances_std, strict=True),
        key=lambda item: -item[1] if math.isfinite(item[1]) else math.inf,
    )
    columns = [
        {"name": str(name), "mean": rounded(mean), "std": rounded(std)}
        for name, mean, std in ranked
    ]
    return {
        "metric": metric,
        "repeats": repeats,
        "seed": seed,
        "measure": f"{'decrease' if greater_is_better(task, metric) else 'increase'} in "
        f"{metric_label(metric)} when the column is shuffled",
        "columns": columns,
    }
