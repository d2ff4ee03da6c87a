"""Decision-threshold tuning: mlship's tuner vs scikit-learn's own scoring, on the same folds.

Both sides are scikit-learn's ``TunedThresholdClassifierCV`` over the same pipeline, the same
stratified folds and the same 200 candidate cut-offs. scikit-learn's side scores each cut-off with
its metric function (``f1_score``, ``balanced_accuracy_score``, ``matthews_corrcoef``); mlship's
side is :func:`mlship.train.threshold.tune_threshold`, which scores with the confusion counts of
:mod:`mlship.train.threshold_scores`. The two must choose the same threshold with the same CV
score; the table gives each side's wall time and the ratio.

The data: scikit-learn's bundled breast-cancer measurements (569 real patients, "benign" the
class of interest), mlship's bundled churn example (about 5% churn), and a generated imbalanced
problem of ``--rows`` rows to show how the difference grows with the fold size.

    python benchmarks/bench_threshold.py [--rows 50000] [--folds 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score, make_scorer, matthews_corrcoef
from sklearn.model_selection import StratifiedKFold, TunedThresholdClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlship.config import Settings
from mlship.data.ingest import ingest
from mlship.examples.churn import write_project
from mlship.spec import load_spec
from mlship.train.threshold import tune_threshold
from mlship.workspace import Workspace

SKLEARN_METRICS: dict[str, Callable[..., float]] = {
    "f1": f1_score,
    "balanced_accuracy": balanced_accuracy_score,
    "mcc": matthews_corrcoef,
}


@dataclass(frozen=True)
class Problem:
    name: str
    X: pd.DataFrame
    y: pd.Series
    positive: Any


def breast_cancer() -> Problem:
    bunch = load_breast_cancer(as_frame=True)
    y = bunch.target.map(dict(enumerate(bunch.target_names)))
    return Problem("breast cancer (569 rows)", bunch.data, y, "benign")


def churn() -> Problem:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = load_spec(write_project(root / "churn"))
        workspace = Workspace.open(Settings(home=root / "home", n_jobs=1, user="bench"))
        try:
            frame = ingest(spec, workspace).frame
        finally:
            workspace.close()
    numeric = frame.select_dtypes("number").drop(columns=["age"], errors="ignore")
    X = numeric.fillna(numeric.median())
    return Problem(f"churn example ({len(X):,} rows)", X, frame["churned"].astype(str), "yes")


def generated(rows: int) -> Problem:
    X, y = make_classification(
        n_samples=rows, n_features=20, n_informative=6, weights=[0.9], random_state=0
    )
    labels = pd.Series(np.where(y == 1, "rare", "common"))
    return Problem(f"generated ({rows:,} rows)", pd.DataFrame(X).add_prefix("x"), labels, "rare")


def with_sklearn(problem: Problem, metric: str, folds: list[Any]) -> tuple[float, float]:
    """The threshold and CV score scikit-learn's own metric function chooses."""
    kwargs = {"pos_label": problem.positive, "zero_division": 0} if metric == "f1" else {}
    tuner = TunedThresholdClassifierCV(
        _pipeline(),
        scoring=make_scorer(SKLEARN_METRICS[metric], **kwargs),
        cv=folds,
        thresholds=200,
    )
    tuner.fit(problem.X, problem.y)
    return float(tuner.best_threshold_), float(tuner.best_score_)


def with_mlship(problem: Problem, metric: str, folds: list[Any]) -> tuple[float, float]:
    tuned = tune_threshold(_pipeline(), problem.X, problem.y, folds, metric, problem.positive)
    return tuned.threshold, tuned.cv_score_tuned


def _pipeline() -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def _timed(fn: Callable[[], tuple[float, float]]) -> tuple[float, float, float]:
    started = time.perf_counter()
    threshold, score = fn()
    return threshold, score, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the generated problem")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()

    table = Table(title=f"Threshold tuning, 200 cut-offs x {args.folds} folds")
    for column in ("data", "metric", "threshold", "CV score", "scikit-learn s", "mlship s"):
        table.add_column(column, justify="left" if column in ("data", "metric") else "right")
    table.add_column("speed-up", justify="right")
    console = Console(width=130)
    for problem in (breast_cancer(), churn(), generated(args.rows)):
        splitter = StratifiedKFold(args.folds, shuffle=True, random_state=0)
        folds = list(splitter.split(problem.X, problem.y))
        for metric in SKLEARN_METRICS:
            console.log(f"{problem.name}: {metric}")
            theirs = _timed(lambda: with_sklearn(problem, metric, folds))  # noqa: B023
            ours = _timed(lambda: with_mlship(problem, metric, folds))  # noqa: B023
            if not (np.isclose(theirs[0], ours[0]) and np.isclose(theirs[1], ours[1])):
                raise SystemExit(
                    f"{problem.name}, {metric}: scikit-learn chose {theirs[0]:.4f} "
                    f"(CV {theirs[1]:.4f}) but mlship chose {ours[0]:.4f} (CV {ours[1]:.4f})"
                )
            table.add_row(
                problem.name, metric, f"{ours[0]:.4f}", f"{ours[1]:.4f}",
                f"{theirs[2]:.2f}", f"{ours[2]:.2f}", f"{theirs[2] / ours[2]:.1f}x",
            )  # fmt: skip
    console.print(table)
    console.print("Same threshold and CV score on every row (checked); speed-up = their s / ours.")


if __name__ == "__main__":
    main()
