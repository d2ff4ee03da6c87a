"""``predict_outputs`` asks a classifier for its probabilities once and derives the labels from
them: the labels must be exactly those of the model's own ``predict``, for every classifier of
the catalog, two classes or three, ties included, and with a tuned decision threshold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlship.train.catalog import CATALOG, build_estimator
from mlship.train.estimators import DecisionThreshold
from mlship.train.scoring import _from_probabilities, predict_outputs

SMALL = {
    "random_forest": {"n_estimators": 15, "random_state": 0},
    "extra_trees": {"n_estimators": 15, "random_state": 0},
    "gradient_boosting": {"n_estimators": 15, "random_state": 0},
    "hist_gradient_boosting": {"max_iter": 15, "random_state": 0},
    "lightgbm": {"n_estimators": 15, "random_state": 0},
    "xgboost": {"n_estimators": 15, "random_state": 0},
    "svm": {"random_state": 0},
    "decision_tree": {"random_state": 0, "max_depth": 2},
}
ONE_PASS = set(CATALOG["classification"]) - {"knn", "dummy"}
"""Catalog classifiers whose labels are derived from their probabilities (the others are asked
for both)."""


def _data(classes: list[str], seed: int) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = 240
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.integers(0, 3, n)})
    score = X["a"] + 0.5 * X["b"] + rng.normal(scale=0.8, size=n)
    cuts = np.quantile(score, np.linspace(0, 1, len(classes) + 1)[1:-1])
    y = pd.Series(np.asarray(classes)[np.searchsorted(cuts, score)])
    # Duplicated rows with other labels: trees and neighbours meet exact probability ties.
    fresh = pd.DataFrame(
        {"a": rng.normal(size=200), "b": rng.normal(size=200), "c": rng.integers(0, 3, 200)}
    )
    fresh = pd.concat([fresh, X.iloc[:40]], ignore_index=True)
    return X, y, fresh


@pytest.mark.parametrize("classes", [["no", "yes"], ["high", "low", "mid"]])
@pytest.mark.parametrize("name", sorted(CATALOG["classification"]))
def test_labels_from_one_pass_are_the_models_own(name: str, classes: list[str]) -> None:
    X, y, fresh = _data(classes, seed=len(name))
    X = pd.concat([X, X.iloc[:30]], ignore_index=True)
    y = pd.concat([y, y.iloc[:30].map(lambda v: classes[(classes.index(v) + 1) % len(classes)])])
    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            ("model", build_estimator(name, "classification", SMALL.get(name, {}))),
        ]
    ).fit(X, y.to_numpy())
    predictions, proba = predict_outputs(pipeline, fresh, "classification")
    assert proba is not None
    np.testing.assert_array_equal(predictions, pipeline.predict(fresh))
    np.testing.assert_allclose(proba, pipeline.predict_proba(fresh))
    derived = _from_probabilities(pipeline.steps[-1][1], proba)
    assert (derived is not None) == (name in ONE_PASS)


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
def test_a_tuned_threshold_decides_as_the_model_does(threshold: float) -> None:
    X, y, fresh = _data(["no", "yes"], seed=7)
    inner = Pipeline(
        [
            ("scale", StandardScaler()),
            ("model", build_estimator("logistic_regression", "classification", {})),
        ]
    )
    model = DecisionThreshold(inner.fit(X, y.to_numpy()), threshold, "yes")
    predictions, proba = predict_outputs(model, fresh, "classification")
    assert proba is not None
    np.testing.assert_array_equal(predictions, model.predict(fresh))
    np.testing.assert_allclose(proba, model.predict_proba(fresh))


def test_regressors_and_label_only_callers_are_asked_for_predictions() -> None:
    X, y, fresh = _data(["no", "yes"], seed=3)
    pipeline: Any = Pipeline(
        [("model", build_estimator("random_forest", "classification", SMALL["random_forest"]))]
    ).fit(X, y.to_numpy())
    labels, proba = predict_outputs(pipeline, fresh, "classification", proba=False)
    assert proba is None
    np.testing.assert_array_equal(labels, pipeline.predict(fresh))
    target = X["a"] * 2.0
    regressor = Pipeline([("model", build_estimator("ridge", "regression", {}))]).fit(X, target)
    values, none = predict_outputs(regressor, fresh, "regression")
    assert none is None
    np.testing.assert_allclose(values, regressor.predict(fresh))
