"""Tree pruning: a pruned ensemble is its first k trees, smaller the fewer it keeps."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.spec.data import Column
from mlship.train.candidates import Recipe
from mlship.train.compress import ensemble, pruned, tree_count

FEATURES = (Column(name="a", type="float"), Column(name="b", type="float"))


def _fitted(estimator: str, task: str, params: dict[str, int]) -> tuple[Any, pd.DataFrame]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame({"a": rng.normal(size=240), "b": rng.normal(size=240)})
    signal = X["a"] - 0.5 * X["b"] + rng.normal(scale=0.5, size=240)
    y = pd.Series(np.where(signal > 0, "yes", "no") if task == "classification" else signal)
    recipe = Recipe(
        name=estimator,
        estimator=estimator,
        task=task,  # type: ignore[arg-type]
        params=params,
        features=FEATURES,
    )
    return recipe.build().fit(X, y), X


ENSEMBLES = [
    ("random_forest", "classification", {"n_estimators": 30}),
    ("extra_trees", "regression", {"n_estimators": 30}),
    ("gradient_boosting", "classification", {"n_estimators": 30}),
    ("gradient_boosting", "regression", {"n_estimators": 30}),
    ("hist_gradient_boosting", "regression", {"max_iter": 30}),
    ("xgboost", "classification", {"n_estimators": 30}),
    ("xgboost", "regression", {"n_estimators": 30}),
]


@pytest.mark.parametrize(("estimator", "task", "params"), ENSEMBLES)
def test_fewer_trees_pickle_smaller(estimator: str, task: str, params: dict[str, int]) -> None:
    model, X = _fitted(estimator, task, params)
    assert tree_count(model) == 30
    sizes = [len(pickle.dumps(pruned(model, k), protocol=5)) for k in (1, 5, 10, 20, 30)]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert pruned(model, 30) is model and pruned(model, 99) is model
    assert tree_count(pruned(model, 5)) == 5 and tree_count(model) == 30  # the original is kept
    assert len(pruned(model, 5).predict(X)) == len(X)


@settings(derandomize=True, max_examples=10, deadline=None)
@given(st.integers(min_value=1, max_value=29))
def test_a_pruned_boosted_model_predicts_as_its_kth_stage(k: int) -> None:
    model, X = _fitted("gradient_boosting", "regression", {"n_estimators": 30})
    features = model[:-1].transform(X)
    staged = list(ensemble(model).staged_predict(features))
    assert np.allclose(pruned(model, k).predict(X), staged[k - 1])


def test_a_pruned_forest_averages_its_first_trees() -> None:
    model, X = _fitted("random_forest", "classification", {"n_estimators": 30})
    features = model[:-1].transform(X)
    first = ensemble(model).estimators_[:7]
    expected = np.mean([tree.predict_proba(features) for tree in first], axis=0)
    assert np.allclose(pruned(model, 7).predict_proba(X), expected)


def test_a_pruned_xgboost_model_predicts_as_its_first_rounds() -> None:
    model, X = _fitted("xgboost", "regression", {"n_estimators": 30})
    features = model[:-1].transform(X)
    expected = ensemble(model).predict(features, iteration_range=(0, 8))
    assert np.allclose(pruned(model, 8).predict(X), expected)
