"""Decision-threshold tuning for binary classifiers, on out-of-fold predictions.

A classifier trained on imbalanced data predicts the majority class too often at the default 0.5
cut-off. scikit-learn's ``TunedThresholdClassifierCV`` picks the cut-off that maximises a metric
using the same cross-validation folds as the rest of the run, then refits on the training part, so
the test set plays no part in the choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlship.train.estimators import DecisionThreshold
from mlship.train.folds import Folds
from mlship.train.metrics import positive_index
from mlship.train.threshold_scores import POSITIVE_METRICS, SCORES

THRESHOLD_METRICS = tuple(SCORES)


@dataclass(frozen=True)
class TunedThreshold:
    """The tuned model and what the tuning found, for the run's record."""

    model: Any
    threshold: float
    metric: str
    cv_score_at_default: float
    cv_score_tuned: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "threshold": self.threshold,
            "cv_score_at_0.5": self.cv_score_at_default,
            "cv_score_tuned": self.cv_score_tuned,
        }


def _scorer(metric: str, thresholded: Any) -> Any:
    """The tuner's scorer: scikit-learn's, scoring with the counting functions of
    :mod:`mlship.train.threshold_scores`, which the tuner calls for every candidate cut-off.

    The scorer's ``pos_label`` is also the class whose probability the tuner thresholds. The
    metrics that treat both classes alike take it too, only to spare sorting the labels at every
    call, so it must be the class scikit-learn thresholds for them anyway: the last.
    """
    from sklearn.metrics import make_scorer

    extra = {"zero_division": 0} if metric in POSITIVE_METRICS else {}
    return make_scorer(SCORES[metric], pos_label=thresholded, **extra)


def tune_threshold(
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    folds: Folds,
    metric: str,
    positive: Any = None,
    *,
    weights: np.ndarray[Any, Any] | None = None,
) -> TunedThreshold:
    """Fit ``pipeline`` wrapped in a threshold tuner on ``X``/``y`` with the run's folds.

    For F1, precision and recall the threshold applies to the probability of the ``positive``
    class (by default the last); the other metrics treat both classes alike, and scikit-learn
    thresholds the last class's probability for them. With ``weights`` (the rows' sample
    weights), every fit is weighted and the threshold maximises the weighted metric.
    """
    from sklearn.model_selection import TunedThresholdClassifierCV

    classes = np.unique(np.asarray(y)).tolist()
    if len(classes) != 2:
        raise ValueError(f"threshold tuning needs two classes, found {len(classes)}")
    label = classes[positive_index(classes, positive)]
    # scikit-learn thresholds the scorer's positive class, or the last class for metrics that
    # have none; the served model decides the same way without carrying the tuner.
    decided = label if metric in POSITIVE_METRICS else classes[-1]
    if weights is None:
        tuner = TunedThresholdClassifierCV(
            pipeline,
            scoring=_scorer(metric, decided),
            cv=list(folds),
            thresholds=200,
            store_cv_results=True,
        )
        tuner.fit(X, y)
        fitted = tuner.estimator_
    else:
        tuner = _weighted_fit(pipeline, X, y, folds, _scorer(metric, decided), weights)
        fitted = tuner.estimator_.pipeline
    results = tuner.cv_results_
    thresholds, scores = np.asarray(results["thresholds"]), np.asarray(results["scores"])
    at_default = float(scores[int(np.argmin(np.abs(thresholds - 0.5)))])
    return TunedThreshold(
        model=DecisionThreshold(fitted, float(tuner.best_threshold_), decided),
        threshold=float(tuner.best_threshold_),
        metric=metric,
        cv_score_at_default=at_default,
        cv_score_tuned=float(tuner.best_score_),
    )


def _weighted_fit(
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    folds: Folds,
    scorer: Any,
    weights: np.ndarray[Any, Any],
) -> Any:
    """The tuner fitted with sample weights: scikit-learn passes them on by metadata routing,
    which asks every consumer to say whether it wants them; the pipeline is wrapped so that only
    its final step receives them, and the scorer asks for them to weigh each fold's score."""
    from sklearn import config_context
    from sklearn.model_selection import TunedThresholdClassifierCV

    from mlship.train.weighting import SampleWeighted

    with config_context(enable_metadata_routing=True):
        tuner = TunedThresholdClassifierCV(
            SampleWeighted(pipeline).set_fit_request(sample_weight=True),
            scoring=scorer.set_score_request(sample_weight=True),
            cv=list(folds),
            thresholds=200,
            store_cv_results=True,
        )
        tuner.fit(X, y, sample_weight=np.asarray(weights, dtype=float))
    return tuner
