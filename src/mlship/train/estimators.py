"""Estimators that wrap others: the catalog's ``svm`` and what a tuned threshold leaves behind.

* :class:`CalibratedSVC`: scikit-learn's SVC, whose probabilities come from Platt scaling on
  internal cross-validation (what ``SVC(probability=True)`` did before scikit-learn deprecated
  that parameter), so probability metrics such as ROC AUC work.
* :class:`DecisionThreshold`: a fitted binary classifier with a tuned decision threshold.

The catalog's ``xgboost`` classifier, :class:`~mlship.train.xgb.XGBLabelClassifier`, is in
:mod:`mlship.train.xgb`, so that importing this module (as scoring any model does) does not import
XGBoost. It was defined here once; models pickled then still find it here (see ``__getattr__``).
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import SVC
from sklearn.utils._param_validation import Interval


class CalibratedSVC(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A support vector classifier with class probabilities.

    Takes SVC's parameters. ``fit`` fits an SVC on all rows and learns a sigmoid (Platt scaling)
    from its decision values on ``calibration_folds`` stratified folds, as scikit-learn's
    ``CalibratedClassifierCV(SVC(), ensemble=False)`` does; ``predict`` is the most probable
    class, so predictions and probabilities agree.
    """

    _parameter_constraints: dict[str, list[Any]] = {  # noqa: RUF012 - scikit-learn's protocol
        **{k: v for k, v in SVC._parameter_constraints.items() if k != "probability"},
        "calibration_folds": [Interval(Integral, 2, None, closed="left")],
    }

    def __init__(
        self,
        *,
        C: float = 1.0,
        kernel: Any = "rbf",
        degree: int = 3,
        gamma: Any = "scale",
        coef0: float = 0.0,
        shrinking: bool = True,
        tol: float = 1e-3,
        cache_size: float = 200,
        class_weight: Any = None,
        verbose: bool = False,
        max_iter: int = -1,
        decision_function_shape: str = "ovr",
        break_ties: bool = False,
        random_state: Any = None,
        calibration_folds: int = 5,
    ) -> None:
        self.C = C
        self.kernel = kernel
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0
        self.shrinking = shrinking
        self.tol = tol
        self.cache_size = cache_size
        self.class_weight = class_weight
        self.verbose = verbose
        self.max_iter = max_iter
        self.decision_function_shape = decision_function_shape
        self.break_ties = break_ties
        self.random_state = random_state
        self.calibration_folds = calibration_folds

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> CalibratedSVC:
        self._validate_params()
        params = self.get_params(deep=False)
        params.pop("calibration_folds")
        _, counts = np.unique(np.asarray(y), return_counts=True)
        folds = int(min(self.calibration_folds, counts.min()))
        if folds < 2:
            raise ValueError(
                "every class needs at least 2 rows to calibrate the SVM's probabilities"
            )
        self.calibrated_ = CalibratedClassifierCV(
            SVC(**params), method="sigmoid", cv=folds, ensemble=False
        ).fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.calibrated_.classes_
        self.n_features_in_ = self.calibrated_.n_features_in_
        return self

    def predict(self, X: Any) -> Any:
        return self.calibrated_.predict(X)

    def predict_proba(self, X: Any) -> Any:
        return self.calibrated_.predict_proba(X)

    def decision_function(self, X: Any) -> Any:
        return self.calibrated_.calibrated_classifiers_[0].estimator.decision_function(X)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class DecisionThreshold(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A fitted binary classifier that predicts ``positive`` when that class's probability
    reaches ``threshold``: what a tuned threshold leaves behind to serve.

    Unlike the tuner it replaces, it holds no cross-validation state, and its probabilities and
    decisions come from one pass through the pipeline (:func:`mlship.train.scoring.predict_outputs`
    asks for the probabilities once and calls :meth:`decide`).
    """

    def __init__(self, pipeline: Any, threshold: float = 0.5, positive: Any = None) -> None:
        self.pipeline = pipeline
        self.threshold = threshold
        self.positive = positive

    @property
    def classes_(self) -> Any:
        return self.pipeline.classes_

    def fit(self, X: Any, y: Any) -> DecisionThreshold:
        """Refit the pipeline, keeping the threshold (what a learning curve or a refit needs)."""
        self.pipeline.fit(X, y)
        return self

    def predict_proba(self, X: Any) -> Any:
        return self.pipeline.predict_proba(X)

    def decide(self, proba: Any) -> Any:
        """Class labels from probabilities (one column per class, as ``classes_``)."""
        classes = list(self.classes_)
        column = classes.index(self.positive)
        other = classes[1 - column]
        return np.where(np.asarray(proba)[:, column] >= self.threshold, self.positive, other)

    def predict(self, X: Any) -> Any:
        return self.decide(self.predict_proba(X))


def __getattr__(name: str) -> Any:
    """``XGBLabelClassifier``, from :mod:`mlship.train.xgb`, for models pickled when it was here."""
    if name == "XGBLabelClassifier":
        from mlship.train.xgb import XGBLabelClassifier

        return XGBLabelClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
