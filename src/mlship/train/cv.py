"""Cross-validation of every candidate, fold by fold, in parallel.

Each (candidate, fold) pair is one job; jobs run in a joblib process pool and report as they finish,
so the progress display moves fold by fold. Every fold records both validation and training scores,
which later reports use to show over- and under-fitting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold

from mlship.spec.models import Task
from mlship.train.scoring import score


@dataclass(frozen=True)
class FoldScore:
    candidate: str
    fold: int
    validation: dict[str, float]
    train: dict[str, float]
    fit_seconds: float


def fit_and_score(
    task: Task,
    candidate: str,
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    fold: int,
    train_index: np.ndarray[Any, Any],
    valid_index: np.ndarray[Any, Any],
) -> FoldScore:
    model = clone(pipeline)
    X_train, y_train = X.iloc[train_index], y.iloc[train_index]
    started = time.perf_counter()
    model.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - started
    return FoldScore(
        candidate=candidate,
        fold=fold,
        validation=score(task, model, X.iloc[valid_index], y.iloc[valid_index]),
        train=score(task, model, X_train, y_train),
        fit_seconds=fit_seconds,
    )


def make_folds(
    task: Task, y: pd.Series, folds: int, seed: int, stratify: bool
) -> list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    splitter: KFold | StratifiedKFold
    if task == "classification" and stratify:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def cross_validate_all(
    task: Task,
    candidates: Sequence[tuple[str, Any]],
    X: pd.DataFrame,
    y: pd.Series,
    folds: Sequence[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]],
    *,
    n_jobs: int = -1,
    on_fold: Callable[[FoldScore], None] | None = None,
) -> list[FoldScore]:
    """Score every candidate on every fold; ``on_fold`` is called as each fold completes."""
    jobs = [
        delayed(fit_and_score)(task, name, pipeline, X, y, index, train_index, valid_index)
        for name, pipeline in candidates
        for index, (train_index, valid_index) in enumerate(folds)
    ]
    results: list[FoldScore] = []
    runner = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    for fold_score in runner(jobs):
        results.append(fold_score)
        if on_fold is not None:
            on_fold(fold_score)
    return sorted(results, key=lambda s: (s.candidate, s.fold))
