"""Threshold tuning on imbalanced data: chosen on the CV folds, and F1 gets better for it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import make_scorer
from sklearn.model_selection import StratifiedKFold, TunedThresholdClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlship.spec.data import Column
from mlship.train.candidates import Recipe
from mlship.train.scoring import score
from mlship.train.threshold import tune_threshold


def _imbalanced(rows: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    logit = -4.2 + 1.6 * X["a"] + 0.8 * X["b"]
    y = pd.Series(np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no"))
    return X, y


def _logistic(positive: str | None = None) -> Recipe:
    return Recipe(
        name="logistic",
        estimator="logistic_regression",
        task="classification",
        params={},
        features=(Column(name="a", type="float"), Column(name="b", type="float")),
        positive=positive,
    )


def test_a_tuned_threshold_improves_f1_of_the_minority_class() -> None:
    X, y = _imbalanced(4000, 1)
    X_test, y_test = _imbalanced(4000, 2)
    assert 0.02 < (y == "yes").mean() < 0.1  # "yes", the last class, is the positive one
    recipe = _logistic()
    positions = np.arange(len(X))
    folds = [(positions[positions % 5 != k], positions[positions % 5 == k]) for k in range(5)]
    plain = recipe.build().fit(X, y)
    tuned = tune_threshold(recipe.build(), X, y, folds, "f1")
    assert tuned.threshold < 0.5  # the minority class needs a lower bar
    assert tuned.cv_score_tuned > tuned.cv_score_at_default
    before = score("classification", plain, X_test, y_test)
    after = score("classification", tuned.model, X_test, y_test)
    assert after["f1"] > before["f1"]
    assert after["roc_auc"] == before["roc_auc"]  # the ranking is the same model's


def test_a_declared_positive_class_that_sorts_first_is_the_one_tuned_for() -> None:
    X, y = _imbalanced(4000, 1)
    X_test, y_test = _imbalanced(4000, 2)
    labels = {"yes": "churn", "no": "stay"}  # the minority class now sorts first
    y, y_test = y.map(labels), y_test.map(labels)
    recipe = _logistic(positive="churn")
    positions = np.arange(len(X))
    folds = [(positions[positions % 5 != k], positions[positions % 5 == k]) for k in range(5)]
    plain = recipe.build().fit(X, y)
    tuned = tune_threshold(recipe.build(), X, y, folds, "f1", positive="churn")
    assert (tuned.model.predict(X_test) == "churn").sum() > (plain.predict(X_test) == "churn").sum()
    assert tuned.threshold < 0.5  # a lower bar on P(churn), as for "yes" above
    before = score("classification", plain, X_test, y_test, positive="churn")
    after = score("classification", tuned.model, X_test, y_test, positive="churn")
    assert after["f1"] > before["f1"]
    # The default (last class, "stay") describes the majority: a very different F1.
    assert score("classification", plain, X_test, y_test)["f1"] > 0.9 > before["f1"]
    assert after["recall"] > before["recall"]


@pytest.mark.parametrize(
    ("metric", "theirs"),
    [("f1", metrics.f1_score), ("balanced_accuracy", metrics.balanced_accuracy_score)],
)
def test_the_threshold_is_the_one_scikit_learns_own_metric_chooses(
    metric: str, theirs: Any
) -> None:
    """On real measurements (scikit-learn's breast-cancer set) with the class of interest first
    in order ("benign"), the counting scorer chooses scikit-learn's threshold for the same class:
    F1 thresholds the named class, a metric of both classes the last one."""
    bunch = load_breast_cancer(as_frame=True)
    y = bunch.target.map(dict(enumerate(bunch.target_names)))
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(bunch.data, y))
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    kwargs = {"pos_label": "benign", "zero_division": 0} if metric == "f1" else {}
    reference = TunedThresholdClassifierCV(
        clone(pipeline), scoring=make_scorer(theirs, **kwargs), cv=folds, thresholds=200
    ).fit(bunch.data, y)
    tuned = tune_threshold(pipeline, bunch.data, y, folds, metric, "benign")
    assert tuned.threshold == pytest.approx(reference.best_threshold_)
    assert tuned.cv_score_tuned == pytest.approx(reference.best_score_)
    decided = tuned.model.predict(bunch.data)
    assert (decided == reference.predict(bunch.data)).all()
