"""The samples sample-first tuning screens on: nested, stratified, and cut along the folds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.spec.training import Tuning
from mlship.train.cost import Usage
from mlship.train.folds import FoldResult
from mlship.train.sample_first import fractions, kept, rank_key, sample_order, sampled_folds


def test_stages_grow_by_one_over_keep_until_all_the_rows() -> None:
    assert fractions(0.25, 0.5) == [0.25, 0.5]
    assert fractions(0.1, 0.25) == pytest.approx([0.1, 0.4])
    assert fractions(0.6, 0.5) == [0.6]


@settings(derandomize=True, max_examples=60, deadline=None)
@given(count=st.integers(1, 500), keep=st.floats(0.01, 0.99))
def test_at_least_one_and_at_most_all_go_on(count: int, keep: float) -> None:
    going = kept(count, keep)
    assert 1 <= going <= count
    assert going >= count * keep - 1e-6


@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    labels=st.lists(st.sampled_from(["yes", "no", "maybe"]), min_size=5, max_size=300),
    seed=st.integers(0, 10_000),
)
def test_every_prefix_of_the_order_keeps_the_class_shares(labels: list[str], seed: int) -> None:
    y = pd.Series(labels)
    rows = np.arange(len(labels))
    order = sample_order(rows, y, stratify=True, seed=seed)
    assert sorted(order) == list(rows)
    for n in (1, len(order) // 4, len(order) // 2, len(order)):
        if n == 0:
            continue
        taken = y.iloc[order[:n]].value_counts()
        for label, total in y.value_counts().items():
            expected = total * n / len(order)
            assert abs(int(taken.get(label, 0)) - expected) <= 1.0 + 1e-9


def test_an_unstratified_order_is_a_seeded_permutation() -> None:
    y = pd.Series(np.arange(50, dtype=float))
    rows = np.arange(10, 60)
    first = sample_order(rows, y, stratify=False, seed=3)
    assert sorted(first) == list(rows) and first == sample_order(rows, y, False, 3)


def test_a_sampled_fold_fits_on_the_sample_and_scores_on_all_its_validation_rows() -> None:
    folds = [(np.array([0, 1, 2, 3]), np.array([4, 5])), (np.array([2, 3, 4, 5]), np.array([0, 1]))]
    cut = sampled_folds(folds, [0, 1], np.array([1, 3, 4]))
    assert [(list(t), list(v)) for t, v in cut] == [([1, 3], [4, 5]), ([3, 4], [0, 1])]
    only_second = sampled_folds(folds, [1], np.array([1, 3, 4]))
    assert len(only_second[0][0]) == len(only_second[0][1]) == 0
    assert list(only_second[1][0]) == [3, 4]


@settings(derandomize=True, max_examples=40, deadline=None)
@given(size=st.integers(4, 200), share=st.floats(0.05, 0.95), seed=st.integers(0, 1000))
def test_no_fold_ever_fits_on_a_row_it_validates_on(size: int, share: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.permutation(size)
    half = size // 2
    folds = [(rows[:half], rows[half:]), (rows[half:], rows[:half])]
    chosen = np.sort(rng.choice(size, max(1, int(share * size)), replace=False))
    for train, valid in sampled_folds(folds, [0, 1], chosen):
        assert not set(train) & set(valid)
        assert set(train) <= set(chosen)


def _fold(score: float | None) -> FoldResult:
    validation = {} if score is None else {"roc_auc": score}
    error = "ValueError: bad" if score is None else None
    return FoldResult("m", 0, -1, validation, {}, 0.0, Usage.zero(), error)


def test_failed_points_rank_last_whichever_way_the_metric_points() -> None:
    good, bad = [_fold(0.8), _fold(0.6)], [_fold(0.9), _fold(None)]
    assert rank_key(good, "roc_auc", bigger=True) == pytest.approx(-0.7)
    assert rank_key(good, "roc_auc", bigger=False) == pytest.approx(0.7)
    assert rank_key(bad, "roc_auc", bigger=True) == math.inf
    assert rank_key([], "roc_auc", bigger=True) == math.inf


def test_sample_first_shares_must_lie_between_nothing_and_everything() -> None:
    with pytest.raises(ValueError, match="fraction"):
        Tuning.model_validate({"method": "grid", "sample_first": {"fraction": 1.0}})
    with pytest.raises(ValueError, match="keep"):
        Tuning.model_validate({"method": "random", "sample_first": {"keep": 0}})
    with pytest.raises(ValueError, match="folds"):
        Tuning.model_validate({"method": "grid", "sample_first": {"folds": 0}})
    plan = Tuning.model_validate({"method": "grid", "sample_first": {}}).sample_first
    assert plan is not None and (plan.fraction, plan.keep, plan.folds) == (0.25, 0.33, 2)
