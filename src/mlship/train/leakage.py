"""Screening features for target leakage: columns that give the answer away.

A column that carries the target (the label re-encoded, a figure recorded after the outcome, a
timestamp later than the moment of prediction) makes every score look excellent and the model
useless in service, where that column is not known yet. Nothing in cross-validation or the test
set can tell: they are drawn from the same leaky table. So the run looks at the columns
themselves, and a suspect stops the "good fit" verdict until a person has explained it.

Before training, on the training part only and with the run's own folds (the test rows are never
looked at), every feature not declared fine (``leakage: {allow: [...]}``) is screened:

* **single-feature score**: a small model of that column alone, a shallow decision tree for a
  number or a date, the per-category target mean (or most common class) for a category, scored
  out of fold. A column that alone reaches ROC AUC :data:`AUC_SUSPECT`, R² :data:`R2_SUSPECT`, or
  accuracy :data:`ACCURACY_SUSPECT` where the majority class is at most
  :data:`ACCURACY_MAJORITY_MAX`, is suspect: real features almost never do that alone.
* **deterministic mapping**: for a category, string, boolean or integer column, the share of
  rows whose target is the most common target of their value, among values seen more than once.
  At :data:`PURITY_SUSPECT` or more, over at least :data:`PURITY_COVERAGE` of the rows, and well
  above what the majority target gives, the column is the target under another name.
* **recorded after prediction time**: with ``split.time``, a date feature at or after that
  time in :data:`LATER_SHARE` of the rows (and strictly later in most) was written after the
  moment the model is meant to predict at.

After training, the selected model's permutation importance (the evaluation's own) is read: one
column that dwarfs the rest (:data:`DOMINANCE_RATIO` times the next, :data:`DOMINANCE_SHARE` of
the total, and a material loss) is suspect too.

Screening fits one tiny model per column and fold on at most :data:`SCREEN_ROWS` rows per fold,
so it adds a fraction of a second to a run of a few hundred rows and a few columns.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import MutableMapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlship.errors import DataError
from mlship.evaluation.diagnosis import distrusted_verdict
from mlship.spec.models import ColumnType, PipelineSpec, Task
from mlship.train.splits import Fold

AUC_SUSPECT = 0.98
R2_SUSPECT = 0.95
ACCURACY_SUSPECT = 0.98
ACCURACY_MAJORITY_MAX = 0.9
PURITY_SUSPECT = 0.99
PURITY_COVERAGE = 0.9
# A mapping is only telling when its errors are a small part of the majority target's errors.
PURITY_ERROR_SHARE = 0.1
LATER_SHARE = 0.99
STRICTLY_LATER = 0.5
DOMINANCE_RATIO = 10.0
DOMINANCE_SHARE = 0.5
# The dominant column must cost at least this share of the way from the dummy baseline to a
# perfect score, so that a model that learned nothing does not raise an alarm over crumbs.
DOMINANCE_FLOOR = 0.05
RATIO_SHOWN = 1000
TREE_DEPTH = 4
TREE_LEAF = 5
SCREEN_ROWS = 20_000
MIN_ROWS = 20

Test = Literal[
    "single-feature score",
    "deterministic mapping",
    "recorded after prediction time",
    "dominant importance",
]
_CATEGORICAL: frozenset[ColumnType] = frozenset({"category", "string", "boolean"})
_MAPPABLE: frozenset[ColumnType] = frozenset({"category", "string", "boolean", "integer"})


@dataclass(frozen=True)
class Suspect:
    """One column one test found suspect, with the figure that decided it."""

    column: str
    test: Test
    measure: str
    """What ``figure`` is: ``roc_auc``, ``r2``, ``accuracy``, ``purity``, ``share at or after``
    or ``share of importance``."""
    figure: float
    threshold: float
    """The figure at which the test calls a column suspect."""
    sentence: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Screening:
    """What the screen found in one run."""

    mode: str
    allowed: tuple[str, ...] = ()
    screened: tuple[str, ...] = ()
    suspects: tuple[Suspect, ...] = ()
    seconds: float = 0.0

    @property
    def columns(self) -> list[str]:
        """The suspect columns, each once, in the order found."""
        return list(dict.fromkeys(s.column for s in self.suspects))

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "allowed": list(self.allowed),
            "screened": len(self.screened),
            "suspects": [s.as_dict() for s in self.suspects],
            "seconds": round(self.seconds, 4),
        }


class LeakageError(DataError):
    """``leakage: fail`` and a column is suspect: the run stops before anything is trained."""


def describe(suspects: Sequence[Suspect]) -> str:
    """One line per suspect: ``'col' (test): sentence``."""
    return "\n".join(f"  {s.column!r} ({s.test}): {s.sentence}" for s in suspects)


def _refuse(screening: Screening) -> None:
    if screening.mode == "fail" and screening.suspects:
        raise LeakageError(
            f"possible target leakage (leakage: fail), so nothing was trained or registered; "
            f"suspect column(s): {', '.join(screening.columns)}\n{describe(screening.suspects)}\n"
            "Remove the column, or list it under leakage.allow if it is truly known at "
            "prediction time."
        )


def screen(
    spec: PipelineSpec,
    X: pd.DataFrame,
    y: pd.Series,
    folds: Sequence[Fold],
    times: pd.Series | None = None,
) -> Screening:
    """Screen every feature of the training part ``X`` against its target ``y`` on ``folds``;
    ``times`` is the ``split.time`` column of the same rows, when the split has one.

    With ``leakage: fail`` a suspect raises :class:`LeakageError`; with ``off`` nothing is done.
    """
    mode = spec.leakage.mode
    allowed = tuple(spec.leakage.allow)
    if mode == "off":
        return Screening(mode, allowed)
    started = time.perf_counter()
    kinds = {c.name: c.type for c in spec.features if c.name not in allowed}
    names = tuple(name for name in X.columns if name in kinds)
    target = y.reset_index(drop=True)
    suspects: list[Suspect] = []
    for name in names:
        column = X[name].reset_index(drop=True)
        found = single_feature_score(spec.task, column, kinds[name], target, folds)
        if found is not None:
            suspects.append(found)
        if kinds[name] in _MAPPABLE:
            found = deterministic_mapping(spec.task, column, target)
            if found is not None:
                suspects.append(found)
        if kinds[name] == "datetime" and times is not None and name != spec.split.time:
            found = recorded_later(column, times.reset_index(drop=True), str(spec.split.time))
            if found is not None:
                suspects.append(found)
    screening = Screening(
        mode, allowed, names, tuple(suspects), seconds=time.perf_counter() - started
    )
    _refuse(screening)
    return screening


def review(screening: Screening, evaluation: dict[str, Any]) -> Screening:
    """The screening with what the selected model's permutation importance adds; with
    ``leakage: fail`` a suspect raises :class:`LeakageError` (before the model is registered)."""
    if screening.mode == "off":
        return screening
    found = dominant_importance(evaluation, screening.allowed)
    if found is None:
        return screening
    reviewed = Screening(
        screening.mode,
        screening.allowed,
        screening.screened,
        (*screening.suspects, found),
        screening.seconds,
    )
    _refuse(reviewed)
    return reviewed


def conclude(
    screening: Screening,
    evaluation: dict[str, Any],
    details: MutableMapping[str, Any] | None = None,
) -> Screening:
    """Review ``screening`` with the selected model's ``evaluation`` (:func:`review`; with
    ``leakage: fail`` a suspect raises here, before registering), record the result in the
    evaluation (:func:`mark`) and, given a run's JSON ``details``, under its ``leakage`` key;
    return the reviewed screening."""
    reviewed = review(screening, evaluation)
    if details is not None:
        details["leakage"] = reviewed.as_dict()
    mark(evaluation, reviewed)
    return reviewed


def mark(evaluation: dict[str, Any], screening: Screening) -> None:
    """Record ``screening`` in ``evaluation`` (the report's panel) and, while a suspect stands,
    put the distrust verdict in place of the fit verdict."""
    evaluation["leakage"] = screening.as_dict()
    diagnosis = evaluation.get("diagnosis") or {}
    if screening.suspects and "fit" in diagnosis:
        diagnosis["fit"] = distrusted_verdict(diagnosis["fit"], screening.columns)


# -- the tests ---------------------------------------------------------------------------------


def _numbers(column: pd.Series, kind: ColumnType) -> np.ndarray[Any, Any]:
    """A number or a date as floats (dates as seconds since 1970, UTC), missing values as NaN."""
    if kind == "datetime":
        with warnings.catch_warnings():  # text that is not a date is missing, said or not
            warnings.simplefilter("ignore", UserWarning)
            moments = pd.to_datetime(column, errors="coerce", utc=True)
        seconds = (moments - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        return np.asarray(seconds.to_numpy(dtype=float, na_value=np.nan))
    values = pd.to_numeric(column, errors="coerce")
    return np.asarray(values.to_numpy(dtype=float, na_value=np.nan))


def _codes(column: pd.Series) -> np.ndarray[Any, Any]:
    """Each distinct value (missing included) as a small whole number."""
    codes, _ = pd.factorize(column.astype("object"), use_na_sentinel=False)
    return np.asarray(codes)


def _auc(truth: np.ndarray[Any, Any], score: np.ndarray[Any, Any]) -> float:
    """ROC AUC of ``score`` for ``truth`` (0 or 1, both present) from the ranks (Mann-Whitney U,
    ties counted half): the same number as scikit-learn's, without its input checks, which cost
    more than the rest of the screen together."""
    ranks = rankdata(score)
    positives = truth == 1
    n_pos = int(positives.sum())
    n_neg = len(truth) - n_pos
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _r2(truth: np.ndarray[Any, Any], predicted: np.ndarray[Any, Any]) -> float:
    residual = float(np.sum((truth - predicted) ** 2))
    return 1.0 - residual / float(np.sum((truth - truth.mean()) ** 2))


def _sample(rows: np.ndarray[Any, Any], limit: int, seed: int) -> np.ndarray[Any, Any]:
    if len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))


def _fold_predictions(
    task: Task,
    x: np.ndarray[Any, Any],
    categorical: bool,
    target: np.ndarray[Any, Any],
    n_classes: int,
    train: np.ndarray[Any, Any],
    valid: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:
    """Out-of-fold predictions of one column alone: class probabilities (classification) or
    values (regression) for the ``valid`` rows, learned from the ``train`` rows."""
    if categorical:
        codes = x.astype(int)
        size = int(codes.max()) + 1
        if task == "regression":
            sums = np.bincount(codes[train], weights=target[train], minlength=size)
            counts = np.bincount(codes[train], minlength=size)
            means = np.where(counts > 0, sums / np.maximum(counts, 1), target[train].mean())
            return np.asarray(means[codes[valid]])
        table = np.zeros((size, n_classes))
        np.add.at(table, (codes[train], target[train].astype(int)), 1.0)
        prior = np.bincount(target[train].astype(int), minlength=n_classes) / len(train)
        totals = table.sum(axis=1, keepdims=True)
        shares = np.where(totals > 0, table / np.maximum(totals, 1.0), prior)
        return np.asarray(shares[codes[valid]])
    features = x.reshape(-1, 1)
    if task == "regression":
        tree = DecisionTreeRegressor(max_depth=TREE_DEPTH, min_samples_leaf=TREE_LEAF)
        tree.fit(features[train], target[train])
        return np.asarray(tree.predict(features[valid]))
    model = DecisionTreeClassifier(max_depth=TREE_DEPTH, min_samples_leaf=TREE_LEAF)
    model.fit(features[train], target[train].astype(int))
    proba = np.zeros((len(valid), n_classes))
    proba[:, model.classes_.astype(int)] = model.predict_proba(features[valid])
    return proba


@dataclass(frozen=True)
class SingleScore:
    """How well one column alone predicts the target, out of fold."""

    measure: str
    figure: float
    folds: int
    majority: float
    """The share of the most common class (0 for a regression)."""


def single_feature_figure(
    task: Task, column: pd.Series, kind: ColumnType, y: pd.Series, folds: Sequence[Fold]
) -> SingleScore | None:
    """The column alone, scored out of fold on ``folds``: the mean over the folds that can be
    scored, in ROC AUC (two classes), accuracy (more) or R² (regression)."""
    categorical = kind in _CATEGORICAL
    x = _codes(column).astype(float) if categorical else _numbers(column, kind)
    if not categorical and np.all(np.isnan(x)):
        return None
    if task == "classification":
        classes, target = np.unique(y.astype(str).to_numpy(), return_inverse=True)
        n_classes = len(classes)
        majority = float(np.bincount(target).max() / len(target))
        measure = "roc_auc" if n_classes == 2 else "accuracy"
    else:
        target = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
        n_classes, majority, measure = 0, 0.0, "r2"
    scores: list[float] = []
    for number, (fold_train, fold_valid) in enumerate(folds):
        train = _sample(np.asarray(fold_train), SCREEN_ROWS, number)
        valid = _sample(np.asarray(fold_valid), SCREEN_ROWS, number)
        if len(train) < MIN_ROWS or len(valid) < 2:
            continue
        predicted = _fold_predictions(task, x, categorical, target, n_classes, train, valid)
        truth = target[valid]
        if measure == "roc_auc":
            if len(np.unique(truth)) < 2:
                continue
            scores.append(_auc(truth, predicted[:, 1]))
        elif measure == "accuracy":
            scores.append(float(np.mean(predicted.argmax(axis=1) == truth)))
        elif np.var(truth) > 0:
            scores.append(_r2(truth, predicted))
    if not scores:
        return None
    return SingleScore(measure, float(np.mean(scores)), len(scores), majority)


def single_feature_score(
    task: Task, column: pd.Series, kind: ColumnType, y: pd.Series, folds: Sequence[Fold]
) -> Suspect | None:
    """Suspect when the column alone scores near perfect (:func:`single_feature_figure`)."""
    found = single_feature_figure(task, column, kind, y, folds)
    if found is None:
        return None
    measure, figure = found.measure, found.figure
    how = (
        "its per-category target means" if kind in _CATEGORICAL else "a shallow decision tree on it"
    )
    alone = f"{how}, alone, scored out of fold on {found.folds} fold(s)"
    if measure == "roc_auc" and figure >= AUC_SUSPECT:
        threshold = AUC_SUSPECT
        sentence = (
            f"{alone}, reaches ROC AUC {figure:.4f} (suspect at {AUC_SUSPECT}); real features "
            "rarely separate the classes that well on their own."
        )
    elif (
        measure == "accuracy"
        and figure >= ACCURACY_SUSPECT
        and found.majority <= ACCURACY_MAJORITY_MAX
    ):
        threshold = ACCURACY_SUSPECT
        sentence = (
            f"{alone}, reaches accuracy {figure:.4f} (suspect at {ACCURACY_SUSPECT}) where "
            f"always answering the most common class gives {found.majority:.4f}."
        )
    elif measure == "r2" and figure >= R2_SUSPECT:
        threshold = R2_SUSPECT
        sentence = (
            f"{alone}, reaches R² {figure:.4f} (suspect at {R2_SUSPECT}): it explains "
            "nearly all of the target by itself."
        )
    else:
        return None
    return Suspect(str(column.name), "single-feature score", measure, figure, threshold, sentence)


def deterministic_mapping(task: Task, column: pd.Series, y: pd.Series) -> Suspect | None:
    """Does each value of the column (seen more than once) stand for one target value?"""
    codes = _codes(column)
    _, target = np.unique(y.astype(str).to_numpy(), return_inverse=True)
    counts = np.bincount(codes)
    repeated = counts[codes] > 1
    coverage = float(repeated.mean()) if len(codes) else 0.0
    if coverage < PURITY_COVERAGE or len(np.unique(codes[repeated])) < 2:
        return None
    pairs = pd.DataFrame({"value": codes[repeated], "target": target[repeated]})
    modal = pairs.groupby(["value", "target"]).size().groupby(level="value").max()
    purity = float(modal.sum() / len(pairs))
    majority = float(np.bincount(target).max() / len(target))
    if purity < PURITY_SUSPECT or (1.0 - purity) > PURITY_ERROR_SHARE * (1.0 - majority):
        return None
    what = "class" if task == "classification" else "target value"
    sentence = (
        f"each of its {int((counts > 1).sum())} repeated values stands for one {what}: "
        f"{purity:.2%} of the rows they cover ({coverage:.0%} of all rows) have their value's "
        f"most common {what} (suspect at {PURITY_SUSPECT:.0%}), where the most common {what} "
        f"overall covers {majority:.2%}: the column looks like the target re-encoded."
    )
    return Suspect(
        str(column.name), "deterministic mapping", "purity", purity, PURITY_SUSPECT, sentence
    )


def recorded_later(column: pd.Series, times: pd.Series, time_name: str) -> Suspect | None:
    """Is the date at or after the prediction time (``split.time``) in nearly every row?"""
    if not (pd.api.types.is_datetime64_any_dtype(times) or times.dtype == object):
        return None
    moment = _numbers(column, "datetime")
    prediction = _numbers(times, "datetime")
    both = ~np.isnan(moment) & ~np.isnan(prediction)
    if both.sum() < MIN_ROWS:
        return None
    at_or_after = float(np.mean(moment[both] >= prediction[both]))
    later = float(np.mean(moment[both] > prediction[both]))
    if at_or_after < LATER_SHARE or later < STRICTLY_LATER:
        return None
    sentence = (
        f"it is at or after {time_name!r}, the time each row is predicted at, in "
        f"{at_or_after:.1%} of the {int(both.sum())} training rows that have both (strictly "
        f"later in {later:.1%}; suspect at {LATER_SHARE:.0%}): it was recorded after the "
        "prediction is made, so it is not known when it is needed."
    )
    return Suspect(
        str(column.name),
        "recorded after prediction time",
        "share at or after",
        at_or_after,
        LATER_SHARE,
        sentence,
    )


def dominant_importance(evaluation: dict[str, Any], allowed: Sequence[str]) -> Suspect | None:
    """Does one column's permutation importance dwarf every other's?"""
    importance = evaluation.get("importance") or {}
    columns = [
        (str(c["name"]), float(c["mean"]))
        for c in importance.get("columns", [])
        if c.get("mean") is not None and math.isfinite(c["mean"])
    ]
    if len(columns) < 2:
        return None
    ranked = sorted(columns, key=lambda item: -item[1])
    (top, value), (second, runner_up) = ranked[0], ranked[1]
    total = sum(max(v, 0.0) for _, v in ranked)
    fit = (evaluation.get("diagnosis") or {}).get("fit") or {}
    baseline = fit.get("baseline")
    bigger = bool(fit.get("greater_is_better", True))
    distance = (1.0 - baseline if bigger else baseline) if baseline is not None else None
    floor = DOMINANCE_FLOOR * abs(distance) if distance else 0.0
    if top in allowed or value <= 0 or value <= floor or total <= 0:
        return None
    share = value / total
    if share < DOMINANCE_SHARE or value < DOMINANCE_RATIO * max(runner_up, 0.0):
        return None
    times = value / runner_up if runner_up > 0 else math.inf
    ratio = f"{times:.0f} times" if times < RATIO_SHOWN else f"over {RATIO_SHOWN:,} times"
    metric = importance.get("metric", "the metric")
    sentence = (
        f"shuffling it on the test set costs the model {value:.4g} {metric}, {ratio} the next "
        f"column ({second!r}, {runner_up:.4g}) and {share:.0%} of all columns' importance "
        f"together (suspect at {DOMINANCE_RATIO:g} times the next and {DOMINANCE_SHARE:.0%}): "
        "the model leans on this one column."
    )
    return Suspect(
        top, "dominant importance", "share of importance", share, DOMINANCE_SHARE, sentence
    )
