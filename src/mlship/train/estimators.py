"""Two estimators of the catalog that wrap others, so they behave like every other entry.

* :class:`CalibratedSVC`: scikit-learn's SVC, whose probabilities come from Platt scaling on
  internal cross-validation (what ``SVC(probability=True)`` did before scikit-learn deprecated
  that parameter), so probability metrics such as ROC AUC work.
* :class:`XGBLabelClassifier`: XGBoost's classifier, which only accepts the labels 0..n-1, taught to
  take any labels (strings, booleans) and to give them back.

They live apart from the catalog so that naming an estimator does not import XGBoost.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.preprocessing import LabelEncoder
from sklearn.svm import SVC
from sklearn.utils._param_validation import Interval
from xgboost import XGBClassifier


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


class XGBLabelClassifier(XGBClassifier):
    """XGBoost's classifier for any class labels.

    XGBoost learns from the labels 0..n-1 only. This classifier encodes the labels it is given
    (strings, booleans, numbers) with a LabelEncoder before fitting, predicts the original labels,
    and keeps them in ``classes_``, in the order of ``predict_proba``'s columns. It takes exactly
    XGBClassifier's parameters and pickles like it; unlike XGBClassifier, fitting does not change
    its parameters, so a fitted model can be cloned and refitted on any classes.
    """

    def fit(self, X: Any, y: Any, **kwargs: Any) -> XGBLabelClassifier:
        for fitted in ("label_encoder_", "_Booster", "n_classes_"):
            self.__dict__.pop(fitted, None)  # a refit starts afresh, whatever the classes were
        encoder = LabelEncoder().fit(np.asarray(y))
        eval_set = kwargs.get("eval_set")
        if eval_set is not None:
            kwargs["eval_set"] = [
                (X_eval, encoder.transform(y_eval)) for X_eval, y_eval in eval_set
            ]
        objective = self.objective
        try:
            super().fit(X, encoder.transform(np.asarray(y)), **kwargs)
        finally:
            # XGBoost switches ``objective`` to multi:softprob for three or more classes; the
            # booster keeps what it trained with, and the parameter stays what was asked for, so
            # a clone of this model can be fitted on two classes again.
            self.objective = objective
        self.label_encoder_ = encoder
        return self

    @property
    def classes_(self) -> np.ndarray[Any, Any]:
        encoder: LabelEncoder | None = self.__dict__.get("label_encoder_")
        if encoder is None:
            return np.arange(self.n_classes_)
        return encoder.classes_  # type: ignore[no-any-return]

    def predict(self, X: Any, **kwargs: Any) -> Any:
        predicted = super().predict(X, **kwargs)
        if kwargs.get("output_margin"):
            return predicted
        return self.label_encoder_.inverse_transform(np.asarray(predicted).astype(np.intp))


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
