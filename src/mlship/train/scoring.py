"""Predicting with a fitted pipeline, once, for every consumer: CV folds, holdout, files, HTTP."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlship.spec.models import Task
from mlship.train.estimators import DecisionThreshold
from mlship.train.metrics import PROBABILITY_METRICS, compute_metric, compute_metrics

_ARGMAX = frozenset(
    {
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "lightgbm.sklearn.LGBMClassifier",
        "mlship.train.estimators.CalibratedSVC",
        "mlship.train.xgb.XGBLabelClassifier",
    }
)
"""Classifiers whose ``predict`` is the class of the largest probability (its first on a tie):
their predictions are derived from ``predict_proba``'s result, the same labels without a second
pass through the model."""

_SIGN = {
    "sklearn.linear_model._logistic.LogisticRegression": False,
    "sklearn.ensemble._gb.GradientBoostingClassifier": True,
}
"""Classifiers whose ``predict`` is the sign of a decision function whose logistic is the
probability (the positive class above 0, or at 0 too when True); for more than two classes, the
largest probability, as above."""


def _kind(estimator: Any) -> str:
    return f"{type(estimator).__module__}.{type(estimator).__qualname__}"


def _from_probabilities(estimator: Any, probabilities: Any) -> np.ndarray[Any, Any] | None:
    """``estimator``'s predictions derived from its probabilities, when its decision rule is
    known to be the one below; None otherwise (the caller asks ``predict``)."""
    kind = _kind(estimator)
    classes = np.asarray(estimator.classes_)
    matrix = np.asarray(probabilities)
    if matrix.ndim != 2 or matrix.shape[1] != len(classes):
        return None
    if kind in _SIGN and len(classes) == 2:
        positive = matrix[:, 1]
        decided = positive >= 0.5 if _SIGN[kind] else positive > 0.5
        result: np.ndarray[Any, Any] = classes[decided.astype(np.intp)]
        return result
    if kind in _ARGMAX or kind in _SIGN:
        return classes[np.argmax(matrix, axis=1)]  # type: ignore[no-any-return]
    return None


def predict_outputs(
    pipeline: Any, frame: pd.DataFrame, task: Task, *, proba: bool = True
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    """Predictions, and class probabilities (one column per class) for classifiers.

    The preprocessing steps run once; for a classifier the final estimator is asked for its
    probabilities only, and the predictions are derived from them with its own decision rule
    (the tuned threshold of a :class:`DecisionThreshold`; the largest probability, or the
    logistic's 0.5 for the estimators in ``_ARGMAX`` and ``_SIGN``): the labels ``predict``
    gives, at half the cost. An estimator whose rule is not known here (k-nearest neighbours,
    a random dummy) is asked for both. ``proba=False`` skips the probabilities for a caller that
    has no use for them. Resampling steps are skipped, as imbalanced-learn's Pipeline skips them
    when predicting. A model that is not a Pipeline is called as a whole.
    """
    decide = None
    if isinstance(pipeline, DecisionThreshold):  # one pass: probabilities, then the decision
        decide, pipeline = pipeline.decide, pipeline.pipeline
    if hasattr(pipeline, "steps"):
        features: Any = frame
        for _, step in pipeline.steps[:-1]:
            if hasattr(step, "transform"):  # samplers only resample in fit; predict skips them
                features = step.transform(features)
        estimator = pipeline.steps[-1][1]
    else:
        features, estimator = frame, pipeline
    if decide is not None:
        probabilities = estimator.predict_proba(features)
        return decide(probabilities), probabilities
    if not (proba and task == "classification" and hasattr(estimator, "predict_proba")):
        return estimator.predict(features), None
    probabilities = estimator.predict_proba(features)
    predictions = _from_probabilities(estimator, probabilities)
    if predictions is None:
        predictions = estimator.predict(features)
    return predictions, probabilities


def score(
    task: Task,
    pipeline: Any,
    frame: pd.DataFrame,
    y: pd.Series,
    positive: Any = None,
    weights: Any = None,
) -> dict[str, float]:
    """Every metric of ``task`` for ``pipeline`` on ``frame`` against the true values ``y``
    (binary ones about the ``positive`` class; the last class when it is ``None``), weighted by
    the rows' sample ``weights`` when given."""
    predictions, proba = predict_outputs(pipeline, frame, task)
    classes = getattr(pipeline, "classes_", None)
    return compute_metrics(task, y, predictions, proba, classes, positive, weights)


def score_metric(
    task: Task,
    metric: str,
    pipeline: Any,
    frame: pd.DataFrame,
    y: pd.Series,
    positive: Any = None,
    weights: Any = None,
) -> float | None:
    """One metric of ``pipeline`` on ``frame``; ``None`` where it is not defined."""
    predictions, proba = predict_outputs(pipeline, frame, task, proba=metric in PROBABILITY_METRICS)
    classes = getattr(pipeline, "classes_", None)
    return compute_metric(task, metric, y, predictions, proba, classes, positive, weights)
