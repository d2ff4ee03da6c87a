"""The threshold metrics of a binary classifier, computed from its four weighted counts.

Threshold tuning scores every candidate cut-off on every fold: 200 cut-offs times the folds.
scikit-learn's metric functions check and encode their input on each call, which costs about
15 ms on a thousand rows, so the scores alone took most of a small run's tuning. Every metric
the tuner offers is a function of the 2x2 confusion counts, which numpy gives in microseconds.
Each function here takes the arguments of the scikit-learn function it stands for
(``y_true, y_pred``, ``pos_label``, ``zero_division``, ``sample_weight``) and returns the same
number, which ``tests/unit/test_threshold_scores.py`` checks against scikit-learn on generated
labels and weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _counts(y_true: Any, y_pred: Any, pos_label: Any, sample_weight: Any) -> tuple[float, ...]:
    """True positives, false positives, false negatives and true negatives, weighted."""
    truth, predicted = np.asarray(y_true), np.asarray(y_pred)
    if pos_label is None:
        # The metrics that do not name a positive class treat both classes alike, so any
        # class may play it; the larger label is scikit-learn's positive class by default.
        # Callers that score often pass one: sorting the labels costs more than the counting.
        pos_label = np.union1d(truth, predicted)[-1]
    actual, said = truth == pos_label, predicted == pos_label
    weight = np.ones(len(truth)) if sample_weight is None else np.asarray(sample_weight, float)
    tp = float(weight[actual & said].sum())
    fp = float(weight[~actual & said].sum())
    fn = float(weight[actual & ~said].sum())
    tn = float(weight[~actual & ~said].sum())
    return tp, fp, fn, tn


def _ratio(numerator: float, denominator: float, zero_division: float) -> float:
    return numerator / denominator if denominator > 0 else float(zero_division)


def _of_positive(
    formula: Callable[[float, float, float], tuple[float, float]],
) -> Callable[..., float]:
    """A metric of the ``pos_label`` class: ``formula(tp, fp, fn)`` gives its numerator and
    denominator, and ``zero_division`` stands in when the denominator is zero."""

    def score(
        y_true: Any, y_pred: Any, *, pos_label: Any = 1, zero_division: float = 0.0,
        sample_weight: Any = None,
    ) -> float:  # fmt: skip
        tp, fp, fn, _ = _counts(y_true, y_pred, pos_label, sample_weight)
        return _ratio(*formula(tp, fp, fn), zero_division)

    return score


precision = _of_positive(lambda tp, fp, fn: (tp, tp + fp))
recall = _of_positive(lambda tp, fp, fn: (tp, tp + fn))
f1 = _of_positive(lambda tp, fp, fn: (2 * tp, 2 * tp + fp + fn))


def accuracy(
    y_true: Any, y_pred: Any, *, pos_label: Any = None, sample_weight: Any = None
) -> float:
    tp, fp, fn, tn = _counts(y_true, y_pred, pos_label, sample_weight)
    return _ratio(tp + tn, tp + fp + fn + tn, 0.0)


def balanced_accuracy(
    y_true: Any, y_pred: Any, *, pos_label: Any = None, sample_weight: Any = None
) -> float:
    """The mean recall of the classes present in ``y_true`` (a class never true is left out,
    as scikit-learn leaves it out with a warning)."""
    tp, fp, fn, tn = _counts(y_true, y_pred, pos_label, sample_weight)
    recalls = [tp / (tp + fn)] if tp + fn > 0 else []
    recalls += [tn / (tn + fp)] if tn + fp > 0 else []
    return float(np.mean(recalls)) if recalls else 0.0


def mcc(y_true: Any, y_pred: Any, *, pos_label: Any = None, sample_weight: Any = None) -> float:
    """Matthews' correlation; 0 when a row or column of the counts is empty."""
    tp, fp, fn, tn = _counts(y_true, y_pred, pos_label, sample_weight)
    denominator = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return (tp * tn - fp * fn) / float(np.sqrt(denominator)) if denominator > 0 else 0.0


SCORES: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "balanced_accuracy": balanced_accuracy,
    "f1": f1,
    "precision": precision,
    "recall": recall,
    "mcc": mcc,
}
"""Each metric threshold tuning can maximise, by the name a spec gives it."""

POSITIVE_METRICS = ("f1", "precision", "recall")
"""The metrics of one class, the ``pos_label`` they are given; the others treat both alike."""
