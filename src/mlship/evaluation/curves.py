"""The curves of a test set as plain JSON-able dicts: confusion matrix, ROC, precision-recall and
calibration for classifiers; predicted against actual values and residuals for regressors.

Curves are kept small enough to store with every run and draw inline: a curve has at most
:data:`MAX_CURVE_POINTS` points, chosen evenly along its length so its shape survives, and the
regression scatter shows a seeded sample of at most :data:`MAX_SCATTER_POINTS` rows. With two
classes the curves are those of the positive class; with more, one curve per class against the
rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from mlship.json_values import plain, rounded, rounded_list

MAX_CURVE_POINTS = 200
MAX_SCATTER_POINTS = 500
CALIBRATION_BINS = 10


def downsample(
    xs: np.ndarray[Any, Any], ys: np.ndarray[Any, Any], max_points: int = MAX_CURVE_POINTS
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """At most ``max_points`` points of a polyline, evenly spaced along its length, ends kept.

    Spacing by length rather than by index keeps the corners of a curve whose points crowd in one
    place (a ROC curve's thousands of thresholds near the origin, say).
    """
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if len(xs) <= max_points:
        return xs, ys
    steps = np.hypot(np.diff(xs), np.diff(ys))
    along = np.r_[0.0, np.cumsum(steps)]
    if along[-1] == 0:
        keep = np.linspace(0, len(xs) - 1, max_points).round().astype(int)
    else:
        targets = np.linspace(0.0, along[-1], max_points)
        keep = np.searchsorted(along, targets).clip(0, len(xs) - 1)
    keep = np.unique(np.r_[0, keep, len(xs) - 1])
    return xs[keep], ys[keep]


def _curve_classes(
    classes: Sequence[Any] | np.ndarray[Any, Any], positive_label: Any
) -> list[tuple[int, Any]]:
    labels = [plain(c) for c in classes]
    if len(labels) == 2:
        label = labels[-1] if positive_label is None else plain(positive_label)
        return [(labels.index(label), label)]
    return list(enumerate(labels))


def confusion(
    y_true: Any, y_pred: Any, classes: Sequence[Any] | np.ndarray[Any, Any]
) -> dict[str, Any]:
    """Counts of true class (rows) against predicted class (columns), and each row as shares of
    its true class (the recall of each class on the diagonal)."""
    labels = [plain(c) for c in classes]
    counts = skm.confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=list(classes))
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    return {
        "labels": labels,
        "counts": counts.astype(int).tolist(),
        "normalized": [rounded_list(row) for row in shares],
    }


def roc(
    y_true: Any,
    proba: np.ndarray[Any, Any],
    classes: Sequence[Any] | np.ndarray[Any, Any],
    positive_label: Any = None,
    weights: Any = None,
) -> dict[str, Any]:
    """False positive rate against true positive rate, with the area under each curve (of
    weighted rows, with sample ``weights``)."""
    truth = np.asarray(y_true)
    series = []
    for column, label in _curve_classes(classes, positive_label):
        target = truth == classes[column]
        if target.all() or not target.any():
            continue
        fpr, tpr, _ = skm.roc_curve(target, proba[:, column], sample_weight=weights)
        area = skm.auc(fpr, tpr)
        fpr, tpr = downsample(fpr, tpr)
        series.append(
            {
                "label": label,
                "auc": rounded(area),
                "fpr": rounded_list(fpr),
                "tpr": rounded_list(tpr),
            }
        )
    return {"series": series}


def precision_recall(
    y_true: Any,
    proba: np.ndarray[Any, Any],
    classes: Sequence[Any] | np.ndarray[Any, Any],
    positive_label: Any = None,
    weights: Any = None,
) -> dict[str, Any]:
    """Recall against precision, with each curve's average precision and the share of positives
    (the precision of guessing at random); of weighted rows, with sample ``weights``."""
    truth = np.asarray(y_true)
    series = []
    for column, label in _curve_classes(classes, positive_label):
        target = truth == classes[column]
        if target.all() or not target.any():
            continue
        scores = proba[:, column]
        precision, recall, _ = skm.precision_recall_curve(target, scores, sample_weight=weights)
        average = skm.average_precision_score(target, scores, sample_weight=weights)
        recall, precision = downsample(recall[::-1], precision[::-1])
        series.append(
            {
                "label": label,
                "average_precision": rounded(average),
                "prevalence": rounded(np.average(target, weights=weights)),
                "recall": rounded_list(recall),
                "precision": rounded_list(precision),
            }
        )
    return {"series": series}


def calibration(
    y_true: Any,
    proba: np.ndarray[Any, Any],
    classes: Sequence[Any] | np.ndarray[Any, Any],
    positive_label: Any = None,
) -> dict[str, Any]:
    """Mean predicted probability against the observed share of the class, in equal-width bins
    of the predicted probability; empty bins are left out and each bin says how many rows it has.
    """
    truth = np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    series = []
    for column, label in _curve_classes(classes, positive_label):
        target = (truth == classes[column]).astype(int)
        scores = proba[:, column]
        observed, predicted = calibration_curve(
            target, scores, n_bins=CALIBRATION_BINS, strategy="uniform"
        )
        # The same binning as calibration_curve, for the row count behind each point.
        counts = np.bincount(np.searchsorted(edges[1:-1], scores), minlength=CALIBRATION_BINS)
        series.append(
            {
                "label": label,
                "predicted": rounded_list(predicted),
                "observed": rounded_list(observed),
                "count": [int(c) for c in counts[counts > 0]],
            }
        )
    return {"bins": CALIBRATION_BINS, "strategy": "uniform", "series": series}


def regression_points(
    y_true: Any, y_pred: Any, *, seed: int, max_points: int = MAX_SCATTER_POINTS
) -> dict[str, Any]:
    """Actual values, predictions and residuals (actual minus predicted) of a seeded sample of the
    test rows, for the predicted-against-actual and residual charts."""
    actual = np.asarray(y_true, dtype=float)
    predicted = np.asarray(y_pred, dtype=float)
    rows = np.arange(len(actual))
    if len(rows) > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_points, replace=False))
    residual = actual - predicted
    return {
        "total": len(actual),
        "shown": len(rows),
        "actual": rounded_list(actual[rows]),
        "predicted": rounded_list(predicted[rows]),
        "residual": rounded_list(residual[rows]),
        "residual_mean": rounded(residual.mean()) if len(residual) else None,
        "residual_std": rounded(residual.std()) if len(residual) else None,
    }
