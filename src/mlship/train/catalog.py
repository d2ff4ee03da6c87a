"""The model catalog: short names for scikit-learn estimators, per task.

A spec may also name any importable estimator class by its dotted path
(``sklearn.svm.SVC``); the class must follow scikit-learn's estimator protocol.
"""

from __future__ import annotations

import importlib
from typing import Any

from mlship.spec.models import Task

CATALOG: dict[str, dict[str, str]] = {
    "classification": {
        "logistic_regression": "sklearn.linear_model.LogisticRegression",
        "knn": "sklearn.neighbors.KNeighborsClassifier",
        "svm": "sklearn.svm.SVC",
        "decision_tree": "sklearn.tree.DecisionTreeClassifier",
        "random_forest": "sklearn.ensemble.RandomForestClassifier",
        "extra_trees": "sklearn.ensemble.ExtraTreesClassifier",
        "gradient_boosting": "sklearn.ensemble.GradientBoostingClassifier",
        "hist_gradient_boosting": "sklearn.ensemble.HistGradientBoostingClassifier",
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
        "dummy": "sklearn.dummy.DummyRegressor",
    },
}


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
    if not (hasattr(cls, "fit") and hasattr(cls, "predict") and hasattr(cls, "get_params")):
        raise EstimatorLookupError(f"{dotted!r} is not a scikit-learn style estimator")
    kind = getattr(cls, "_estimator_type", None)
    if kind is None:
        try:
            kind = cls().__sklearn_tags__().estimator_type
        except Exception:
            kind = None
    wanted = "classifier" if task == "classification" else "regressor"
    if kind is not None and kind != wanted:
        raise EstimatorLookupError(f"{dotted!r} is a {kind}, but the task is {task}")
    return cls  # type: ignore[no-any-return]


def build_estimator(name: str, task: Task, params: dict[str, Any]) -> Any:
    """Instantiate an estimator and validate its parameters now, not minutes into a run."""
    cls = resolve_estimator_class(name, task)
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise EstimatorLookupError(
            f"bad parameters for {cls.__name__}: {exc}", field="params"
        ) from None
    validate = getattr(estimator, "_validate_params", None)
    if callable(validate):
        try:
            validate()
        except (ValueError, TypeError) as exc:
            raise EstimatorLookupError(str(exc), field="params") from None
    return estimator


def qualified_name(estimator: Any) -> str:
    cls = type(estimator)
    return f"{cls.__module__.split('._')[0]}.{cls.__qualname__}"
