"""Metrics: one function computes every score of a task from a single set of predictions.

Predicting once per fold and deriving all metrics from it is cheaper than scikit-learn scorers,
which predict again for each metric. :func:`compute_metric` computes just one, for callers that
score many times over (learning curves, permutation importance).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from mlship.spec.models import Task

# name -> whether larger is better
METRICS: dict[str, dict[str, bool]] = {
    "classification": {
        "accuracy": True,
        "balanced_accuracy": True,
        "f1": True,
        "precision": True,
        "recall": True,
        "mcc": True,
        "roc_auc": True,
        "average_precision": True,
        "log_loss": False,
        "brier": False,
    },
    "regression": {"rmse": False, "mae": False, "r2": True, "mape": False, "median_ae": False},
}

# The metrics that say most about a model of each task, shown where there is no room for all of
# them (the groups of a model card); binary ones are about the positive class.
KEY_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "precision", "recall", "f1"),
    "regression": ("rmse", "mae", "r2"),
}

# How reports name each metric for people.
LABELS: dict[str, str] = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "f1": "F1",
    "precision": "precision",
    "recall": "recall",
    "mcc": "Matthews correlation",
    "roc_auc": "ROC-AUC",
    "average_precision": "PR-AUC (average precision)",
    "log_loss": "log loss",
    "brier": "Brier score",
    "rmse": "RMSE",
    "mae": "mean absolute error",
    "r2": "R\u00b2",
    "mape": "MAPE",
    "median_ae": "median absolute error",
}

# Metrics computed from predicted probabilities, so every candidate must offer predict_proba.
PROBABILITY_METRICS = frozenset({"roc_auc", "average_precision", "log_loss", "brier"})


def greater_is_better(task: Task, metric: str) -> bool:
    return METRICS[task][metric]


def metric_label(metric: str) -> str:
    """The name of ``metric`` in a sentence (``ROC-AUC``, ``mean absolute error``)."""
    return LABELS.get(metric, metric)


def guarded_mape(y_true: Any, y_pred: Any, weights: Any = None) -> float | None:
    """Mean absolute percentage error over the rows whose true value is not zero (weighted by
    ``weights`` when given).

    A zero true value has no percentage error; scikit-learn divides by machine epsilon there, which
    turns one zero into an error of trillions of percent. ``None`` when every true value is zero,
    or every row with one weighs nothing.
    """
    truth = np.asarray(y_true, dtype=float)
    predicted = np.asarray(y_pred, dtype=float)
    nonzero = truth != 0
    kept = None if weights is None else np.asarray(weights, dtype=float)[nonzero]
    if not nonzero.any() or (kept is not None and kept.sum() <= 0):
        return None
    errors = np.abs(truth[nonzero] - predicted[nonzero]) / np.abs(truth[nonzero])
    return float(np.average(errors, weights=kept))


@dataclass(frozen=True)
class _Outputs:
    """One set of classifier outputs and what the metrics derive from it."""

    y_true: np.ndarray[Any, Any]
    y_pred: Any
    proba: np.ndarray[Any, Any] | None
    classes: list[Any] | None
    positive_label: Any = None
    weights: np.ndarray[Any, Any] | None = None
    """Sample weights of the rows (``None``: every row counts once)."""

    @property
    def binary(self) -> bool:
        return self.classes is not None and len(self.classes) == 2

    @property
    def column(self) -> int:
        """The positive class's position in ``classes`` (and column of ``proba``)."""
        assert self.classes is not None
        return positive_index(self.classes, self.positive_label)

    def averaged(self, function: Callable[..., Any]) -> float:
        """A precision-like score: of the positive class when binary, else the macro average."""
        average, pos_label = "macro", 1
        if self.binary and self.classes is not None:
            average, pos_label = "binary", self.classes[self.column]
        return float(
            function(
                self.y_true,
                self.y_pred,
                average=average,
                pos_label=pos_label,
                zero_division=0,
                sample_weight=self.weights,
            )
        )

    def every_class_present(self) -> bool:
        return self.classes is not None and len(np.unique(self.y_true)) == len(self.classes)

    def positive(self) -> np.ndarray[Any, Any]:
        assert self.classes is not None
        positive: np.ndarray[Any, Any] = (self.y_true == self.classes[self.column]).astype(int)
        return positive


def _outputs(
    y_true: Any,
    y_pred: Any,
    proba: np.ndarray[Any, Any] | None,
    classes: Any,
    positive: Any,
    weights: np.ndarray[Any, Any] | None = None,
) -> _Outputs:
    """The outputs with labels turned into class positions when every label is a class.

    scikit-learn's metrics check the type of their targets on every call, which on strings costs
    more than the metric itself; on integer codes the same metrics take a third of the time. A
    label outside ``classes`` (a class the fold's model never saw) keeps the labels as they are.
    """
    truth = np.asarray(y_true)
    if classes is None:
        return _Outputs(truth, y_pred, proba, None, positive, weights)
    class_list = list(classes)
    column = positive_index(class_list, positive)
    index = pd.Index(class_list)
    true_codes = index.get_indexer(truth)
    pred_codes = index.get_indexer(np.asarray(y_pred))
    if (true_codes < 0).any() or (pred_codes < 0).any():
        return _Outputs(truth, y_pred, proba, class_list, class_list[column], weights)
    codes = list(range(len(class_list)))
    return _Outputs(
        true_codes.astype(np.intp), pred_codes.astype(np.intp), proba, codes, column, weights
    )


def positive_index(classes: Sequence[Any], positive: Any = None) -> int:
    """Where the positive class sits in ``classes``: ``positive`` when declared, else the last
    class (scikit-learn's convention). A declared label matches a class equal to it or written
    the same (the spec's ``"1"`` is the class ``1``)."""
    if positive is None:
        return len(classes) - 1
    for index, value in enumerate(classes):
        if value == positive or str(value) == str(positive):
            return index
    raise ValueError(
        f"positive class {positive!r} is not one of the classes {[str(c) for c in classes]}"
    )


def _ranked(
    o: _Outputs,
    binary: Callable[..., Any],
    multiclass: Callable[[_Outputs], Any],
) -> float | None:
    """A metric of how probabilities rank rows: of the positive class's probability when binary
    (undefined when the rows hold one class only), else over every class (undefined unless every
    class is present)."""
    if o.proba is None or o.classes is None:
        return None
    if o.binary:
        positive = o.positive()
        if positive.min() == positive.max():
            return None
        return float(binary(positive, o.proba[:, o.column], sample_weight=o.weights))
    if not o.every_class_present():
        return None
    return float(multiclass(o))


def _roc_auc(o: _Outputs) -> float | None:
    return _ranked(
        o,
        skm.roc_auc_score,
        lambda o: skm.roc_auc_score(
            o.y_true, o.proba, multi_class="ovr", labels=o.classes, sample_weight=o.weights
        ),
    )


def _average_precision(o: _Outputs) -> float | None:
    return _ranked(
        o,
        skm.average_precision_score,
        lambda o: skm.average_precision_score(
            o.y_true, o.proba, average="macro", sample_weight=o.weights
        ),
    )


def _log_loss(o: _Outputs) -> float | None:
    if o.proba is None or o.classes is None:
        return None
    return float(skm.log_loss(o.y_true, o.proba, labels=o.classes, sample_weight=o.weights))


def _brier(o: _Outputs) -> float | None:
    """The classic Brier score for two classes; the sum over classes (scikit-learn's) for more."""
    if o.proba is None or o.classes is None:
        return None
    if o.binary:
        return float(np.average((o.proba[:, o.column] - o.positive()) ** 2, weights=o.weights))
    return float(skm.brier_score_loss(o.y_true, o.proba, labels=o.classes, sample_weight=o.weights))


_CLASSIFICATION: dict[str, Callable[[_Outputs], float | None]] = {
    "accuracy": lambda o: float(skm.accuracy_score(o.y_true, o.y_pred, sample_weight=o.weights)),
    "balanced_accuracy": lambda o: float(
        skm.balanced_accuracy_score(o.y_true, o.y_pred, sample_weight=o.weights)
    ),
    "f1": lambda o: o.averaged(skm.f1_score),
    "precision": lambda o: o.averaged(skm.precision_score),
    "recall": lambda o: o.averaged(skm.recall_score),
    "mcc": lambda o: float(skm.matthews_corrcoef(o.y_true, o.y_pred, sample_weight=o.weights)),
    "roc_auc": _roc_auc,
    "average_precision": _average_precision,
    "log_loss": _log_loss,
    "brier": _brier,
}

_REGRESSION: dict[str, Callable[[Any, Any, Any], float | None]] = {
    "rmse": lambda t, p, w: float(skm.root_mean_squared_error(t, p, sample_weight=w)),
    "mae": lambda t, p, w: float(skm.mean_absolute_error(t, p, sample_weight=w)),
    "r2": lambda t, p, w: float(skm.r2_score(t, p, sample_weight=w)),
    "mape": guarded_mape,
    "median_ae": lambda t, p, w: float(skm.median_absolute_error(t, p, sample_weight=w)),
}


def compute_metric(
    task: Task,
    name: str,
    y_true: Any,
    y_pred: Any,
    proba: np.ndarray[Any, Any] | None = None,
    classes: Any = None,
    positive: Any = None,
    weights: Any = None,
) -> float | None:
    """One metric of ``task`` (arguments as for :func:`compute_metrics`); ``None`` where it is
    not defined: a probability metric without probabilities, an AUC with a single class present,
    a percentage error with every true value zero."""
    w = _weights(weights)
    if task == "regression":
        return _REGRESSION[name](y_true, y_pred, w)
    return _CLASSIFICATION[name](_outputs(y_true, y_pred, proba, classes, positive, w))


def compute_metrics(
    task: Task,
    y_true: Any,
    y_pred: Any,
    proba: np.ndarray[Any, Any] | None = None,
    classes: Any = None,
    positive: Any = None,
    weights: Any = None,
) -> dict[str, float]:
    """All metrics of ``task`` for one set of predictions; those not defined are left out.

    For classification, ``proba`` holds one column per entry of ``classes`` (the fitted model's
    ``classes_``); binary metrics are about the ``positive`` class, by default ``classes[-1]`` as in
    scikit-learn.
    Multiclass precision/recall/F1 are macro averages, as are ROC-AUC (one class against the rest)
    and average precision. With ``weights`` (the rows' sample weights), every metric is the
    weighted one, as scikit-learn computes it with ``sample_weight``.
    """
    w = _weights(weights)
    if task == "regression":
        values = {name: function(y_true, y_pred, w) for name, function in _REGRESSION.items()}
    else:
        outputs = _outputs(y_true, y_pred, proba, classes, positive, w)
        values = {name: function(outputs) for name, function in _CLASSIFICATION.items()}
    return {name: value for name, value in values.items() if value is not None}


def _weights(weights: Any) -> np.ndarray[Any, Any] | None:
    return None if weights is None else np.asarray(weights, dtype=float)
