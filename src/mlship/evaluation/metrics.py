"""Test-set metrics with percentile-bootstrap confidence intervals.

A single number from one test set hides how much it would move on another draw of the same size;
the interval says how far. Each resample draws the test rows with replacement, and is kept as a
matrix of counts (how often each row was drawn) rather than as copied rows. Every metric is then a
weighted sum over rows, so a thousand resamples cost a few matrix products instead of a thousand
calls into scikit-learn: well under a second for thousands of rows. The ranking metrics (ROC-AUC,
average precision) sort the scores once and accumulate the weights of tied scores together, which
is exactly how scikit-learn treats repeated rows. The point estimate is the same computation with
every row drawn once, and it equals :func:`mlship.train.metrics.compute_metrics` on the same
predictions.

Sample weights fit the same scheme: a row drawn twice with weight 1.5 counts 3, so with weights
each resample's counts are multiplied by them, and the point estimate is the weighted metric as
scikit-learn computes it with ``sample_weight``.

Classification resamples are stratified: each class keeps its count in every resample, so no
resample lacks a class (an AUC of a single class does not exist) and the interval reflects the
uncertainty of the model, not of the class mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

from mlship.json_values import plain, rounded
from mlship.spec.models import Task
from mlship.train.metrics import METRICS, positive_index

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
# Cells of one chunk of the resample matrix: about 8 MB of float64, whatever the test set's size.
_CHUNK_CELLS = 1_000_000

Values = dict[str, np.ndarray[Any, Any]]


def resample_weights(
    n_rows: int,
    resamples: int,
    *,
    seed: int,
    strata: Sequence[Any] | np.ndarray[Any, Any] | None = None,
) -> Iterator[np.ndarray[Any, Any]]:
    """Bootstrap resamples of ``n_rows`` rows as count matrices, a chunk of resamples at a time.

    Each yielded array has one row per resample and one column per test row, holding how many
    times that row was drawn; every resample draws ``n_rows`` rows. With ``strata`` (one label per
    row), each stratum is resampled on its own, so every resample keeps each stratum's count.
    The draws depend only on the arguments.
    """
    if n_rows <= 0:
        raise ValueError("cannot resample an empty test set")
    rng = np.random.default_rng(seed)
    if strata is None:
        groups = [np.arange(n_rows)]
    else:
        labels = np.asarray(strata)
        if len(labels) != n_rows:
            raise ValueError(f"{len(labels)} strata labels for {n_rows} rows")
        _, codes = np.unique(labels, return_inverse=True)
        groups = [np.flatnonzero(codes == code) for code in range(int(codes.max()) + 1)]
    chunk = max(1, min(resamples, _CHUNK_CELLS // n_rows))
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        weights = np.zeros((size, n_rows))
        for members in groups:
            count = len(members)
            draws = rng.integers(0, count, size=(size, count))
            flat = (draws + (np.arange(size) * count)[:, None]).ravel()
            weights[:, members] = np.bincount(flat, minlength=size * count).reshape(size, count)
        yield weights
        done += size


@dataclass(frozen=True)
class _Ranking:
    """The scores of one class sorted once, with the start of each run of tied scores."""

    order: np.ndarray[Any, Any]
    starts: np.ndarray[Any, Any]
    positive: np.ndarray[Any, Any]

    @classmethod
    def of(cls, scores: np.ndarray[Any, Any], positive: np.ndarray[Any, Any]) -> _Ranking:
        order = np.argsort(-scores, kind="stable")
        ranked = scores[order]
        starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
        return cls(order, starts, positive[order].astype(float))

    def auc_and_ap(
        self, weights: np.ndarray[Any, Any]
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """ROC-AUC and average precision for each resample, as scikit-learn defines them."""
        drawn = weights[:, self.order]
        hits = drawn * self.positive
        positives = np.add.reduceat(hits, self.starts, axis=1)
        negatives = np.add.reduceat(drawn - hits, self.starts, axis=1)
        true_pos, false_pos = np.cumsum(positives, axis=1), np.cumsum(negatives, axis=1)
        total_pos, total_neg = true_pos[:, -1], false_pos[:, -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            # A positive outranks the negatives below its score and ties with half of its own.
            below = total_neg[:, None] - false_pos + 0.5 * negatives
            auc = (positives * below).sum(axis=1) / (total_pos * total_neg)
            flagged = true_pos + false_pos
            precision = np.divide(true_pos, flagged, out=np.zeros_like(true_pos), where=flagged > 0)
            ap = (positives * precision).sum(axis=1) / total_pos
        return auc, ap


@dataclass(frozen=True)
class _Classification:
    truth: np.ndarray[Any, Any]  # one-hot true class, rows x classes
    predicted: np.ndarray[Any, Any]  # one-hot predicted class
    positive: int | None  # column of the positive class when binary
    row_log_loss: np.ndarray[Any, Any] | None
    row_brier: np.ndarray[Any, Any] | None
    rankings: list[_Ranking] | None  # per class; None when an AUC is not defined

    def values(self, weights: np.ndarray[Any, Any]) -> Values:
        drawn = weights.sum(axis=1)
        true_counts = weights @ self.truth
        predicted_counts = weights @ self.predicted
        hits = weights @ (self.truth * self.predicted)
        correct = hits.sum(axis=1)
        either = true_counts + predicted_counts
        recall = np.divide(hits, true_counts, out=np.zeros_like(hits), where=true_counts > 0)
        precision = np.divide(
            hits, predicted_counts, out=np.zeros_like(hits), where=predicted_counts > 0
        )
        f1 = np.divide(2 * hits, either, out=np.zeros_like(hits), where=either > 0)
        present = true_counts > 0
        values: Values = {
            "accuracy": correct / drawn,
            "balanced_accuracy": (recall * present).sum(axis=1) / present.sum(axis=1),
        }
        if self.positive is not None:
            values["f1"] = f1[:, self.positive]
            values["precision"] = precision[:, self.positive]
            values["recall"] = recall[:, self.positive]
        else:
            # Macro averages over the classes that occur among the true or predicted labels.
            seen = either > 0
            for name, per_class in (("f1", f1), ("precision", precision), ("recall", recall)):
                values[name] = (per_class * seen).sum(axis=1) / seen.sum(axis=1)
        covariance = correct * drawn - (true_counts * predicted_counts).sum(axis=1)
        spread = (drawn**2 - (predicted_counts**2).sum(axis=1)) * (
            drawn**2 - (true_counts**2).sum(axis=1)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            values["mcc"] = np.where(spread > 0, covariance / np.sqrt(spread), 0.0)
        if self.rankings is not None:
            pairs = [ranking.auc_and_ap(weights) for ranking in self.rankings]
            values["roc_auc"] = np.mean([auc for auc, _ in pairs], axis=0)
            values["average_precision"] = np.mean([ap for _, ap in pairs], axis=0)
        if self.row_log_loss is not None and self.row_brier is not None:
            values["log_loss"] = weights @ self.row_log_loss / drawn
            values["brier"] = weights @ self.row_brier / drawn
        values["f1_per_class"] = f1
        return values


def _one_hot(codes: np.ndarray[Any, Any], width: int) -> np.ndarray[Any, Any]:
    matrix = np.zeros((len(codes), width))
    matrix[np.arange(len(codes)), codes] = 1.0
    return matrix


def _codes(labels: np.ndarray[Any, Any], classes: list[Any], what: str) -> np.ndarray[Any, Any]:
    index = {label: code for code, label in enumerate(classes)}
    unknown = sorted({repr(plain(v)) for v in labels if plain(v) not in index})
    if unknown:
        raise ValueError(
            f"the {what} hold classes the model does not know: {', '.join(unknown[:5])}"
        )
    return np.array([index[plain(v)] for v in labels], dtype=int)


def _interval(
    distribution: np.ndarray[Any, Any], confidence: float
) -> tuple[float | None, float | None]:
    finite = distribution[np.isfinite(distribution)]
    if not len(finite):
        return None, None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return rounded(low), rounded(high)


def _bootstrap(
    values_of: Callable[[np.ndarray[Any, Any]], Values],
    n_rows: int,
    *,
    resamples: int,
    seed: int,
    strata: np.ndarray[Any, Any] | None,
    row_weights: np.ndarray[Any, Any] | None = None,
) -> tuple[Values, Values]:
    """The point values (every row once) and the bootstrap distribution of each value; with
    ``row_weights``, each row counts its weight times the number of times it was drawn."""
    scale = np.ones(n_rows) if row_weights is None else row_weights
    point = values_of(scale[None, :])
    chunks = [
        values_of(weights * scale)
        for weights in resample_weights(n_rows, resamples, seed=seed, strata=strata)
    ]
    distribution = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in point}
    return point, distribution


def _summary(
    task: Task,
    point: Values,
    distribution: Values,
    *,
    resamples: int,
    confidence: float,
    seed: int,
    stratified: bool,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, bigger in METRICS[task].items():
        low, high = _interval(distribution[name], confidence) if name in point else (None, None)
        value = rounded(point[name][0]) if name in point else None
        values[name] = {
            "value": value,
            "low": low if value is not None else None,
            "high": high if value is not None else None,
            "greater_is_better": bigger,
        }
    return {
        "method": "percentile bootstrap",
        "resamples": resamples,
        "confidence": confidence,
        "seed": seed,
        "stratified": stratified,
        "values": values,
    }


def _classification_data(
    y_true: Any,
    y_pred: Any,
    proba: np.ndarray[Any, Any] | None,
    class_list: list[Any],
    positive_label: Any,
) -> tuple[_Classification, np.ndarray[Any, Any], list[str]]:
    """The rows of one set of predictions as the resampled sums need them, the true class codes
    and what cannot be computed from them."""
    truth = _codes(np.asarray(y_true, dtype=object), class_list, "true values")
    predicted = _codes(np.asarray(y_pred, dtype=object), class_list, "predictions")
    k = len(class_list)
    binary = k == 2
    index = positive_index(class_list, positive_label)
    positive = index if binary else None
    notes: list[str] = []
    row_log_loss = row_brier = None
    rankings: list[_Ranking] | None = None
    if proba is not None:
        p = np.asarray(proba, dtype=float)
        eps = np.finfo(p.dtype).eps
        row_log_loss = -np.log(np.clip(p[np.arange(len(truth)), truth], eps, 1 - eps))
        one_hot = _one_hot(truth, k)
        # Two classes: the classic Brier score of one column; more: the sum over the classes.
        row_brier = ((p - one_hot) ** 2)[:, 1] if binary else ((p - one_hot) ** 2).sum(axis=1)
        if len(np.unique(truth)) == k:
            columns = [positive] if positive is not None else list(range(k))
            rankings = [_Ranking.of(p[:, c], truth == c) for c in columns]
        else:
            notes.append("ROC-AUC and average precision need every class in the test set.")
    else:
        notes.append(
            "The model gives no class probabilities, so ROC-AUC, average precision, "
            "log loss and the Brier score are not computed."
        )
    data = _Classification(
        truth=_one_hot(truth, k),
        predicted=_one_hot(predicted, k),
        positive=positive,
        row_log_loss=row_log_loss,
        row_brier=row_brier,
        rankings=rankings,
    )
    return data, truth, notes


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    proba: np.ndarray[Any, Any] | None,
    classes: Sequence[Any] | np.ndarray[Any, Any],
    *,
    positive_label: Any = None,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    weights: Any = None,
) -> dict[str, Any]:
    """Every classification metric with its interval, and F1 per class (weighted by the rows'
    sample ``weights`` when given; ``support`` stays a count of rows).

    ``proba`` has one column per entry of ``classes`` (the model's ``classes_``), or is ``None``
    for a model without probabilities, which leaves the probability metrics undefined (``None``).
    With two classes, precision, recall, F1 and average precision are those of ``positive_label``
    (by default the last class, as scikit-learn and :mod:`mlship.train.metrics` choose);
    otherwise they are macro averages.
    """
    class_list = [plain(c) for c in classes]
    data, truth, notes = _classification_data(y_true, y_pred, proba, class_list, positive_label)
    k = len(class_list)
    binary = k == 2
    positive_label = class_list[positive_index(class_list, positive_label)]
    point, distribution = _bootstrap(
        data.values,
        len(truth),
        resamples=resamples,
        seed=seed,
        strata=truth,
        row_weights=_row_weights(weights, len(truth)),
    )
    result = _summary(
        "classification",
        point,
        distribution,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        stratified=True,
    )
    support = np.bincount(truth, minlength=k)
    per_class = []
    for code, label in enumerate(class_list):
        low, high = _interval(distribution["f1_per_class"][:, code], confidence)
        per_class.append(
            {
                "label": label,
                "support": int(support[code]),
                "value": rounded(point["f1_per_class"][0, code]),
                "low": low,
                "high": high,
            }
        )
    result["positive_label"] = plain(positive_label) if binary else None
    result["per_class"] = {"f1": per_class}
    result["notes"] = notes
    return result


def _regression_values(
    truth: np.ndarray[Any, Any],
    predicted: np.ndarray[Any, Any],
    row_weights: np.ndarray[Any, Any] | None,
) -> Callable[[np.ndarray[Any, Any]], Values]:
    """Every regression metric of one set of predictions, for each resample's row counts."""
    error = truth - predicted
    absolute, squared = np.abs(error), error**2
    centred = truth - np.average(truth, weights=row_weights)
    nonzero = truth != 0
    percentage = absolute[nonzero] / np.abs(truth[nonzero])
    order = np.argsort(absolute, kind="stable")
    ranked = absolute[order]

    def values_of(weights: np.ndarray[Any, Any]) -> Values:
        drawn = weights.sum(axis=1)
        sse = weights @ squared
        total = weights @ (centred**2) - (weights @ centred) ** 2 / drawn
        with np.errstate(divide="ignore", invalid="ignore"):
            # A constant target has no variance to explain: scikit-learn scores 1 if perfect.
            r2 = np.where(total > 0, 1 - sse / total, np.where(sse == 0, 1.0, 0.0))
        cumulative = np.cumsum(weights[:, order], axis=1)
        lower = np.argmax(cumulative > np.floor((drawn - 1) / 2)[:, None], axis=1)
        upper = np.argmax(cumulative > np.floor(drawn / 2)[:, None], axis=1)
        values: Values = {
            "rmse": np.sqrt(sse / drawn),
            "mae": weights @ absolute / drawn,
            "r2": r2,
            "median_ae": (ranked[lower] + ranked[upper]) / 2,
        }
        if nonzero.any():
            kept = weights[:, nonzero]
            with np.errstate(divide="ignore", invalid="ignore"):
                values["mape"] = kept @ percentage / kept.sum(axis=1)
        return values

    return values_of


def regression_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    weights: Any = None,
) -> dict[str, Any]:
    """Every regression metric with its interval (weighted by the rows' sample ``weights`` when
    given).

    MAPE leaves out the rows whose true value is zero (they have no percentage error) and says how
    many it left out; with every true value zero it is undefined.
    """
    truth = np.asarray(y_true, dtype=float)
    error = truth - np.asarray(y_pred, dtype=float)
    nonzero = truth != 0
    row_weights = _row_weights(weights, len(truth))
    values_of = _regression_values(truth, np.asarray(y_pred, dtype=float), row_weights)
    point, distribution = _bootstrap(
        values_of, len(truth), resamples=resamples, seed=seed, strata=None, row_weights=row_weights
    )
    if row_weights is not None:
        # The median of weighted rows is scikit-learn's weighted percentile, not a middle row.
        point["median_ae"] = np.array(
            [skm.median_absolute_error(truth, truth - error, sample_weight=row_weights)]
        )
    result = _summary(
        "regression",
        point,
        distribution,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        stratified=False,
    )
    zeros = int((~nonzero).sum())
    notes = []
    if zeros:
        notes.append(
            f"MAPE leaves out {zeros:,} row{'s' if zeros > 1 else ''} whose true value is 0."
        )
    result["notes"] = notes
    return result


def _row_weights(weights: Any, n_rows: int) -> np.ndarray[Any, Any] | None:
    if weights is None:
        return None
    values = np.asarray(weights, dtype=float)
    if values.shape != (n_rows,):
        raise ValueError(f"{values.size} sample weights for {n_rows} rows")
    return values


@dataclass(frozen=True)
class ResampledMetrics:
    """Every metric of one set of predictions, computable for any row counts: what compares two
    models on the *same* resamples of the same rows (:mod:`mlship.evaluation.gate_stats`)."""

    values: Callable[[np.ndarray[Any, Any]], Values]
    n_rows: int
    strata: np.ndarray[Any, Any] | None
    """The true class codes, which classification resamples keep the counts of."""


def resampled_metrics(
    task: Task,
    y_true: Any,
    y_pred: Any,
    proba: np.ndarray[Any, Any] | None = None,
    classes: Sequence[Any] | np.ndarray[Any, Any] | None = None,
    *,
    positive_label: Any = None,
) -> ResampledMetrics:
    """The metrics of ``task`` on these predictions as a function of the rows' counts."""
    if task == "regression":
        truth = np.asarray(y_true, dtype=float)
        values = _regression_values(truth, np.asarray(y_pred, dtype=float), None)
        return ResampledMetrics(values, len(truth), None)
    if classes is None:
        raise ValueError("classification metrics need the model's classes")
    class_list = [plain(c) for c in classes]
    data, codes, _ = _classification_data(y_true, y_pred, proba, class_list, positive_label)
    return ResampledMetrics(data.values, len(codes), codes)
