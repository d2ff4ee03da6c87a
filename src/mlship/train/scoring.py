"""Predicting with a fitted pipeline, once, for every consumer: CV folds, holdout, files, HTTP."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlship.spec.models import Task
from mlship.train.estimators import DecisionThreshold
from mlship.train.metrics import PROBABILITY_METRICS, compute_metric, compute_metrics


def predict_outputs(
    pipeline: Any, frame: pd.DataFrame, task: Task, *, proba: bool = True
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    """Predictions, and class probabilities (one column per class) for classifiers.

    The preprocessing steps run once and feed both ``predict`` and ``predict_proba`` of the final
    estimator: the same numbers as calling the pipeline twice, at half the cost. ``proba=False``
    skips the probabilities for a caller that has no use for them. Resampling steps are skipped,
    as imbalanced-learn's Pipeline skips them when predicting. A model that is not a
    Pipeline (a pipeline wrapped in a decision-threshold tuner) is called as a whole.
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
    predictions = estimator.predict(features)
    probabilities = None
    if proba and task == "classification" and hasattr(estimator, "predict_proba"):
        probabilities = estimator.predict_proba(features)
    return predictions, probabilities


def score(
    task: Task, pipeline: Any, frame: pd.DataFrame, y: pd.Series, positive: Any = None
) -> dict[str, float]:
    """Every metric of ``task`` for ``pipeline`` on ``frame`` against the true values ``y``
    (binary ones about the ``positive`` class; the last class when it is ``None``)."""
    predictions, proba = predict_outputs(pipeline, frame, task)
    classes = getattr(pipeline, "classes_", None)
    return compute_metrics(task, y, predictions, proba, classes, positive)


def score_metric(
    task: Task,
    metric: str,
    pipeline: Any,
    frame: pd.DataFrame,
    y: pd.Series,
    positive: Any = None,
) -> float | None:
    """One metric of ``pipeline`` on ``frame``; ``None`` where it is not defined."""
    predictions, proba = predict_outputs(pipeline, frame, task, proba=metric in PROBABILITY_METRICS)
    classes = getattr(pipeline, "classes_", None)
    return compute_metric(task, metric, y, predictions, proba, classes, positive)
