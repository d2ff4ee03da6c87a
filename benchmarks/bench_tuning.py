"""Hyper-parameter tuning: mlship's search vs scikit-learn's GridSearchCV and RandomizedSearchCV.

The data is mlship's bundled churn example (the quickstart's three sources, ingested and checked
by mlship: about 6,000 customers, 5% churn). Every search tunes the same random forest pipeline
(mlship's preprocessing + ``RandomForestClassifier``, built by the same recipe) over the same space,
on the same training rows and the same five stratified folds, for the same number of trials, scored
by average precision (PR-AUC); the best parameters are then refitted on the training part and scored
once on the held-out test rows. Wall time covers the search and the refit.

* grid: both tools visit the same points (mlship's grid of the space, cut at the budget in its
  seeded order, handed to GridSearchCV as the list of points), so their best scores must agree
  unless pruning stopped a trial that would have won;
* random: the same budget of random draws (different draws: each tool samples its own way);
* bayes: mlship's Optuna TPE search, which scikit-learn does not have;
* grid, sample-first: the same grid points screened on growing stratified samples of the training
  rows (``--fraction``, ``--keep``), the survivors cross-validated on every row; its best CV score
  is compared with GridSearchCV's best within that score's standard error (the best point's
  fold scores' standard deviation / sqrt(folds)), and its wall and CPU time with GridSearchCV's.

mlship prunes (the median pruner stops a trial whose running mean after a fold lags the median of
earlier trials) and stores every trial in a SQLite study, as ``mlship run`` does. scikit-learn
runs every fold of every point. Then the same Bayesian search runs on mlship's local process pool
and on a local Ray instance to measure their speed-up over in-process on this machine's cores
(Ray's start-up is reported apart; a long-lived cluster pays it once).

    python benchmarks/bench_tuning.py [--trials 24] [--trees 50] [--rows 6000] [--skip-ray]
        [--sample-first-only] [--fraction 0.1] [--keep 0.25]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from mlship.config import Settings
from mlship.data.ingest import ingest
from mlship.examples.churn import write_project
from mlship.spec import load_spec
from mlship.spec.training import SampleFirst, Tuning
from mlship.train.candidates import Recipe
from mlship.train.cost import Prices
from mlship.train.executors import Executor, InlineExecutor, ProcessExecutor, RayExecutor
from mlship.train.folds import shared_inputs
from mlship.train.scoring import score
from mlship.train.spaces import grid
from mlship.train.splits import cv_folds, train_test_indices
from mlship.train.tuning import Search, storage_for
from mlship.workspace import Workspace

METRIC = "average_precision"
SPACE: dict[str, Any] = {
    "max_depth": [4, 8, 16, None],
    "min_samples_leaf": {"int": [1, 64], "log": True},
    "max_features": {"float": [0.2, 1.0]},
}
SEED = 42


@dataclass(frozen=True)
class Data:
    recipe: Recipe
    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    folds: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]


@dataclass(frozen=True)
class Row:
    tool: str
    method: str
    runs_on: str
    trials: int
    pruned: int
    fits: int
    seconds: float
    cv: float
    test: float
    params: dict[str, Any]
    cpu: float = float("nan")
    """CPU seconds of this process (every row runs in it: inline, or scikit-learn's n_jobs=1)."""
    cv_se: float = float("nan")
    """Standard error of the best point's CV score (its folds' standard deviation / sqrt(k))."""


def load(root: Path, rows: int, trees: int) -> Data:
    """The churn example as ``mlship run`` sees it: ingested, checked, split."""
    loaded = load_spec(write_project(root / "churn", n=rows))
    spec = loaded.spec
    workspace = Workspace.open(Settings(home=root / "ws", n_jobs=1))
    try:
        frame = ingest(loaded, workspace).frame.reset_index(drop=True)
    finally:
        workspace.close()
    y = frame[spec.target.name].astype("object")
    train, test = train_test_indices(frame, y, spec.split, spec.task)
    train_frame = frame.iloc[train].reset_index(drop=True)
    y_train = y.iloc[train].reset_index(drop=True)
    features = [c.name for c in spec.features]
    recipe = Recipe(
        name="forest",
        estimator="random_forest",
        task="classification",
        params={"n_estimators": trees, "n_jobs": 1},
        features=tuple(spec.features),
        seed=SEED,
    )
    return Data(
        recipe=recipe,
        X_train=train_frame[features],
        y_train=y_train,
        X_test=frame.iloc[test][features].reset_index(drop=True),
        y_test=y.iloc[test].reset_index(drop=True),
        folds=cv_folds(train_frame, y_train, spec.split, spec.task),
    )


def test_score(data: Data, params: dict[str, Any]) -> tuple[float, float]:
    """Refit ``params`` on the training part; the test score and the refit's seconds."""
    started = time.perf_counter()
    model = data.recipe.build(params).fit(data.X_train, data.y_train)
    seconds = time.perf_counter() - started
    return score("classification", model, data.X_test, data.y_test)[METRIC], seconds


def run_mlship(
    data: Data,
    method: str,
    trials: int,
    executor: Executor,
    runs_on: str,
    db: Path,
    sample_first: SampleFirst | None = None,
) -> Row:
    shared = shared_inputs({"forest": data.recipe}, data.X_train, data.y_train, data.folds, METRIC)
    tuning = Tuning(
        method=method,
        trials=trials,
        batch=4,
        pruner="median",
        seed=SEED,
        sample_first=sample_first,
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    search = Search(
        study_name=f"{method}-{runs_on}{'-sample-first' if sample_first else ''}",
        storage=storage_for(f"sqlite:///{db}"),
        candidate="forest",
        space=SPACE,
        tuning=tuning,
        metric=METRIC,
        bigger=True,
        n_folds=len(data.folds),
        prices=Prices(),
    )
    stages = search.screen(executor, shared)
    outcome = search.run(executor, shared)
    searched = time.perf_counter() - started
    test, refit = test_score(data, outcome.best_params)
    states = [t.state for t in outcome.trials]
    screen_folds = 0 if sample_first is None else min(sample_first.folds, len(data.folds))
    screened = sum(stage.candidates for stage in stages) * screen_folds
    return Row(
        tool="mlship",
        method=method if sample_first is None else f"{method}, sample-first",
        runs_on=runs_on,
        trials=len(outcome.trials),
        pruned=states.count("PRUNED"),
        fits=screened + sum(len(t.fold_scores) for t in outcome.trials),
        cpu=time.process_time() - cpu_started,
        seconds=searched + refit,
        cv=outcome.best_value,
        test=test,
        params=outcome.best_params,
    )


def sklearn_grid_points(trials: int) -> list[dict[str, Any]]:
    """mlship's grid points (cut at ``trials`` in its seeded order) as GridSearchCV's list."""
    points = grid(SPACE, Tuning().grid_points, limit=trials, seed=SEED)
    return [{f"model__{k}": [v] for k, v in point.items()} for point in points]


class _IntLogUniform:
    """Whole numbers from ``low`` to ``high`` on a log scale (what mlship's ``log: true`` int
    range samples), in the ``rvs`` form RandomizedSearchCV takes."""

    def __init__(self, low: int, high: int) -> None:
        from scipy.stats import loguniform

        self.low, self.high = low, high
        self.dist = loguniform(low, high + 1)

    def rvs(self, random_state: Any = None, size: Any = None) -> Any:
        value = np.floor(self.dist.rvs(random_state=random_state, size=size)).astype(int)
        return np.clip(value, self.low, self.high)


def run_sklearn(data: Data, method: str, trials: int, n_jobs: int, runs_on: str) -> Row:
    from sklearn.metrics import average_precision_score, make_scorer
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    pipeline = data.recipe.build()
    # PR-AUC of the churners ("yes"): the labels are strings, so the positive class is named.
    scorer = make_scorer(average_precision_score, response_method="predict_proba", pos_label="yes")
    search: Any
    if method == "grid":
        search = GridSearchCV(
            pipeline, sklearn_grid_points(trials), scoring=scorer, cv=data.folds, n_jobs=n_jobs
        )
    else:
        distributions = {
            "model__max_depth": [4, 8, 16, None],
            "model__min_samples_leaf": _IntLogUniform(1, 64),
            "model__max_features": _Uniform(0.2, 1.0),
        }
        search = RandomizedSearchCV(
            pipeline,
            distributions,
            n_iter=trials,
            scoring=scorer,
            cv=data.folds,
            n_jobs=n_jobs,
            random_state=SEED,
        )
    started, cpu_started = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(data.X_train, data.y_train)
    seconds = time.perf_counter() - started  # includes the refit on the training part
    cpu = time.process_time() - cpu_started
    model = search.best_estimator_
    test = score("classification", model, data.X_test, data.y_test)[METRIC]
    params = {k.removeprefix("model__"): v for k, v in search.best_params_.items()}
    best = search.best_index_
    spread = float(search.cv_results_["std_test_score"][best])
    return Row(
        tool="scikit-learn",
        method=method,
        runs_on=runs_on,
        trials=len(search.cv_results_["params"]),
        pruned=0,
        fits=len(search.cv_results_["params"]) * len(data.folds),
        seconds=seconds,
        cv=float(search.best_score_),
        test=test,
        params=params,
        cv_se=spread / np.sqrt(len(data.folds)),
        cpu=cpu,
    )


class _Uniform:
    """Real numbers from ``low`` to ``high`` (scipy's ``uniform`` takes a low and a width)."""

    def __init__(self, low: float, high: float) -> None:
        from scipy.stats import uniform

        self.dist = uniform(low, high - low)

    def rvs(self, random_state: Any = None, size: Any = None) -> Any:
        return self.dist.rvs(random_state=random_state, size=size)


def _timed(make: Callable[[], Executor]) -> tuple[Executor, float]:
    started = time.perf_counter()
    executor = make()
    return executor, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24, help="Budget of every search.")
    parser.add_argument("--trees", type=int, default=50, help="Trees of the random forest.")
    parser.add_argument("--rows", type=int, default=6000, help="Customers in the example.")
    parser.add_argument("--skip-ray", action="store_true", help="Leave out the Ray row.")
    parser.add_argument(
        "--sample-first-only",
        action="store_true",
        help="Only GridSearchCV, mlship's grid and mlship's sample-first grid (in-process).",
    )
    parser.add_argument(
        "--fraction", type=float, default=0.1, help="Sample-first: share of rows of stage one."
    )
    parser.add_argument(
        "--keep", type=float, default=0.25, help="Sample-first: share kept after each stage."
    )
    args = parser.parse_args()
    console = Console()
    cores = len(__import__("os").sched_getaffinity(0))
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlship-bench-tuning-") as tmp:
        root = Path(tmp)
        data = load(root, args.rows, args.trees)
        db = root / "studies.db"
        churn = (data.y_train == "yes").mean()
        console.log(
            f"churn example: {len(data.X_train)} training rows ({churn:.1%} churn), "
            f"{len(data.X_test)} test rows, {len(data.folds)} folds, {cores} cores"
        )
        screening = SampleFirst(fraction=args.fraction, keep=args.keep)
        plan: list[tuple[str, Callable[[], Row]]] = [
            ("scikit-learn grid", lambda: run_sklearn(data, "grid", args.trials, 1, "1 process")),
            (
                "mlship grid",
                lambda: run_mlship(data, "grid", args.trials, InlineExecutor(), "inline", db),
            ),
            (
                "mlship grid, sample-first",
                lambda: run_mlship(
                    data, "grid", args.trials, InlineExecutor(), "inline", db, screening
                ),
            ),
            (
                "scikit-learn random",
                lambda: run_sklearn(data, "random", args.trials, 1, "1 process"),
            ),
            (
                "mlship random",
                lambda: run_mlship(data, "random", args.trials, InlineExecutor(), "inline", db),
            ),
            (
                "mlship bayes",
                lambda: run_mlship(data, "bayes", args.trials, InlineExecutor(), "inline", db),
            ),
            (
                "scikit-learn grid, all cores",
                lambda: run_sklearn(data, "grid", args.trials, -1, f"joblib x{cores}"),
            ),
        ]
        if args.sample_first_only:
            plan = plan[:3]
        for label, job in plan:
            console.log(f"{label} ...")
            rows.append(job())
        if args.sample_first_only:
            _print(console, rows, args, cores, notes)
            return
        console.log("mlship grid, process pool ...")
        with ProcessExecutor() as pool:
            rows.append(run_mlship(data, "grid", args.trials, pool, f"pool x{cores}", db))
        console.log("mlship bayes, process pool ...")
        with ProcessExecutor() as pool:
            rows.append(run_mlship(data, "bayes", args.trials, pool, f"pool x{cores}", db))
        if not args.skip_ray:
            console.log("mlship bayes, Ray ...")
            ray, startup = _timed(RayExecutor)
            with ray:
                rows.append(run_mlship(data, "bayes", args.trials, ray, f"Ray x{ray.workers}", db))
            notes.append(f"Ray start-up {startup:.1f} s, not counted in its row.")
    _print(console, rows, args, cores, notes)


def _print(
    console: Console, rows: list[Row], args: argparse.Namespace, cores: int, notes: list[str]
) -> None:
    grid_peer = next(r for r in rows if r.tool == "scikit-learn" and r.method == "grid")
    table = Table(
        title=f"Tuning a random forest ({args.trees} trees) on the churn example: {args.trials} "
        f"trials, 5 folds, PR-AUC; {cores} cores"
    )
    for name in (
        "tool",
        "method",
        "runs on",
        "trials (pruned)",
        "fits",
        "wall s",
        "CPU s",
        "x GridSearchCV",
        "best CV",
        "test",
    ):
        table.add_column(name, justify="left" if name in ("tool", "method", "runs on") else "right")
    for row in rows:
        table.add_row(
            row.tool,
            row.method,
            row.runs_on,
            f"{row.trials} ({row.pruned})",
            str(row.fits),
            f"{row.seconds:.1f}",
            f"{row.cpu:.1f}",
            f"{grid_peer.seconds / row.seconds:.2f}x",
            f"{row.cv:.4f}",
            f"{row.test:.4f}",
        )
    console.print(table)

    def find(tool: str, method: str, prefix: str) -> Row | None:
        return next(
            (
                r
                for r in rows
                if r.tool == tool and r.method == method and r.runs_on.startswith(prefix)
            ),
            None,
        )

    speed = Table(title="Speed-ups (same search, wall time of the in-process run / this run)")
    for name in ("search", "runs on", "wall s", "speed-up"):
        speed.add_column(name, justify="right" if name in ("wall s", "speed-up") else "left")
    pairs = [
        ("mlship grid", find("mlship", "grid", "inline"), find("mlship", "grid", "pool")),
        ("mlship bayes", find("mlship", "bayes", "inline"), find("mlship", "bayes", "pool")),
        ("mlship bayes", find("mlship", "bayes", "inline"), find("mlship", "bayes", "Ray")),
        (
            "scikit-learn grid",
            find("scikit-learn", "grid", "1 process"),
            find("scikit-learn", "grid", "joblib"),
        ),
    ]
    for label, base, other in pairs:
        if base is not None and other is not None:
            speed.add_row(
                label, other.runs_on, f"{other.seconds:.1f}", f"{base.seconds / other.seconds:.2f}x"
            )
    console.print(speed)
    same = find("mlship", "grid", "inline")
    if same is not None:
        console.print(
            f"Grid, same points: best CV scikit-learn {grid_peer.cv:.4f} vs mlship {same.cv:.4f} "
            f"(mlship pruned {same.pruned} of {same.trials} trials). Best parameters: "
            f"scikit-learn {grid_peer.params}, mlship {same.params}."
        )
    screened = find("mlship", "grid, sample-first", "inline")
    if screened is not None:
        within = screened.cv >= grid_peer.cv - grid_peer.cv_se
        share = screened.seconds / grid_peer.seconds
        cpu_share = screened.cpu / grid_peer.cpu
        console.print(
            f"Sample-first grid (fraction {args.fraction}, keep {args.keep}, 2 folds): best CV "
            f"{screened.cv:.4f} vs GridSearchCV {grid_peer.cv:.4f} +- {grid_peer.cv_se:.4f} "
            f"(standard error): {'within' if within else 'NOT within'} one standard error; "
            f"{share:.0%} of GridSearchCV's wall time "
            f"({'at most' if share <= 1 / 3 else 'MORE than'} "
            f"one third), {cpu_share:.0%} of its CPU time. Best parameters {screened.params}."
        )
    for note in notes:
        console.print(note)


if __name__ == "__main__":
    main()
