"""How rows are divided: the test set scored once at the end, and the folds of cross-validation.

Everything here works on row positions (numpy arrays of integers into the frame it is given) and
is decided by the spec's ``split`` alone, so the same data and seed give the same split on any
machine:

* The test set (:func:`train_test_indices`) is a random share of the rows, stratified by class
  for classification when ``stratify``; whole groups when ``group`` is set (no group on both
  sides); and for ``timeseries`` the latest rows by ``time``, so the test set is the future.
* The folds (:func:`cv_folds`) cover the training part: k-fold (stratified by class when the
  method is ``stratified_kfold``, the default for classification), repeated with reshuffled folds
  when ``repeats`` > 1; group k-fold (stratified group k-fold for classification) when ``group``
  is set; expanding-window time series folds ordered by ``time``; or, for ``holdout``, a single
  train/validation split with the same share as the test set.
* Nested cross-validation (:func:`nested_cv_folds`) gives outer folds over the training part,
  each with its own inner folds over its training rows.

A split that cannot be made says which column is at fault and why (:class:`DataError`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    RepeatedKFold,
    RepeatedStratifiedKFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

from mlship.errors import DataError
from mlship.spec.models import Task
from mlship.spec.training import Split, SplitMethod

Index = np.ndarray[Any, np.dtype[np.intp]]
Fold = tuple[Index, Index]


@dataclass(frozen=True)
class NestedFold:
    """One outer fold of nested cross-validation.

    ``train`` and ``valid`` are the outer fold's rows; ``inner`` are folds over ``train`` only,
    for tuning. Every index is a position in the frame given to :func:`nested_cv_folds`.
    """

    train: Index
    valid: Index
    inner: list[Fold]


def resolve_method(split: Split, task: Task) -> SplitMethod:
    """The split method in force: the spec's, or stratified k-fold for classification, group
    k-fold when a ``group`` is set, and k-fold otherwise."""
    if split.method is not None:
        return split.method
    if split.group is not None:
        return "group_kfold"
    return "stratified_kfold" if task == "classification" else "kfold"


def train_test_indices(
    frame: pd.DataFrame, y: Any, split: Split, task: Task
) -> tuple[Index, Index]:
    """Positions of the training rows and of the test rows (``split.holdout`` of them).

    ``frame`` must hold the ``group`` and ``time`` columns the split names; ``y`` is the target.
    """
    n = len(frame)
    positions = np.arange(n, dtype=np.intp)
    if resolve_method(split, task) == "timeseries":
        times = time_values(frame, split)
        train, test = _time_cut(times, positions, split.holdout, split.time or "", "test set")
        return train, test
    if split.group is not None:
        groups = _group_values(frame, split.group, at_least=2, purpose="a test split")
        splitter = GroupShuffleSplit(n_splits=1, test_size=split.holdout, random_state=split.seed)
        train, test = next(splitter.split(positions, groups=groups))
        return _sorted(train), _sorted(test)
    stratify = None
    if task == "classification" and split.stratify:
        labels = _labels(y)
        _require_class_rows(labels, 2, "a stratified test split", y)
        stratify = labels
    train, test = train_test_split(
        positions, test_size=split.holdout, random_state=split.seed, stratify=stratify
    )
    return _sorted(train), _sorted(test)


def cv_folds(frame: pd.DataFrame, y: Any, split: Split, task: Task) -> list[Fold]:
    """(train, validation) positions of every cross-validation fold over ``frame``.

    Repeated k-fold lists the folds of each repeat in turn (``folds * repeats`` of them).
    """
    return _folds(frame, y, split, task, split.seed, split.repeats)


def nested_cv_folds(frame: pd.DataFrame, y: Any, split: Split, task: Task) -> list[NestedFold]:
    """Outer folds over ``frame`` (not repeated), each with inner folds (``cv_folds`` of its own
    training rows, repeated as the spec says, seeded by the outer fold's number)."""
    nested: list[NestedFold] = []
    for number, (train, valid) in enumerate(_folds(frame, y, split, task, split.seed, 1)):
        part = frame.iloc[train].reset_index(drop=True)
        part_y = _take(y, train)
        seed = split.seed + number + 1
        try:
            inner = _folds(part, part_y, split, task, seed, split.repeats)
        except DataError as exc:
            raise DataError(f"outer fold {number + 1} of nested cross-validation: {exc}") from None
        nested.append(
            NestedFold(
                train=train,
                valid=valid,
                inner=[(train[a], train[b]) for a, b in inner],
            )
        )
    return nested


def _folds(
    frame: pd.DataFrame, y: Any, split: Split, task: Task, seed: int, repeats: int
) -> list[Fold]:
    method = resolve_method(split, task)
    if method == "timeseries":
        return _time_folds(time_values(frame, split), split.folds, split.time or "")
    if method == "holdout":
        return [_holdout_fold(frame, y, split, task, seed)]
    stratified = task == "classification" and method != "kfold"
    if split.group is not None:
        return _group_folds(frame, y, split, stratified, seed, repeats)
    n = len(frame)
    if n < split.folds:
        raise DataError(f"{n} rows cannot be divided into {split.folds} folds")
    positions = np.arange(n, dtype=np.intp)
    if stratified:
        labels = _labels(y)
        _require_class_rows(
            labels, split.folds, f"stratified {split.folds}-fold cross-validation", y
        )
        stratified_splitter: StratifiedKFold | RepeatedStratifiedKFold
        if repeats > 1:
            stratified_splitter = RepeatedStratifiedKFold(
                n_splits=split.folds, n_repeats=repeats, random_state=seed
            )
        else:
            stratified_splitter = StratifiedKFold(
                n_splits=split.folds, shuffle=True, random_state=seed
            )
        return _as_folds(stratified_splitter.split(positions, labels))
    plain: KFold | RepeatedKFold
    if repeats > 1:
        plain = RepeatedKFold(n_splits=split.folds, n_repeats=repeats, random_state=seed)
    else:
        plain = KFold(n_splits=split.folds, shuffle=True, random_state=seed)
    return _as_folds(plain.split(positions))


def _group_folds(
    frame: pd.DataFrame, y: Any, split: Split, stratified: bool, seed: int, repeats: int
) -> list[Fold]:
    """Group k-fold (stratified for classification); each repeat reshuffles the groups."""
    assert split.group is not None
    n = len(frame)
    positions = np.arange(n, dtype=np.intp)
    groups = _group_values(
        frame, split.group, at_least=split.folds, purpose=f"{split.folds}-fold cross-validation"
    )
    target = np.zeros(n, dtype=np.intp)
    if stratified:
        target = _labels(y)
        _require_class_rows(
            target, split.folds, f"stratified {split.folds}-fold cross-validation", y
        )
    folds: list[Fold] = []
    for repeat in range(repeats):
        splitter: StratifiedGroupKFold | GroupKFold
        if stratified:
            splitter = StratifiedGroupKFold(
                n_splits=split.folds, shuffle=True, random_state=seed + repeat
            )
        else:
            splitter = GroupKFold(n_splits=split.folds, shuffle=True, random_state=seed + repeat)
        folds.extend(_as_folds(splitter.split(positions, target, groups=groups)))
    return folds


def _holdout_fold(frame: pd.DataFrame, y: Any, split: Split, task: Task, seed: int) -> Fold:
    """A single train/validation split of the training part, made like the test split."""
    n = len(frame)
    positions = np.arange(n, dtype=np.intp)
    if split.group is not None:
        groups = _group_values(frame, split.group, at_least=2, purpose="a validation split")
        splitter = GroupShuffleSplit(n_splits=1, test_size=split.holdout, random_state=seed)
        train, valid = next(splitter.split(positions, groups=groups))
        return _sorted(train), _sorted(valid)
    stratify = None
    if task == "classification" and split.stratify:
        labels = _labels(y)
        _require_class_rows(labels, 2, "a stratified validation split", y)
        stratify = labels
    train, valid = train_test_split(
        positions, test_size=split.holdout, random_state=seed, stratify=stratify
    )
    return _sorted(train), _sorted(valid)


# ---- time series ---------------------------------------------------------------------------


def time_values(frame: pd.DataFrame, split: Split) -> np.ndarray[Any, Any]:
    """The ``time`` column as numbers that order the rows (nanoseconds since the epoch for
    date/times, naive in UTC)."""
    name = split.time
    if name is None:
        raise DataError("split method timeseries needs `time`: the column that orders rows")
    series = _column(frame, name, "time")
    missing = int(series.isna().sum())
    if missing:
        raise DataError(
            f"time column {name!r} has {missing} missing value(s); every row needs a time "
            "to be placed before or after the others"
        )
    if pd.api.types.is_datetime64_any_dtype(series):
        stamps = pd.to_datetime(series, utc=True)
        return stamps.dt.tz_localize(None).astype("datetime64[ns]").astype("int64").to_numpy()
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        raise DataError(
            f"time column {name!r} holds {series.dtype} values; it must hold dates/times or numbers"
        )
    return series.astype("float64").to_numpy()


def _time_cut(
    times: np.ndarray[Any, Any], positions: Index, share: float, column: str, purpose: str
) -> Fold:
    """Rows before and from the time at which the last ``share`` of rows begins.

    Rows with the same time stay on one side, so every row of the later part is strictly later
    than every row of the earlier part.
    """
    ordered = np.sort(times[positions], kind="stable")
    count = len(ordered)
    start = count - max(1, math.ceil(share * count))
    cut = ordered[start]
    later = times[positions] >= cut
    if later.all():
        raise DataError(
            f"time column {column!r}: the latest {share:.0%} of rows start at the earliest "
            f"time, so nothing is earlier than the {purpose}"
        )
    return _sorted(positions[~later]), _sorted(positions[later])


def _time_folds(times: np.ndarray[Any, Any], folds: int, column: str) -> list[Fold]:
    """Expanding-window folds: fold k validates on the k-th of ``folds + 1`` time-ordered
    blocks after the first and trains on every earlier row (as scikit-learn's TimeSeriesSplit),
    with each block boundary moved to a change of time so no time spans training and
    validation."""
    n = len(times)
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    distinct = len(np.unique(ordered))
    if distinct < folds + 1:
        raise DataError(
            f"time column {column!r} has {distinct} distinct value(s); {folds} time series "
            f"folds need at least {folds + 1}"
        )
    size = n // (folds + 1)
    starts = [n - (folds - k) * size for k in range(folds)]
    result: list[Fold] = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < folds else n
        low = ordered[start]
        high = ordered[end] if end < n else None
        train = times < low
        valid = (times >= low) if high is None else (times >= low) & (times < high)
        if not train.any() or not valid.any():
            raise DataError(
                f"time column {column!r}: too many rows share a time to make {folds} time "
                "series folds; use fewer folds"
            )
        result.append(
            (np.flatnonzero(train).astype(np.intp), np.flatnonzero(valid).astype(np.intp))
        )
    return result


# ---- groups and classes --------------------------------------------------------------------


def _column(frame: pd.DataFrame, name: str, role: str) -> pd.Series:
    if name not in frame.columns:
        raise DataError(f"{role} column {name!r} is not in the data")
    return frame[name]


def _group_values(
    frame: pd.DataFrame, name: str, *, at_least: int, purpose: str
) -> np.ndarray[Any, Any]:
    """The group of every row as integer codes; ``purpose`` needs ``at_least`` groups."""
    series = _column(frame, name, "group")
    missing = int(series.isna().sum())
    if missing:
        raise DataError(
            f"group column {name!r} has {missing} missing value(s); every row needs a group"
        )
    codes, uniques = pd.factorize(series, sort=True)
    if len(uniques) < at_least:
        raise DataError(
            f"group column {name!r} has {len(uniques)} distinct value(s); {purpose} needs at "
            f"least {at_least}, since a group is never split"
        )
    return codes.astype(np.intp)


def _labels(y: Any) -> np.ndarray[Any, Any]:
    """Class labels as integer codes (so mixed or missing labels still compare)."""
    codes, _ = pd.factorize(pd.Series(np.asarray(y, dtype=object)), sort=False)
    return codes


def _require_class_rows(labels: np.ndarray[Any, Any], needed: int, purpose: str, y: Any) -> None:
    """Every class has at least ``needed`` rows; ``purpose`` says what needs them."""
    name = getattr(y, "name", None)
    column = f"target column {name!r}" if name is not None else "the target"
    if (labels < 0).any():
        raise DataError(f"{column} has {int((labels < 0).sum())} missing value(s)")
    values = np.asarray(y, dtype=object)
    counts = np.bincount(labels) if len(labels) else np.zeros(0, dtype=np.intp)
    rare = [
        f"class {values[np.flatnonzero(labels == code)[0]]!r} has {int(count)} row(s)"
        for code, count in enumerate(counts)
        if count < needed
    ]
    if rare:
        raise DataError(
            f"{column}: {', '.join(rare)}; {purpose} needs at least {needed} rows of each class"
        )


def _take(y: Any, positions: Index) -> Any:
    if isinstance(y, pd.Series):
        return y.iloc[positions].reset_index(drop=True)
    return np.asarray(y)[positions]


def _sorted(index: Any) -> Index:
    return np.sort(np.asarray(index, dtype=np.intp))


def _as_folds(pairs: Any) -> list[Fold]:
    return [(_sorted(train), _sorted(valid)) for train, valid in pairs]


__all__ = [
    "Fold",
    "NestedFold",
    "cv_folds",
    "nested_cv_folds",
    "resolve_method",
    "time_values",
    "train_test_indices",
]
