"""The evaluation of a trained model: everything the test set and the training folds say about it,
gathered into one JSON-able dict, and written as JSON for machines and HTML for people.

The test set is scored once, by the selected model, after selection; the metrics, curves and
importances come from that one set of predictions (permutation importance re-scores shuffled copies
of it). The learning curve, the baseline and the fit verdict use the training part only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mlship.evaluation import curves
from mlship.evaluation.backtest import TimeOrder
from mlship.evaluation.diagnosis import diagnose, permutation_importances
from mlship.evaluation.metrics import classification_metrics, regression_metrics
from mlship.evaluation.render import render_evaluation_html
from mlship.evaluation.time_diagnosis import diagnose_over_time
from mlship.html.page import check_report_name, write_report_pair
from mlship.json_values import plain
from mlship.spec.models import Task
from mlship.train.folds import FoldResult
from mlship.train.metrics import METRICS
from mlship.train.scoring import predict_outputs

FORMAT_VERSION = 1


def evaluate(
    task: Task,
    model: Any,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    *,
    metric: str,
    cv: Any,
    fold_scores: Sequence[FoldResult],
    seed: int,
    n_jobs: int,
    positive_label: Any = None,
    refit: Any = None,
    time_order: TimeOrder | None = None,
    train_weights: Any = None,
    test_weights: Any = None,
) -> dict[str, Any]:
    """The evaluation of ``model`` (a fitted Pipeline over the raw input columns).

    ``refit`` is what the learning curve refits on subsets of the training rows, when that is not
    ``model`` itself (a model wrapped in a threshold tuner holds the run's fold indices, which a
    subset does not have).

    ``metric`` is the selection metric, which the fit verdict, the learning curve and the
    importances use. ``cv`` is the run's splitter or its (train, validation) index pairs;
    ``fold_scores`` are the selected candidate's cross-validation scores. ``positive_label``
    picks the class that binary precision, recall, F1 and the curves are about (by default the
    model's last class). The result has the same keys for every model of a task; undefined numbers
    are ``None``.

    With ``time_order`` (a timeseries split), the folds are judged in time order: the evaluation
    gains a ``backtest`` (every fold, then the test set) and the diagnosis tells over-fitting from
    drift (:mod:`mlship.evaluation.time_diagnosis`).
    With sample weights (``test_weights``, one per test row), the test metrics, their intervals
    and the ROC and precision-recall curves are the weighted ones; ``train_weights`` weigh the
    baseline. The learning curve, the permutation importances, the calibration curve and the
    confusion counts count rows as they are.
    """
    if metric not in METRICS[task]:
        raise ValueError(f"unknown {task} metric {metric!r}")
    if len(X_test) == 0:
        raise ValueError("the test set is empty")
    predictions, proba = predict_outputs(model, X_test, task)
    evaluation: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "task": task,
        "metric": metric,
        "rows": {"train": len(X_train), "test": len(X_test)},
        "columns": [str(c) for c in X_test.columns],
    }
    if task == "classification":
        classes = list(model.classes_)
        evaluation["classes"] = [plain(c) for c in classes]
        evaluation["metrics"] = classification_metrics(
            y_test,
            predictions,
            proba,
            classes,
            positive_label=positive_label,
            seed=seed,
            weights=test_weights,
        )
        positive = evaluation["metrics"]["positive_label"]
        found: dict[str, Any] = {"confusion_matrix": curves.confusion(y_test, predictions, classes)}
        if proba is not None:
            found["roc"] = curves.roc(y_test, proba, classes, positive, test_weights)
            found["precision_recall"] = curves.precision_recall(
                y_test, proba, classes, positive, test_weights
            )
            found["calibration"] = curves.calibration(y_test, proba, classes, positive)
        else:
            found["roc"] = found["precision_recall"] = found["calibration"] = None
        evaluation["curves"] = found
    else:
        evaluation["metrics"] = regression_metrics(
            y_test, predictions, seed=seed, weights=test_weights
        )
        evaluation["curves"] = {"points": curves.regression_points(y_test, predictions, seed=seed)}
    if time_order is None:
        evaluation["diagnosis"] = diagnose(
            task,
            model if refit is None else refit,
            X_train,
            y_train,
            metric=metric,
            cv=cv,
            fold_scores=fold_scores,
            seed=seed,
            n_jobs=n_jobs,
            positive=positive_label,
            weights=train_weights,
        )
    else:
        # The model itself is refitted on each fold (a tuned threshold stays as tuned), so the
        # folds' errors and the test set's come from the same decision rule.
        evaluation["diagnosis"], backtest = diagnose_over_time(
            task,
            model,
            X_train,
            y_train,
            predictions,
            y_test,
            metric=metric,
            cv=cv,
            fold_scores=fold_scores,
            test_score=evaluation["metrics"]["values"][metric]["value"],
            order=time_order,
            positive=positive_label,
        )
        evaluation["backtest"] = backtest.as_dict()
    evaluation["importance"] = permutation_importances(
        task,
        model,
        X_test,
        y_test,
        metric=metric,
        seed=seed,
        n_jobs=n_jobs,
        positive=positive_label,
    )
    return evaluation


def write_evaluation_report(
    directory: Path, name: str, evaluation: dict[str, Any], run: dict[str, Any]
) -> tuple[Path, Path]:
    """Write ``<name>.json`` (the run facts and the evaluation) and ``<name>.html`` into
    ``directory``, each atomically; return both paths.

    ``run`` holds the facts the page's header shows: ``id``, ``pipeline``, ``model`` (the
    candidate's name), ``estimator``, ``dataset_hash`` and ``created`` (ISO time); any other keys
    are shown after them.
    """
    check_report_name(name)
    document = {"name": name, "run": run, "evaluation": evaluation}
    return write_report_pair(
        directory, name, document, render_evaluation_html(name, evaluation, run)
    )
