"""Splits: the test set and the folds never leak rows, groups or the future, keep class
proportions, and are the same for the same seed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlship.errors import DataError
from mlship.spec.models import Task
from mlship.spec.training import Split
from mlship.train.splits import (
    Fold,
    cv_folds,
    nested_cv_folds,
    resolve_method,
    train_test_indices,
)

N = 240


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-01", periods=N // 2, freq="D", tz="UTC")
    return pd.DataFrame(
        {
            "customer": rng.integers(0, 40, N),
            "seen_at": rng.permutation(np.repeat(days, 2)),  # every day twice: ties in time
            "x": rng.random(N),
        }
    )


@pytest.fixture
def y() -> pd.Series:
    rng = np.random.default_rng(1)
    labels = np.array(["a"] * 144 + ["b"] * 72 + ["c"] * 24, dtype=object)
    return pd.Series(rng.permutation(labels), name="churned")


def _assert_disjoint(folds: list[Fold]) -> None:
    for train, valid in folds:
        assert len(train) and len(valid)
        assert not set(train) & set(valid)


def _shares(labels: Any) -> pd.Series:
    return pd.Series(labels).value_counts(normalize=True).sort_index()


def test_method_defaults_follow_the_task() -> None:
    assert resolve_method(Split(), "classification") == "stratified_kfold"
    assert resolve_method(Split(), "regression") == "kfold"
    assert resolve_method(Split(group="customer"), "regression") == "group_kfold"
    assert resolve_method(Split(method="kfold"), "classification") == "kfold"


@pytest.mark.parametrize(
    ("split", "task"),
    [
        (Split(folds=4), "classification"),
        (Split(folds=4), "regression"),
        (Split(folds=4, repeats=3), "classification"),
        (Split(method="kfold", folds=4, repeats=2), "regression"),
        (Split(folds=4, group="customer"), "classification"),
        (Split(method="kfold", folds=4, group="customer", repeats=2), "regression"),
        (Split(method="timeseries", time="seen_at", folds=4), "regression"),
        (Split(method="holdout"), "classification"),
    ],
)
def test_no_row_is_both_trained_on_and_validated(
    frame: pd.DataFrame, y: pd.Series, split: Split, task: Task
) -> None:
    target = y if task == "classification" else pd.Series(frame["x"] * 10, name="spend")
    train, test = train_test_indices(frame, target, split, task)
    assert not set(train) & set(test)
    assert sorted([*train, *test]) == list(range(N))
    part = frame.iloc[train].reset_index(drop=True)
    folds = cv_folds(part, target.iloc[train].reset_index(drop=True), split, task)
    _assert_disjoint(folds)
    for train_index, valid_index in folds:
        assert max(train_index.max(), valid_index.max()) < len(part)


@pytest.mark.parametrize("method", [None, "kfold", "stratified_kfold", "group_kfold"])
def test_k_fold_validates_every_row_once_per_repeat(
    frame: pd.DataFrame, y: pd.Series, method: Any
) -> None:
    split = Split(method=method, folds=5, repeats=2, group="customer")
    folds = cv_folds(frame, y, split, "classification")
    assert len(folds) == 10
    for repeat in (folds[:5], folds[5:]):
        validated = np.concatenate([valid for _, valid in repeat])
        assert sorted(validated) == list(range(N))


def test_groups_never_straddle_test_split_or_folds(frame: pd.DataFrame, y: pd.Series) -> None:
    groups = frame["customer"].to_numpy()
    for task in ("classification", "regression"):
        split = Split(group="customer", folds=5, seed=3)
        train, test = train_test_indices(frame, y, split, task)
        assert not set(groups[train]) & set(groups[test])
        for train_index, valid_index in cv_folds(frame, y, split, task):
            assert not set(groups[train_index]) & set(groups[valid_index])
    holdout = Split(method="holdout", group="customer")
    ((train_index, valid_index),) = cv_folds(frame, y, holdout, "classification")
    assert not set(groups[train_index]) & set(groups[valid_index])


def test_time_series_test_set_is_the_future_and_folds_only_look_back(
    frame: pd.DataFrame,
) -> None:
    target = pd.Series(frame["x"], name="spend")
    split = Split(method="timeseries", time="seen_at", folds=4, holdout=0.25)
    times = frame["seen_at"]
    train, test = train_test_indices(frame, target, split, "regression")
    assert times.iloc[train].max() < times.iloc[test].min()
    assert len(test) == N // 4
    part = frame.iloc[train].reset_index(drop=True)
    folds = cv_folds(part, target.iloc[train].reset_index(drop=True), split, "regression")
    assert len(folds) == 4
    part_times = part["seen_at"]
    previous_end = None
    for train_index, valid_index in folds:
        assert part_times.iloc[train_index].max() < part_times.iloc[valid_index].min()
        if previous_end is not None:  # windows move forward and the training set grows
            assert part_times.iloc[valid_index].min() > previous_end
        previous_end = part_times.iloc[valid_index].max()
    sizes = [len(train_index) for train_index, _ in folds]
    assert sizes == sorted(sizes)


def test_time_series_takes_numbers_too(frame: pd.DataFrame, y: pd.Series) -> None:
    numbered = frame.assign(step=np.random.default_rng(2).permutation(N).astype(float))
    split = Split(method="timeseries", time="step", folds=3)
    train, test = train_test_indices(numbered, y, split, "classification")
    assert numbered["step"].iloc[train].max() < numbered["step"].iloc[test].min()


def test_stratification_keeps_class_proportions(frame: pd.DataFrame, y: pd.Series) -> None:
    overall = _shares(y)
    split = Split(folds=4, holdout=0.25, seed=5)
    train, test = train_test_indices(frame, y, split, "classification")
    for part in (train, test):
        assert (abs(_shares(y.iloc[part]) - overall) < 0.02).all()
    folds = cv_folds(frame, y, split, "classification")
    for _, valid in folds:
        assert (abs(_shares(y.iloc[valid]) - overall) < 0.02).all()
    # The rare class is spread over the folds, not left to chance.
    rare_counts = [int((y.iloc[valid] == "c").sum()) for _, valid in folds]
    assert rare_counts == [6, 6, 6, 6]


def test_repeats_reshuffle_the_folds(frame: pd.DataFrame, y: pd.Series) -> None:
    for split in (Split(folds=3, repeats=2), Split(folds=3, repeats=2, group="customer")):
        folds = cv_folds(frame, y, split, "classification")
        first = [tuple(valid) for _, valid in folds[:3]]
        second = [tuple(valid) for _, valid in folds[3:]]
        assert set(first) != set(second)


def test_same_seed_same_split_other_seed_other_split(frame: pd.DataFrame, y: pd.Series) -> None:
    for split in (
        Split(seed=11),
        Split(seed=11, group="customer"),
        Split(seed=11, method="holdout"),
        Split(seed=11, repeats=2),
    ):
        again = split.model_copy()
        other = split.model_copy(update={"seed": 12})
        first = cv_folds(frame, y, split, "classification")
        assert _same(first, cv_folds(frame, y, again, "classification"))
        assert not _same(first, cv_folds(frame, y, other, "classification"))
        test_a = train_test_indices(frame, y, split, "classification")[1]
        test_b = train_test_indices(frame, y, again, "classification")[1]
        np.testing.assert_array_equal(test_a, test_b)


def _same(a: list[Fold], b: list[Fold]) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(ta, tb) and np.array_equal(va, vb)
        for (ta, va), (tb, vb) in zip(a, b, strict=True)
    )


def test_holdout_is_one_validation_split_of_the_holdout_share(
    frame: pd.DataFrame, y: pd.Series
) -> None:
    folds = cv_folds(frame, y, Split(method="holdout", holdout=0.25), "classification")
    assert len(folds) == 1
    train, valid = folds[0]
    assert len(valid) == N // 4
    assert len(train) + len(valid) == N


def test_nested_folds_tune_inside_each_outer_training_part(
    frame: pd.DataFrame, y: pd.Series
) -> None:
    split = Split(folds=3, repeats=2, group="customer")
    nested = nested_cv_folds(frame, y, split, "classification")
    assert len(nested) == 3  # the outer loop is not repeated
    groups = frame["customer"].to_numpy()
    for outer in nested:
        assert not set(outer.train) & set(outer.valid)
        assert len(outer.inner) == 6
        outer_train = set(outer.train)
        for inner_train, inner_valid in outer.inner:
            assert set(inner_train) | set(inner_valid) <= outer_train
            assert not set(inner_train) & set(inner_valid)
            assert not set(groups[inner_train]) & set(groups[inner_valid])
    assert not _same(nested[0].inner, nested[1].inner)
    again = nested_cv_folds(frame, y, split, "classification")
    assert all(_same(a.inner, b.inner) for a, b in zip(nested, again, strict=True))


def test_a_class_with_fewer_rows_than_folds_is_named(frame: pd.DataFrame, y: pd.Series) -> None:
    rare = y.copy()
    rare.iloc[:3] = "gone"
    with pytest.raises(DataError) as info:
        cv_folds(frame, rare, Split(folds=5), "classification")
    message = str(info.value)
    assert "target column 'churned': class 'gone' has 3 row(s)" in message
    assert "stratified 5-fold cross-validation needs at least 5 rows of each class" in message
    single = y.copy()
    single.iloc[0] = "once"
    with pytest.raises(DataError, match="class 'once' has 1 row"):
        train_test_indices(frame, single, Split(), "classification")
    # Plain k-fold does not need every class in every fold.
    assert len(cv_folds(frame, rare, Split(method="kfold", folds=5), "classification")) == 5


def test_too_few_groups_is_named(frame: pd.DataFrame, y: pd.Series) -> None:
    few = frame.assign(customer=frame["customer"] % 3)
    with pytest.raises(DataError) as info:
        cv_folds(few, y, Split(group="customer", folds=5), "regression")
    assert "group column 'customer' has 3 distinct value(s); 5-fold cross-validation needs" in (
        str(info.value)
    )
    one = frame.assign(customer=1)
    with pytest.raises(DataError, match="group column 'customer' has 1 distinct value"):
        train_test_indices(one, y, Split(group="customer"), "regression")
    holes = frame.astype({"customer": "float"})
    holes.loc[4, "customer"] = np.nan
    with pytest.raises(DataError, match="group column 'customer' has 1 missing value"):
        cv_folds(holes, y, Split(group="customer"), "regression")


def test_time_column_with_nulls_or_the_wrong_type_is_named(
    frame: pd.DataFrame, y: pd.Series
) -> None:
    split = Split(method="timeseries", time="seen_at")
    holes = frame.copy()
    holes.loc[[3, 9], "seen_at"] = pd.NaT
    with pytest.raises(DataError, match="time column 'seen_at' has 2 missing value"):
        train_test_indices(holes, y, split, "classification")
    with pytest.raises(DataError, match="time column 'seen_at' has 2 missing value"):
        cv_folds(holes, y, split, "classification")
    words = frame.assign(seen_at="monday")
    with pytest.raises(DataError, match=r"time column 'seen_at' holds .* it must hold dates"):
        cv_folds(words, y, split, "classification")
    missing = frame.drop(columns="seen_at")
    with pytest.raises(DataError, match="time column 'seen_at' is not in the data"):
        cv_folds(missing, y, split, "classification")


def test_time_series_needs_enough_distinct_times(frame: pd.DataFrame, y: pd.Series) -> None:
    flat = frame.assign(seen_at=pd.Timestamp("2024-01-01", tz="UTC"))
    with pytest.raises(DataError, match="'seen_at' has 1 distinct value"):
        cv_folds(flat, y, Split(method="timeseries", time="seen_at"), "classification")
    with pytest.raises(DataError, match="nothing is earlier than the test set"):
        train_test_indices(flat, y, Split(method="timeseries", time="seen_at"), "classification")
