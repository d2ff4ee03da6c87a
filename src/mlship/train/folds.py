"""One unit of training work: fit a candidate on one fold and score it, with what it cost.

Every executor (in-process, a local pool, Ray) runs the same function on the same inputs, so a
search makes the same choices wherever it runs. A fold that fails (a parameter combination the
estimator rejects, a numerical error) comes back as a result carrying the error, so one bad trial
fails alone instead of cancelling its neighbours.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlship.train.candidates import Recipe
from mlship.train.cost import Usage, measure, predict_latency
from mlship.train.fit_warnings import Caught, catching
from mlship.train.scoring import score, score_metric
from mlship.train.weighting import fit_weighted, rows

Folds = list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]


@dataclass(frozen=True)
class FoldJob:
    """Fit ``candidate`` with ``params`` on fold ``fold``; ``trial`` is -1 when not tuning."""

    candidate: str
    fold: int
    params: dict[str, Any] = field(default_factory=dict)
    trial: int = -1


@dataclass(frozen=True)
class FoldResult:
    candidate: str
    fold: int
    trial: int
    validation: dict[str, float]
    train: dict[str, float]
    fit_seconds: float
    usage: Usage
    error: str | None = None
    warnings: Caught = ()
    """Library warnings the fit and scoring raised, counted (:mod:`mlship.train.fit_warnings`)."""

    @property
    def ok(self) -> bool:
        return self.error is None


def shared_inputs(
    recipes: dict[str, Recipe],
    X: pd.DataFrame,
    y: pd.Series,
    folds: Folds,
    metric: str | None = None,
    weights: np.ndarray[Any, Any] | None = None,
) -> dict[str, Any]:
    """What every fold job reads; executors send it to each worker once.

    With ``metric``, a fold scores its training rows on that metric alone (the fit gap needs no
    more, and scoring the larger part on every metric costs as much as a small fit); without it,
    on every metric, as the validation rows always are. With ``weights`` (one sample weight per
    row of ``X``), every fit is weighted and every score is the weighted one. Sample-first
    screening adds ``screening: True`` (and a ``metric``): its folds only rank points, so they
    score the validation rows on that metric alone and the training rows not at all.
    """
    return {"recipes": recipes, "X": X, "y": y, "folds": folds, "metric": metric, "w": weights}


def run_fold(job: FoldJob, shared: dict[str, Any]) -> FoldResult:
    """Fit and score one fold (runs in a worker)."""
    recipe: Recipe = shared["recipes"][job.candidate]
    X: pd.DataFrame = shared["X"]
    y: pd.Series = shared["y"]
    train_index, valid_index = shared["folds"][job.fold]
    X_train, y_train = X.iloc[train_index], y.iloc[train_index]
    weights = shared.get("w")
    w_train, w_valid = rows(weights, train_index), rows(weights, valid_index)
    fit_seconds = 0.0
    with measure() as meter, catching() as caught:
        try:
            model = recipe.build(job.params)
            started = time.perf_counter()
            fit_weighted(model, X_train, y_train, w_train)
            fit_seconds = time.perf_counter() - started
            valid_X, valid_y = X.iloc[valid_index], y.iloc[valid_index]
            if shared.get("screening"):  # a screening stage ranks on the metric alone
                metric = shared["metric"]
                validation = _train_scores(recipe, model, valid_X, valid_y, metric, w_valid)
                train = {}
            else:
                validation = score(recipe.task, model, valid_X, valid_y, recipe.positive, w_valid)
                train = _train_scores(
                    recipe, model, X_train, y_train, shared.get("metric"), w_train
                )
            error = None
        except Exception as exc:  # reported with the trial, not raised
            validation, train = {}, {}
            error = f"{type(exc).__name__}: {exc}"
    return FoldResult(
        candidate=job.candidate,
        fold=job.fold,
        trial=job.trial,
        validation=validation,
        train=train,
        fit_seconds=fit_seconds,
        usage=meter.usage,
        error=error,
        warnings=caught.caught,
    )


def _train_scores(
    recipe: Recipe,
    model: Any,
    X: pd.DataFrame,
    y: pd.Series,
    metric: str | None,
    weights: np.ndarray[Any, Any] | None,
) -> dict[str, float]:
    if metric is None:
        return score(recipe.task, model, X, y, recipe.positive, weights)
    value = score_metric(recipe.task, metric, model, X, y, recipe.positive, weights)
    return {} if value is None else {metric: value}


@dataclass(frozen=True)
class FitJob:
    """Fit ``candidate`` with ``params`` on the whole training part."""

    candidate: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fitted:
    """A candidate fitted on the training part: the model, what fitting cost, how fast it is."""

    candidate: str
    model: Any
    usage: Usage
    predict_p50_seconds: float
    predict_p95_seconds: float
    warnings: Caught = ()
    model_bytes: int | None = None
    """The fitted model pickled as the registry stores it: the memory serving it holds."""


def fit_full(job: FitJob, shared: dict[str, Any]) -> Fitted:
    """Fit on every training row (runs in a worker) and time single-row predictions."""
    recipe: Recipe = shared["recipes"][job.candidate]
    X: pd.DataFrame = shared["X"]
    model = recipe.build(job.params)
    with catching() as caught:
        with measure() as meter:
            fit_weighted(model, X, shared["y"], shared.get("w"))
        latency = predict_latency(model, X.iloc[:1], repeats=30)
    return Fitted(
        candidate=job.candidate,
        model=model,
        usage=meter.usage,
        predict_p50_seconds=latency["p50_seconds"],
        predict_p95_seconds=latency["p95_seconds"],
        warnings=caught.caught,
        model_bytes=len(pickle.dumps(model, protocol=5)),
    )
