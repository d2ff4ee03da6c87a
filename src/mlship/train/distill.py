"""Distillation: a cheap student that learns what an expensive teacher predicts.

A distilled candidate is one estimator whose ``fit`` first fits the teacher's pipeline on the
rows it is given, then fits the student's pipeline on the same rows with the teacher's
predictions as the target. Because the pair is fitted as one, every cross-validation fold fits
its own teacher on that fold's training rows only: the validation rows never reach the teacher,
and the student's CV score is as honest as any other candidate's (it is scored against the true
target). The fitted teacher is dropped once the student has learnt from it: what is served,
pickled and timed is the student alone.

For classification the student learns the teacher's predicted labels (hard labels). Soft labels
would need a regressor per class fitted on the teacher's probabilities, which turns the student
into something other than the classifier the spec names and loses its own ``predict_proba``;
hard labels keep every classifier of the catalog usable as a student, scored by the same metrics
as the teacher. For regression the student learns the teacher's predictions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone

from mlship.train.weighting import fit_weighted


class _Distilled(BaseEstimator):  # type: ignore[misc]
    def __init__(self, teacher: Any, student: Any) -> None:
        self.teacher = teacher
        self.student = student

    def fit(self, X: pd.DataFrame, y: Any, sample_weight: Any = None) -> _Distilled:
        teacher = clone(self.teacher)
        fit_weighted(teacher, X, y, sample_weight)
        taught = pd.Series(np.asarray(teacher.predict(X)), index=getattr(y, "index", None))
        if hasattr(y, "name"):
            taught.name = y.name
        student = clone(self.student)
        fit_weighted(student, X, taught, sample_weight)
        self.student_ = student
        self.taught_rows_ = len(X)
        """How many rows the teacher was fitted on and labelled (a fold's training part)."""
        if hasattr(student, "classes_"):
            self.classes_ = student.classes_
        return self

    def predict(self, X: pd.DataFrame) -> Any:
        return self.student_.predict(X)

    def learner(self) -> Any:
        """The student (fitted, once fitted): the model that answers and is served."""
        return getattr(self, "student_", self.student)


class DistilledClassifier(ClassifierMixin, _Distilled):  # type: ignore[misc]
    """A classifier student fitted on a classifier teacher's predicted labels."""

    def predict_proba(self, X: pd.DataFrame) -> Any:
        return self.student_.predict_proba(X)


class DistilledRegressor(RegressorMixin, _Distilled):  # type: ignore[misc]
    """A regressor student fitted on a regressor teacher's predictions."""


def distilled(task: str, teacher: Any, student: Any) -> Any:
    """The estimator that fits ``student`` on what ``teacher`` predicts, for ``task``."""
    if task == "classification":
        return DistilledClassifier(teacher, student)
    return DistilledRegressor(teacher, student)


__all__ = ["DistilledClassifier", "DistilledRegressor", "distilled"]
