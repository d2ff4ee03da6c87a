"""The model catalog: short names for estimators, per task, with the defaults they start from.

The catalog covers scikit-learn's main classifiers and regressors plus LightGBM and XGBoost. A spec
may also name any importable estimator class by its dotted path (``sklearn.svm.SVC``); the class
must follow scikit-learn's estimator protocol.

Two catalog entries are thin wrappers, so that they behave like every other entry inside the
project's Pipeline:

* ``svm`` (classification) is ``CalibratedSVC``: SVC with calibrated class probabilities;
* ``xgboost`` (classification) is ``XGBLabelClassifier``: XGBoost's classifier for any labels.

They are in :mod:`mlship.train.estimators` and :mod:`mlship.train.xgb`, imported only when named.

Thread use: LightGBM and XGBoost use every core by default (``n_jobs``). When folds or trials run
in parallel worker processes, the caller should pass ``n_jobs=1`` (XGBoost's ``nthread``) so the
workers do not oversubscribe the machine; the catalog leaves that choice to the executor.
"""

from __future__ import annotations

import importlib
from typing import Any

from mlship.spec.models import Task

CATALOG: dict[str, dict[str, str]] = {
    "classification": {
        "logistic_regression": "sklearn.linear_model.LogisticRegression",
        "knn": "sklearn.neighbors.KNeighborsClassifier",
        "svm": "mlship.train.estimators.CalibratedSVC",
        "decision_tree": "sklearn.tree.DecisionTreeClassifier",
        "random_forest": "sklearn.ensemble.RandomForestClassifier",
        "extra_trees": "sklearn.ensemble.ExtraTreesClassifier",
        "gradient_boosting": "sklearn.ensemble.GradientBoostingClassifier",
        "hist_gradient_boosting": "sklearn.ensemble.HistGradientBoostingClassifier",
        "lightgbm": "lightgbm.LGBMClassifier",
        "xgboost": "mlship.train.xgb.XGBLabelClassifier",
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
