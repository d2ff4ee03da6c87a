"""Distillation: the student learns the teacher's predictions, and a fold's teacher never sees
that fold's validation rows, so the student's CV score is honest."""

from __future__ import annotations

import pickle
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlship.spec.data import Column
from mlship.train.candidates import Recipe
from mlship.train.distill import DistilledClassifier, DistilledRegressor
from mlship.train.folds import FoldJob, run_fold, shared_inputs
from mlship.train.weighting import final_estimator

FEATURES = (Column(name="a", type="float"), Column(name="b", type="float"))


def _recipe(name: str, estimator: str, task: str, teacher: Recipe | None = None) -> Recipe:
    return Recipe(
        name=name,
        estimator=estimator,
        task=task,  # type: ignore[arg-type]
        params={},
        features=FEATURES,
        teacher=teacher,
    )


def _frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})


def test_a_students_fold_score_is_that_of_a_teacher_fitted_on_the_fold_alone() -> None:
    # Fold 0's score is recomputed by hand: the teacher fitted on the fold's training rows only,
    # the student fitted on its labels of those rows, scored against the true validation labels.
    # A teacher that had also seen the validation rows teaches other labels, another score.
    X = _frame(400)
    noisy = X["a"] + np.random.default_rng(1).normal(scale=1.0, size=400) > 0
    y = pd.Series(np.where(noisy, "yes", "no"), name="label")
    # A neighbours teacher labels each training row by its neighbours, so which rows it was
    # fitted on shows in every label it teaches.
    teacher = _recipe("teacher", "knn", "classification")
    student = _recipe("student", "decision_tree", "classification", teacher)
    order = np.random.default_rng(2).permutation(400)
    train, valid = np.sort(order[100:]), np.sort(order[:100])
    shared = shared_inputs({"student": student}, X, y, [(train, valid)], "accuracy")
    result = run_fold(FoldJob("student", 0), shared)
    assert result.ok, result.error

    def by_hand(taught_on: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        fitted_teacher = teacher.build().fit(X.iloc[taught_on], y.iloc[taught_on])
        labels = pd.Series(fitted_teacher.predict(X.iloc[train]), name="label")
        tree = replace(student, teacher=None).build().fit(X.iloc[train], labels)
        return np.asarray(tree.predict(X.iloc[valid]))

    honest, leaky = by_hand(train), by_hand(np.arange(400))
    truth = y.iloc[valid].to_numpy()
    assert result.validation["accuracy"] == pytest.approx(float((honest == truth).mean()))
    assert (honest != leaky).any()  # the check above would notice a teacher that saw more


def test_the_student_learns_the_teachers_labels_and_is_served_alone() -> None:
    X = _frame(300)
    y = pd.Series(np.where(X["a"] + 0.3 * X["b"] > 0, "yes", "no"), name="label")
    teacher = _recipe("forest", "random_forest", "classification")
    student = _recipe("tree", "decision_tree", "classification", teacher).build()
    assert isinstance(student, DistilledClassifier)
    student.fit(X, y)
    fitted_teacher = teacher.build().fit(X, y)
    assert student.taught_rows_ == 300
    # An unpruned tree learns its teacher's labels exactly on the rows it was taught on.
    assert (student.predict(X) == fitted_teacher.predict(X)).all()
    assert list(student.classes_) == ["no", "yes"]
    assert student.predict_proba(X).shape == (300, 2)
    assert type(final_estimator(student)).__name__ == "DecisionTreeClassifier"
    pickled = pickle.dumps(student, protocol=5)
    assert len(pickled) < len(pickle.dumps(fitted_teacher, protocol=5))  # no fitted forest inside
    assert not hasattr(final_estimator(pickle.loads(pickled).teacher), "estimators_")


def test_a_regression_student_learns_the_teachers_predictions() -> None:
    X = _frame(200, seed=4)
    y = pd.Series(2 * X["a"] - X["b"], name="y")
    teacher = _recipe("forest", "random_forest", "regression")
    student = _recipe("tree", "decision_tree", "regression", teacher).build()
    assert isinstance(student, DistilledRegressor)
    student.fit(X, y)
    assert np.allclose(student.predict(X), teacher.build().fit(X, y).predict(X))
