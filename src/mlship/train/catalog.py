"""The model catalog: short names for estimators, per task, with the defaults they start from.

The catalog covers scikit-learn's main classifiers and regressors plus LightGBM and XGBoost. A spec
may also name any importable estimator class by its dotted path (``sklearn.svm.SVC``); the class
must follow scikit-learn's estimator protocol.

Two catalog entries are thin wrappers, so that they behave like every other entry inside the
project's Pipeline:

* ``svm`` (classification) is :class:`CalibratedSVC`: scikit-learn's SVC, whose probabilities
  come from Platt scaling on internal cross-validation (what ``SVC(probability=True)`` did before
  scikit-learn deprecated that parameter), so probability metrics such as ROC AUC work.
* ``xgboost`` (classification) is :class:`XGBLabelClassifier`: XGBoost's classifier, which only
  accepts the labels 0..n-1, taught to take any labels (strings, booleans) and to give them back.

Thread use: LightGBM and XGBoost use every core by default (``n_jobs``). When folds or trials run
in parallel worker processes, the caller should pass ``n_jobs=1`` (XGBoost's ``nthread``) so the
workers do not oversubscribe the machine; the catalog leaves that choice to the executor.
"""

from __future__ import annotations

import importlib
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.preprocessing import LabelEncoder
from sklearn.svm import SVC
from sklearn.utils._param_validation import Interval
from xgboost import XGBClassifier

from mlship.spec.models import Task

CATALOG: dict[str, dict[str, str]] = {
    "classification": {
        "logistic_regression": "sklearn.linear_model.LogisticRegression",
        "knn": "sklearn.neighbors.KNeighborsClassifier",
        "svm": "mlship.train.catalog.CalibratedSVC",
        "decision_tree": "sklearn.tree.DecisionTreeClassifier",
        "random_forest": "sklearn.ensemble.RandomForestClassifier",
        "extra_trees": "sklearn.ensemble.ExtraTreesClassifier",
        "gradient_boosting": "sklearn.ensemble.GradientBoostingClassifier",
        "hist_gradient_boosting": "sklearn.ensemble.HistGradientBoostingClassifier",
        "lightgbm": "lightgbm.LGBMClassifier",
        "xgboost": "mlship.train.catalog.XGBLabelClassifier",
        "dummy": "sklearn.dummy.DummyClassifier",
    },
    "regression": {
        "linear_regression": "sklearn.linear_model.LinearRegression",
        "ridge": "sklearn.linear_model.Ridge",
        "lasso": "sklearn.linear_model.Lasso",
        "elastic_net": "sklearn.linear_model.ElasticNet",
        "knn": "sklearn.neighbors.KNeighborsRegressor",
        "svm": "sklearn.svm.SVR",
        "decision_tree": "sklearn.tree.DecisionTreeRegressor",
        "random_forest": "sklearn.ensemble.RandomForestRegressor",
        "extra_trees": "sklearn.ensemble.ExtraTreesRegressor",
        "gradient_boosting": "sklearn.ensemble.GradientBoostingRegressor",
        "hist_gradient_boosting": "sklearn.ensemble.HistGradientBoostingRegressor",
        "lightgbm": "lightgbm.LGBMRegressor",
        "xgboost": "xgboost.XGBRegressor",
        "dummy": "sklearn.dummy.DummyRegressor",
    },
}

DEFAULT_PARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "classification": {
        # saga (which the default search space uses for L1 and elastic-net) needs more than the
        # default 100 passes to converge; lbfgs stops as soon as it converges anyway.
        "logistic_regression": {"max_iter": 1000},
        "lightgbm": {"verbose": -1},
    },
    "regression": {
        "lightgbm": {"verbose": -1},
    },
}
"""Parameters a catalog entry starts from; the spec's ``params`` override them."""


class EstimatorLookupError(ValueError):
    """The estimator name or its parameters are not usable; the message says why.

    ``field`` is the spec field at fault: ``estimator`` or ``params``.
    """

    def __init__(self, message: str, field: str = "estimator") -> None:
        super().__init__(message)
        self.field = field


def resolve_estimator_class(name: str, task: Task) -> type[Any]:
    """The estimator class for a catalog name or a dotted path, checked against the task."""
    dotted = CATALOG[task].get(name, name)
    if "." not in dotted:
        known = ", ".join(sorted(CATALOG[task]))
        raise EstimatorLookupError(
            f"unknown estimator {name!r} for {task}; expected one of: {known}, "
            "or a dotted class path such as sklearn.svm.SVC"
        )
    module_name, _, class_name = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise EstimatorLookupError(f"cannot import estimator {dotted!r}: {exc}") from None
    if not (
        isinstance(cls, type)
        and hasattr(cls, "fit")
        and hasattr(cls, "predict")
        and hasattr(cls, "get_params")
    ):
        raise EstimatorLookupError(f"{dotted!r} is not a scikit-learn style estimator")
    kind = getattr(cls, "_estimator_type", None)
    if not isinstance(kind, str):
        try:
            kind = cls().__sklearn_tags__().estimator_type
        except Exception:
            kind = None
    wanted = "classifier" if task == "classification" else "regressor"
    if kind is not None and kind != wanted:
        raise EstimatorLookupError(f"{dotted!r} is a {kind}, but the task is {task}")
    return cls


def catalog_defaults(name: str, task: Task) -> dict[str, Any]:
    """The parameters catalog entry ``name`` starts from (empty for a dotted path)."""
    return dict(DEFAULT_PARAMS[task].get(name, {}))


def build_estimator(name: str, task: Task, params: dict[str, Any]) -> Any:
    """Instantiate an estimator and validate its parameters now, not minutes into a run.

    ``params`` are laid over the catalog entry's defaults (:data:`DEFAULT_PARAMS`).
    """
    cls = resolve_estimator_class(name, task)
    try:
        estimator = cls(**{**catalog_defaults(name, task), **params})
    except TypeError as exc:
        raise EstimatorLookupError(
            f"bad parameters for {cls.__name__}: {exc}", field="params"
        ) from None
    reason = parameter_problem(estimator)
    if reason is not None:
        raise EstimatorLookupError(reason, field="params")
    return estimator


def parameter_problem(estimator: Any) -> str | None:
    """Why the estimator's parameters are invalid, or None.

    Only estimators that declare their constraints (scikit-learn's ``_parameter_constraints``)
    can be checked before fitting; others are taken as they are.
    """
    if not isinstance(getattr(estimator, "_parameter_constraints", None), dict):
        return None
    validate = getattr(estimator, "_validate_params", None)
    if not callable(validate):
        return None
    try:
        validate()
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def qualified_name(estimator: Any) -> str:
    cls = type(estimator)
    return f"{cls.__module__.split('._')[0]}.{cls.__qualname__}"


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
