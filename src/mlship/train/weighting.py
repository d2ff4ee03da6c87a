"""Sample weights and target transforms: how a spec's ``weight`` column and a regression target's
``target_transform`` reach every fit.

A sample weight says how much a row counts, in fitting and in scoring alike. Pipelines built by
:mod:`mlship.features.preprocess` end in a ``model`` step, and only that step is handed the
weights (``model__sample_weight``): preprocessing (imputation, scaling, encoding) is learnt from
the rows as they are, the same way with or without weights, so a weight changes the model and not
what the model is shown.

A target transform wraps the ``model`` step in scikit-learn's ``TransformedTargetRegressor``: the
estimator learns the transformed target and its predictions come back in the target's own units,
so every metric, every stored prediction and every served answer is in those units without any
consumer knowing about the transform.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from mlship.errors import DataError
from mlship.spec.data import TargetTransform

_FUNCTIONS: dict[str, tuple[Any, Any]] = {
    "log": (np.log, np.exp),
    "log1p": (np.log1p, np.expm1),
}


def accepts_sample_weight(estimator_class: type[Any]) -> bool:
    """Whether ``fit`` of the class, or of a class it forwards its keyword arguments to, takes
    ``sample_weight`` (the catalog's XGBoost classifier forwards ``**kwargs`` to XGBoost's)."""
    for klass in estimator_class.__mro__:
        fit = vars(klass).get("fit")
        if fit is None:
            continue
        try:
            parameters = inspect.signature(fit).parameters
        except (TypeError, ValueError):
            continue
        if "sample_weight" in parameters:
            return True
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return False
    return False


def fit_params(model: Any, weights: np.ndarray[Any, Any] | None) -> dict[str, Any]:
    """The keyword arguments that hand ``weights`` to the final step of ``model``'s fit."""
    if weights is None:
        return {}
    steps = getattr(model, "steps", None)
    if steps:
        return {f"{steps[-1][0]}__sample_weight": weights}
    return {"sample_weight": weights}


def fit_weighted(model: Any, X: pd.DataFrame, y: pd.Series, weights: Any = None) -> Any:
    """``model.fit(X, y)``, with the rows' sample ``weights`` when there are any."""
    if weights is None:
        return model.fit(X, y)
    w = np.asarray(weights, dtype=float)
    return model.fit(X, y, **fit_params(model, w))


def rows(weights: Any, index: Any) -> np.ndarray[Any, Any] | None:
    """The weights of the rows at positions ``index`` (``None`` stays ``None``)."""
    if weights is None:
        return None
    selected: np.ndarray[Any, Any] = np.asarray(weights, dtype=float)[index]
    return selected


def with_target_transform(pipeline: Any, transform: TargetTransform | None) -> Any:
    """``pipeline`` with its final step learning ``transform`` of the target (unchanged when
    there is none). The step keeps its name, so fit parameters address it as before."""
    if transform is None:
        return pipeline
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import PowerTransformer

    name, estimator = pipeline.steps[-1]
    if transform == "yeo_johnson":
        wrapped = TransformedTargetRegressor(
            regressor=estimator, transformer=PowerTransformer(method="yeo-johnson")
        )
    else:
        func, inverse = _FUNCTIONS[transform]
        wrapped = TransformedTargetRegressor(
            regressor=estimator, func=func, inverse_func=inverse, check_inverse=False
        )
    pipeline.steps[-1] = (name, wrapped)
    return pipeline


def final_estimator(model: Any) -> Any:
    """The estimator that does the learning: the ``model`` step of a pipeline, unwrapped from a
    target transform; the student's, for a distilled candidate."""
    learner = getattr(model, "learner", None)
    if callable(learner):
        model = learner()
    inner = getattr(model, "named_steps", {}).get("model", model)
    return getattr(inner, "regressor", inner) if _is_transformed(inner) else inner


def _is_transformed(estimator: Any) -> bool:
    from sklearn.compose import TransformedTargetRegressor

    return isinstance(estimator, TransformedTargetRegressor)


def check_target(name: str, transform: TargetTransform | None, y: pd.Series) -> None:
    """Refuse a target that ``transform`` cannot take, before anything is fitted."""
    if transform not in ("log", "log1p"):
        return
    values = np.asarray(y, dtype=float)
    bad = values <= 0 if transform == "log" else values < 0
    if not bad.any():
        return
    bound = "greater than 0" if transform == "log" else "0 or more"
    fix = "log1p for targets of 0 or more, or " if transform == "log" else ""
    raise DataError(
        f"target column {name!r}: target_transform {transform} needs values {bound}; "
        f"{int(bad.sum()):,} are not (the smallest is {values.min():g}); use "
        f"{fix}yeo_johnson, which takes any value"
    )


def check_weights(name: str, weights: Any, part: str) -> None:
    """Refuse a part of the data whose weights are all zero: no model can learn from it and no
    metric is defined on it. (Negative and missing weights never get this far: ingest
    quarantines their rows.)"""
    if weights is not None and not np.asarray(weights, dtype=float).sum() > 0:
        raise DataError(
            f"weight column {name!r}: every row of the {part} has weight 0, so there is "
            "nothing to learn from or score; give some rows a positive weight"
        )


class SampleWeighted(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A classifier pipeline whose ``fit`` takes ``sample_weight`` and hands it to the final
    step, for scikit-learn meta-estimators that route weights by metadata requests (the
    threshold tuner): the pipeline's preprocessing steps then never receive them."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SampleWeighted:
        from sklearn import config_context

        with config_context(enable_metadata_routing=False):
            fit_weighted(self.pipeline, X, y, sample_weight)
        self.classes_ = self.pipeline.classes_
        return self

    def predict_proba(self, X: Any) -> Any:
        return self.pipeline.predict_proba(X)

    def predict(self, X: Any) -> Any:
        return self.pipeline.predict(X)
