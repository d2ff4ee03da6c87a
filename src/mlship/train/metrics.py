"""Metrics: one function computes every score of a task from a single set of predictions.

Predicting once per fold and deriving all metrics from it is cheaper than scikit-learn scorers,
which predict again for each metric.
"""

from __future__ import annotations

from typing import Any

import numpy as np
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
        "roc_auc": True,
        "average_precision": True,
        "log_loss": False,
    },
    "regression": {"rmse": False, "mae": False, "r2": True},
}

# Metrics computed from predicted probabilities, so every candidate must offer predict_proba.
PROBABILITY_METRICS = frozenset({"roc_auc", "average_precision", "log_loss"})


def greater_is_better(task: Task, metric: str) -> bool:
    return METRICS[task][metric]


def compute_metrics(
    task: Task,
    y_true: Any,
    y_pred: Any,
    proba: np.ndarray[Any, Any] | None = None,
    classes: Any = None,
) -> dict[str, float]:
    """All metrics of ``task`` for one set of predictions.

    For classification, ``proba`` holds one column per entry of ``classes`` (the fitted model's
    ``classes_``); binary metrics treat ``classes[-1]`` as the positive class, as scikit-learn does.
    Multiclass precision/recall/F1 are macro averages.
    """
    if task == "regression":
        return {
            "rmse": float(skm.root_mean_squared_error(y_true, y_pred)),
            "mae": float(skm.mean_absolute_error(y_true, y_pred)),
            "r2": float(skm.r2_score(y_true, y_pred)),
        }
    binary = classes is not None and len(classes) == 2
    average = "binary" if binary else "macro"
    pos_label = classes[-1] if binary else 1
    result = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
        "f1": float(
            skm.f1_score(y_true, y_pred, average=average, pos_label=pos_label, zero_division=0)
        ),
        "precision": float(
            skm.precision_score(
                y_true, y_pred, average=average, pos_label=pos_label, zero_division=0
            )
        ),
        "recall": float(
            skm.recall_score(y_true, y_pred, average=average, pos_label=pos_label, zero_division=0)
        ),
    }
    if proba is not None and classes is not None:
        y_array = np.asarray(y_true)
        if binary:
            positive = (y_array == classes[-1]).astype(int)
            if positive.min() != positive.max():
                result["roc_auc"] = float(skm.roc_auc_score(positive, proba[:, 1]))
                result["average_precision"] = float(
                    skm.average_precision_score(positive, proba[:, 1])
                )
        elif len(np.unique(y_array)) == len(classes):
            result["roc_auc"] = float(
                skm.roc_auc_score(y_array, proba, multi_class="ovr", labels=list(classes))
            )
        result["log_loss"] = float(skm.log_loss(y_array, proba, labels=list(classes)))
    return result
