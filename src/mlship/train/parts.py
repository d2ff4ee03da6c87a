"""Which rows a run trains on and which it tests on: the one place that splits a dataset.

The test set is split off before anything is fitted, and the split depends on the spec and the
rows only, so the stored dataset gives back the very rows a run held out (the model card scores
groups of them after the fact through :func:`holdout_part`). The training part carries what every
later step needs of it: its cross-validation folds (and nested CV's outer folds), its sample
weights, when its rows happened for a time-ordered split, and what screening its features for
target leakage found, which with ``leakage: fail`` stops the run here, before any fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlship.errors import DataError
from mlship.evaluation.backtest import TimeOrder, time_order
from mlship.spec.loader import LoadedSpec
from mlship.spec.models import PipelineSpec
from mlship.train import leakage
from mlship.train.metrics import positive_index
from mlship.train.nested import OuterFold, lay_out
from mlship.train.observer import RunObserver
from mlship.train.refit import Labelled
from mlship.train.splits import (
    Fold,
    Index,
    cv_folds,
    nested_cv_folds,
    resolve_method,
    train_test_indices,
)
from mlship.train.weighting import check_target, check_weights, rows


def target_of(spec: PipelineSpec, frame: pd.DataFrame) -> pd.Series:
    """The target column of ``frame``: for a classifier as objects (or booleans), refused when
    it has a single class or its declared positive class cannot be the positive one."""
    target = spec.target.name
    y = frame[target]
    if spec.task != "classification":
        return y
    y = y.astype("object") if spec.target.type != "boolean" else y.astype(bool)
    if y.nunique() < 2:
        raise DataError(f"target column {target!r} has a single class; nothing to learn")
    positive = spec.target.positive
    if positive is not None:
        classes = sorted(y.unique().tolist(), key=str)
        try:
            positive_index(classes, positive)
        except ValueError:
            raise DataError(
                f"target column {target!r}: positive class {positive!r} never occurs; "
                f"the classes are {', '.join(map(str, classes))}"
            ) from None
        if len(classes) != 2:
            raise DataError(
                f"target column {target!r}: a positive class is for two classes; "
                f"found {len(classes)}"
            )
    return y


@dataclass(frozen=True)
class Parts:
    """The training part with its folds, and the test set."""

    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    folds: list[Fold]
    outer: list[OuterFold]
    """Nested cross-validation's outer folds (empty unless the split asks for it); their folds
    follow the run's own in ``every_fold``."""
    every_fold: list[Fold]
    labelled: Labelled
    """Every row, for the fit that ships (``refit: all``)."""
    screening: leakage.Screening
    """What screening the training part's features for target leakage found."""
    time_order: TimeOrder | None = None
    """When the rows happened, for a timeseries split: the folds and the test set are judged in
    time order."""
    w_train: np.ndarray[Any, Any] | None = None
    """The training rows' sample weights (``None`` without a weight column)."""
    w_test: np.ndarray[Any, Any] | None = None


@dataclass(frozen=True)
class Holdout:
    """The test rows of a dataset, every column of them, and their target."""

    frame: pd.DataFrame
    y: pd.Series


def _divide(
    spec: PipelineSpec, frame: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series, Index, Index]:
    """The frame (positions as index), its target, and the positions of the training rows and
    of the test rows: the one place that decides which rows a run of ``spec`` tests on."""
    frame = frame.reset_index(drop=True)
    y = target_of(spec, frame)
    train_rows, test_rows = train_test_indices(frame, y, spec.split, spec.task)
    return frame, y, train_rows, test_rows


def holdout_part(spec: PipelineSpec, frame: pd.DataFrame) -> Holdout:
    """The test set a run of ``spec`` on the dataset ``frame`` scored its model on.

    The split depends on the spec and the rows only, so the stored dataset gives back the very
    rows the run held out: what a model card needs to score groups of them after the fact.
    """
    frame, y, _, test_rows = _divide(spec, frame)
    return Holdout(
        frame.iloc[test_rows].reset_index(drop=True), y.iloc[test_rows].reset_index(drop=True)
    )


@dataclass(frozen=True)
class TrainingPart:
    """A run's training rows (features only), their target, CV folds and sample weights."""

    X: pd.DataFrame
    y: pd.Series
    folds: list[Fold]
    weights: np.ndarray[Any, Any] | None


def training_part(spec: PipelineSpec, frame: pd.DataFrame) -> TrainingPart:
    """The training part and folds a run of ``spec`` on the dataset ``frame`` cross-validated
    its candidates on: the same rows and folds, for work done on a run after the fact."""
    frame, y, train_rows, _ = _divide(spec, frame)
    train_frame = frame.iloc[train_rows].reset_index(drop=True)
    y_train = y.iloc[train_rows].reset_index(drop=True)
    weights = None
    if spec.weight is not None:
        weights = rows(frame[spec.weight.name].to_numpy(dtype=float), train_rows)
    features = [c.name for c in spec.features]
    folds = cv_folds(train_frame, y_train, spec.split, spec.task)
    return TrainingPart(train_frame[features], y_train, folds, weights)


def split_parts(loaded: LoadedSpec, frame: pd.DataFrame, observer: RunObserver) -> Parts:
    """Training features and target, test features and target, the CV folds, and the leakage
    screen of the training part on them (which stops the run here with ``leakage: fail``)."""
    spec = loaded.spec
    frame, y, train_rows, test_rows = _divide(spec, frame)
    train_frame = frame.iloc[train_rows].reset_index(drop=True)
    y_train = y.iloc[train_rows].reset_index(drop=True)
    features = [c.name for c in spec.features]
    X_test = frame.iloc[test_rows][features].reset_index(drop=True)
    y_test = y.iloc[test_rows].reset_index(drop=True)
    folds = cv_folds(train_frame, y_train, spec.split, spec.task)
    nested = []
    if spec.split.nested:
        nested = nested_cv_folds(train_frame, y_train, spec.split, spec.task)
    every_fold, outer = lay_out(folds, nested)
    timed = None
    if resolve_method(spec.split, spec.task) == "timeseries":
        timed = time_order(frame, spec.split, train_rows, test_rows)
    check_target(spec.target.name, spec.target.target_transform, y_train)
    weights = w_train = w_test = None
    if spec.weight is not None:
        weights = frame[spec.weight.name].to_numpy(dtype=float)
        w_train, w_test = rows(weights, train_rows), rows(weights, test_rows)
        check_weights(spec.weight.name, w_train, "training part")
        check_weights(spec.weight.name, w_test, "test set")
    time = spec.split.time
    times = frame[time] if time is not None and time in frame.columns else None
    labelled = Labelled(frame[features], y, train_rows, times, weights)
    observer.stage(f"Screening {len(features)} features for target leakage")
    train_times = train_frame.get(time) if time else None
    screening = leakage.screen(spec, train_frame[features], y_train, folds, train_times)
    return Parts(
        train_frame[features],
        y_train,
        X_test,
        y_test,
        folds,
        outer,
        every_fold,
        labelled,
        screening,
        time_order=timed,
        w_train=w_train,
        w_test=w_test,
    )


__all__ = [
    "Holdout",
    "Parts",
    "TrainingPart",
    "holdout_part",
    "split_parts",
    "target_of",
    "training_part",
]
