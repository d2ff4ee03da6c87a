"""A run: ingest, split, cross-validate or tune every candidate, select, evaluate once, register.

The test set is split off before anything is fitted and is scored exactly once, by the selected
model, after selection (and after threshold tuning, which uses the CV folds). Every fold and trial
runs through one executor (in-process, a local pool or Ray) and reports what it cost; the run
adds it up. A run killed mid-way can be resumed: ``execute(..., resume=True)`` reopens the newest
unfinished run of the same spec, and tuning continues its studies where they stopped.

While it works, a run renews its heartbeat (:mod:`mlship.train.heartbeat`), so a run whose process
was killed without a word shows as ``abandoned``; any exception, ``KeyboardInterrupt`` and the
CLI's SIGTERM included, stops the workers and marks the run ``failed`` with its message.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from mlship.data.ingest import Ingested, ingest
from mlship.data.undeclared import with_columns
from mlship.environment import describe_environment, git_commit
from mlship.errors import DataError
from mlship.evaluation import evaluate
from mlship.evaluation.backtest import TimeOrder, time_order
from mlship.evaluation.report import write_evaluation_report
from mlship.json_values import plain
from mlship.spec.loader import LoadedSpec
from mlship.spec.models import PipelineSpec
from mlship.store.entities import ModelVersion
from mlship.store.liveness import Worker
from mlship.store.repositories import NewCandidate, NewMetric, NewVersion
from mlship.train import leakage
from mlship.train.candidates import Recipe
from mlship.train.catalog import qualified_name
from mlship.train.cost import Usage, measure
from mlship.train.executors import Executor, make_executor
from mlship.train.fit_warnings import Caught, merge, silenced, summary_lines
from mlship.train.fitted_on import FittedOn
from mlship.train.folds import (
    FitJob,
    Fitted,
    FoldJob,
    FoldResult,
    fit_full,
    run_fold,
    shared_inputs,
)
from mlship.train.heartbeat import Heartbeat
from mlship.train.lifeline import joblib_workers
from mlship.train.metrics import greater_is_better, positive_index
from mlship.train.model_io import save_model
from mlship.train.nested import NestedScore, OuterFold, lay_out, nested_scores
from mlship.train.observer import RunObserver
from mlship.train.refit import Labelled, ship
from mlship.train.scoring import score
from mlship.train.signature import Signature
from mlship.train.spaces import resolve_space
from mlship.train.split_strategy import SplitStrategy
from mlship.train.splits import (
    Fold,
    Index,
    cv_folds,
    nested_cv_folds,
    resolve_method,
    train_test_indices,
)
from mlship.train.threshold import tune_threshold
from mlship.train.tuning import Search, SearchOutcome
from mlship.train.weighting import (
    check_target,
    check_weights,
    final_estimator,
    record,
    rows,
)
from mlship.workspace import Workspace


@dataclass(frozen=True)
class LeaderboardRow:
    name: str
    estimator: str
    params: dict[str, Any]
    cv_mean: float
    cv_std: float
    train_mean: float
    fit_seconds: float
    cv_metrics: dict[str, float]
    usage: Usage = field(default_factory=Usage.zero)
    cost: float = 0.0
    fit_cost: float = 0.0
    predict_ms: float | None = None
    trials: int = 0
    tuning: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunResult:
    run_id: str
    dataset_hash: str
    dataset_reused: bool
    n_rows: int
    leaderboard: list[LeaderboardRow]
    holdout: dict[str, float]
    version: ModelVersion
    wall_seconds: float
    validation: dict[str, Any]
    selected: str = ""
    usage: Usage = field(default_factory=Usage.zero)
    cost: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        elif isinstance(value, np.generic):
            out[key] = plain(value)
        else:
            out[key] = repr(value)
    return out


def _target(spec: PipelineSpec, frame: pd.DataFrame) -> pd.Series:
    target = spec.target.name
    y = frame[target]
    if spec.task != "classification":
        return y
    y = y.astype("object") if spec.target.type != "boolean" else y.astype(bool)
    if y.nunique() < 2:
        raise DataError(f"target column {target!r} has a single class; nothing to learn")
    positive = spec.target.positive
    if positive is not None:
        classes = sorted(y.unique().tolist(), key=str)
        try:
            positive_index(classes, positive)
        except ValueError:
            raise DataError(
                f"target column {target!r}: positive class {positive!r} never occurs; "
                f"the classes are {', '.join(map(str, classes))}"
            ) from None
        if len(classes) != 2:
            raise DataError(
                f"target column {target!r}: a positive class is for two classes; "
                f"found {len(classes)}"
            )
    return y


@dataclass
class _Scored:
    """What cross-validation (or a search) found for one candidate."""

    recipe: Recipe
    params: dict[str, Any]
    folds: list[FoldResult]
    usage: Usage
    trials: int = 0
    tuning: dict[str, Any] | None = None
    warnings: Caught = ()


def _row(scored: _Scored, fitted: Fitted, metric: str, prices: Any, spent: float) -> LeaderboardRow:
    folds = scored.folds
    names = sorted({k for f in folds for k in f.validation})
    means = {k: float(np.mean([f.validation.get(k, np.nan) for f in folds])) for k in names}
    values = [f.validation.get(metric, np.nan) for f in folds]
    return LeaderboardRow(
        name=scored.recipe.name,
        estimator=qualified_name(final_estimator(fitted.model)),
        params=_jsonable({**scored.recipe.params, **scored.params}),
        cv_mean=float(np.mean(values)),
        cv_std=float(np.std(values)),
        train_mean=float(np.mean([f.train.get(metric, np.nan) for f in folds])),
        fit_seconds=float(np.sum([f.fit_seconds for f in folds])),
        cv_metrics=means,
        usage=scored.usage + fitted.usage,
        cost=spent + prices.cost(fitted.usage),
        fit_cost=prices.cost(fitted.usage),
        predict_ms=fitted.predict_p50_seconds * 1000,
        trials=scored.trials,
        tuning=scored.tuning,
    )


def _rank(rows: list[LeaderboardRow], bigger: bool) -> list[LeaderboardRow]:
    worst = -np.inf if bigger else np.inf

    def key(row: LeaderboardRow) -> float:
        value = row.cv_mean if not np.isnan(row.cv_mean) else worst
        return -value if bigger else value

    return sorted(rows, key=key)


def select(rows: list[LeaderboardRow], rule: str, tolerance: float, bigger: bool) -> str:
    """The selected candidate: the best, or the cheapest to fit within ``tolerance`` of it."""
    best = rows[0]
    if rule != "cheapest_within":
        return best.name
    close = [r for r in rows if abs(best.cv_mean - r.cv_mean) <= tolerance + 1e-12]
    return min(close, key=lambda r: (r.fit_cost, rows.index(r))).name


def execute(
    loaded: LoadedSpec,
    workspace: Workspace,
    observer: RunObserver | None = None,
    *,
    resume: bool = False,
) -> RunResult:
    """Run the pipeline ``loaded`` describes and record it; raises on bad data or spec.

    With ``resume``, the newest unfinished run of the same spec is reopened (its searches keep
    the trials they finished); with nothing to resume, a new run starts.
    """
    observer = observer or RunObserver()
    workspace.check_writable()  # a read-only or full store stops the run here, not after training
    spec = loaded.spec
    runs = workspace.runs
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    worker = Worker.this_process()
    reopened = runs.reopen_run(spec.name, loaded.spec_hash, worker=worker) if resume else None
    if reopened is not None:
        run_id, attempt = reopened
        observer.stage(f"Resuming run {run_id[:8]} (attempt {attempt})")
    else:
        attempt = 1
        run_id = runs.start_run(
            pipeline=spec.name,
            task=spec.task,
            metric=spec.metric,
            spec_path=str(loaded.path.resolve()),
            spec_hash=loaded.spec_hash,
            spec=spec.model_dump(mode="json"),
            git_commit=git_commit(loaded.base_dir),
            environment=describe_environment(),
            executor=spec.executor,
            worker=worker,
        )
        observer.stage(f"Started run {run_id[:8]}")
    try:
        with Heartbeat(runs, run_id):
            return _execute(loaded, workspace, observer, run_id, started, attempt)
    except BaseException as exc:
        message = str(exc) or type(exc).__name__
        runs.fail_run(run_id, message, started_at)
        raise


def _cross_validate(
    recipes: Sequence[Recipe],
    n_folds: int,
    executor: Executor,
    shared: dict[str, Any],
    observer: RunObserver,
) -> dict[str, _Scored]:
    jobs = [FoldJob(r.name, fold) for r in recipes for fold in range(n_folds)]
    if not jobs:
        return {}
    results = executor.map(
        run_fold, jobs, shared=shared, on_result=lambda _, r: observer.fold_done(r)
    )
    scored: dict[str, _Scored] = {}
    for recipe in recipes:
        mine = sorted((r for r in results if r.candidate == recipe.name), key=lambda r: r.fold)
        failed = next((r for r in mine if not r.ok), None)
        if failed is not None:
            raise DataError(f"candidate {recipe.name} failed on fold {failed.fold}: {failed.error}")
        usage = sum((r.usage for r in mine), Usage.zero())
        caught = merge(r.warnings for r in mine)
        scored[recipe.name] = _Scored(recipe, {}, mine, usage, warnings=caught)
    return scored


def _search(
    recipe: Recipe,
    space: dict[str, Any],
    loaded: LoadedSpec,
    workspace: Workspace,
    run_id: str,
    n_folds: int,
    executor: Executor,
    shared: dict[str, Any],
    observer: RunObserver,
    outer: OuterFold | None = None,
) -> _Scored:
    """Tune ``recipe`` on the run's folds, or on the inner folds of ``outer`` (nested CV)."""
    spec = loaded.spec
    suffix = "" if outer is None else f":outer{outer.number + 1}"
    label = recipe.name if outer is None else f"{recipe.name} (outer fold {outer.number + 1})"
    search = Search(
        study_name=f"{run_id}:{recipe.name}{suffix}",
        storage=workspace.tuning_storage(run_id),
        candidate=recipe.name,
        space=space,
        tuning=spec.tuning,
        metric=spec.metric,
        bigger=greater_is_better(spec.task, spec.metric),
        n_folds=n_folds,
        prices=workspace.settings.prices,
        fold_ids=None if outer is None else outer.inner,
    )
    observer.start_search(label, search.limit, search.resumed)
    outcome = search.run(executor, shared, lambda t: observer.trial_done(label, t))
    observer.end_search(label, outcome)
    folds = outcome.best_folds or _folds_from_study(search, outcome)
    usage = sum((t.usage for t in outcome.trials), Usage.zero())
    states = [t.state for t in outcome.trials]
    tuning = {
        "method": spec.tuning.method,
        "trials": len(outcome.trials),
        "completed": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"),
        "stopped_by": outcome.stopped_by,
        "resumed_trials": outcome.resumed_trials,
        "best_value": outcome.best_value,
        "study": search.study.study_name,
        "cost": sum(t.cost for t in outcome.trials),
    }
    caught = merge(t.warnings for t in outcome.trials)
    return _Scored(recipe, outcome.best_params, folds, usage, len(outcome.trials), tuning, caught)


def _folds_from_study(search: Search, outcome: SearchOutcome) -> list[FoldResult]:
    """The best trial's folds as an earlier attempt recorded them in the study."""
    best = search.study.best_trial
    metrics = best.user_attrs.get("fold_metrics", [])
    trains = best.user_attrs.get("train_metrics", [])
    return [
        FoldResult(search.candidate, i, best.number, v, t, 0.0, Usage.zero())
        for i, (v, t) in enumerate(zip(metrics, trains, strict=True))
    ]


@dataclass(frozen=True)
class _Parts:
    """The training part with its folds, and the test set."""

    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    folds: list[Fold]
    outer: list[OuterFold]
    """Nested cross-validation's outer folds (empty unless the split asks for it); their folds
    follow the run's own in ``every_fold``."""
    every_fold: list[Fold]
    labelled: Labelled
    """Every row, for the fit that ships (``refit: all``)."""
    screening: leakage.Screening
    """What screening the training part's features for target leakage found."""
    time_order: TimeOrder | None = None
    """When the rows happened, for a timeseries split: the folds and the test set are judged in
    time order."""
    w_train: np.ndarray[Any, Any] | None = None
    """The training rows' sample weights (``None`` without a weight column)."""
    w_test: np.ndarray[Any, Any] | None = None


@dataclass(frozen=True)
class Holdout:
    """The test rows of a dataset, every column of them, and their target."""

    frame: pd.DataFrame
    y: pd.Series


def _divide(
    spec: PipelineSpec, frame: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series, Index, Index]:
    """The frame (positions as index), its target, and the positions of the training rows and
    of the test rows: the one place that decides which rows a run of ``spec`` tests on."""
    frame = frame.reset_index(drop=True)
    y = _target(spec, frame)
    train_rows, test_rows = train_test_indices(frame, y, spec.split, spec.task)
    return frame, y, train_rows, test_rows


def holdout_part(spec: PipelineSpec, frame: pd.DataFrame) -> Holdout:
    """The test set a run of ``spec`` on the dataset ``frame`` scored its model on.

    The split depends on the spec and the rows only, so the stored dataset gives back the very
    rows the run held out: what a model card needs to score groups of them after the fact.
    """
    frame, y, _, test_rows = _divide(spec, frame)
    return Holdout(
        frame.iloc[test_rows].reset_index(drop=True), y.iloc[test_rows].reset_index(drop=True)
    )


def _split(loaded: LoadedSpec, frame: pd.DataFrame, observer: RunObserver) -> _Parts:
    """Training features and target, test features and target, the CV folds, and the leakage
    screen of the training part on them (which stops the run here with ``leakage: fail``)."""
    spec = loaded.spec
    frame, y, train_rows, test_rows = _divide(spec, frame)
    train_frame = frame.iloc[train_rows].reset_index(drop=True)
    y_train = y.iloc[train_rows].reset_index(drop=True)
    features = [c.name for c in spec.features]
    X_test = frame.iloc[test_rows][features].reset_index(drop=True)
    y_test = y.iloc[test_rows].reset_index(drop=True)
    folds = cv_folds(train_frame, y_train, spec.split, spec.task)
    nested = []
    if spec.split.nested:
        nested = nested_cv_folds(train_frame, y_train, spec.split, spec.task)
    every_fold, outer = lay_out(folds, nested)
    timed = None
    if resolve_method(spec.split, spec.task) == "timeseries":
        timed = time_order(frame, spec.split, train_rows, test_rows)
    check_target(spec.target.name, spec.target.target_transform, y_train)
    weights = w_train = w_test = None
    if spec.weight is not None:
        weights = frame[spec.weight.name].to_numpy(dtype=float)
        w_train, w_test = rows(weights, train_rows), rows(weights, test_rows)
        check_weights(spec.weight.name, w_train, "training part")
        check_weights(spec.weight.name, w_test, "test set")
    time = spec.split.time
    times = frame[time] if time is not None and time in frame.columns else None
    labelled = Labelled(frame[features], y, train_rows, times, weights)
    observer.stage(f"Screening {len(features)} features for target leakage")
    train_times = train_frame.get(time) if time else None
    screening = leakage.screen(spec, train_frame[features], y_train, folds, train_times)
    return _Parts(
        train_frame[features],
        y_train,
        X_test,
        y_test,
        folds,
        outer,
        every_fold,
        labelled,
        screening,
        time_order=timed,
        w_train=w_train,
        w_test=w_test,
    )


def _train(
    loaded: LoadedSpec,
    workspace: Workspace,
    run_id: str,
    recipes: dict[str, Recipe],
    shared: dict[str, Any],
    n_folds: int,
    observer: RunObserver,
    outer: list[OuterFold],
) -> tuple[dict[str, _Scored], dict[str, Fitted], dict[str, NestedScore]]:
    """Cross-validate the fixed candidates, tune the others, fit each on the training part, and
    (with ``outer`` folds) estimate each candidate's score by nested cross-validation."""
    spec = loaded.spec
    spaces = {m.label: resolve_space(m, spec.task) for m in spec.models}
    with make_executor(spec.executor, workspace.settings.n_jobs) as executor:
        fixed = [recipes[name] for name, space in spaces.items() if not space]
        observer.start_cv([r.name for r in fixed], n_folds)
        scored = _cross_validate(fixed, n_folds, executor, shared, observer)
        observer.end_cv()

        def search(name: str, outer_fold: OuterFold | None = None) -> _Scored:
            return _search(
                recipes[name],
                spaces[name],
                loaded,
                workspace,
                run_id,
                n_folds,
                executor,
                shared,
                observer,
                outer=outer_fold,
            )

        for name, space in spaces.items():
            if space:
                scored[name] = search(name)
        observer.stage("Fitting every candidate on the training part")
        jobs = [FitJob(m.label, scored[m.label].params) for m in spec.models]
        fits = executor.map(fit_full, jobs, shared=shared)
        nested: dict[str, NestedScore] = {}
        if outer:
            observer.stage(f"Nested cross-validation: {len(outer)} outer folds")

            def tune(name: str, part: OuterFold) -> tuple[dict[str, Any], Usage]:
                found = search(name, part)
                return found.params, found.usage

            nested = nested_scores(
                [m.label for m in spec.models],
                {name for name, space in spaces.items() if space},
                outer,
                tune,
                executor,
                shared,
                spec.metric,
            )
    return scored, {f.candidate: f for f in fits}, nested


def _details(
    spec: PipelineSpec,
    parts: _Parts,
    scored: dict[str, _Scored],
    fitted: dict[str, Fitted],
    nested: dict[str, NestedScore],
    validation: dict[str, Any],
) -> dict[str, Any]:
    """What the run records of how it chose: the selection rule, the split, weights and target
    transform, library warnings per candidate, nested CV and the columns the spec does not
    declare (from the ingest's ``validation``); later steps add to it."""
    order = [m.label for m in spec.models]
    details: dict[str, Any] = {
        "selection": {"rule": spec.selection.rule, "tolerance": spec.selection.tolerance},
        "split": {
            "train_rows": len(parts.X_train),
            "test_rows": len(parts.X_test),
            "folds": len(parts.folds),
            "test_scored": "once, by the selected model, after selection",
            "strategy": SplitStrategy.of(
                spec.split, spec.task, len(parts.X_train), len(parts.X_test), len(parts.outer)
            ).as_dict(),
        },
        "executor": spec.executor,
        **record(
            spec.weight.name if spec.weight else None,
            spec.target.name,
            spec.target.target_transform,
        ),
        "warnings": {
            name: [w.as_dict() for w in merge((scored[name].warnings, fitted[name].warnings))]
            for name in order
            if scored[name].warnings or fitted[name].warnings
        },
        "undeclared": validation.get("undeclared") or {},
    }
    if nested:
        details["nested"] = {name: score.as_dict() for name, score in nested.items()}
        details["split"]["outer_folds"] = len(parts.outer)
    return details


def _execute(
    loaded: LoadedSpec,
    workspace: Workspace,
    observer: RunObserver,
    run_id: str,
    started: float,
    attempt: int,
) -> RunResult:
    settings = workspace.settings
    prices = settings.prices
    observer.stage("Ingesting and checking data")
    with measure() as ingesting:
        ingested: Ingested = ingest(loaded, workspace, observer.ingest)
    loaded = with_columns(loaded, ingested.columns)  # with any inferred (columns: infer)
    spec = loaded.spec
    parts = _split(loaded, ingested.frame, observer)
    X_train, y_train, X_test, y_test = parts.X_train, parts.y_train, parts.X_test, parts.y_test
    folds = parts.folds
    recipes = {m.label: Recipe.from_spec(spec, m) for m in spec.models}
    shared = shared_inputs(
        recipes, X_train, y_train, parts.every_fold, spec.metric, weights=parts.w_train
    )
    bigger = greater_is_better(spec.task, spec.metric)
    scored, fitted, nested = _train(
        loaded, workspace, run_id, recipes, shared, len(folds), observer, parts.outer
    )
    order = [m.label for m in spec.models]
    spent = {name: prices.cost(s.usage) for name, s in scored.items()}
    leaderboard = _rank(
        [_row(scored[n], fitted[n], spec.metric, prices, spent[n]) for n in order], bigger
    )
    chosen = select(leaderboard, spec.selection.rule, spec.selection.tolerance, bigger)
    best = next(r for r in leaderboard if r.name == chosen)
    model = fitted[chosen].model
    details = _details(spec, parts, scored, fitted, nested, ingested.validation)
    threshold = spec.imbalance.threshold
    with measure() as finishing, silenced():
        if threshold is not None and spec.task == "classification" and y_train.nunique() == 2:
            observer.stage(f"Tuning the decision threshold of {chosen} for {threshold.metric}")
            pipeline = recipes[chosen].build(scored[chosen].params)
            tuned = tune_threshold(
                pipeline,
                X_train,
                y_train,
                folds,
                threshold.metric,
                spec.target.positive,
                weights=parts.w_train,
            )
            model = tuned.model
            details["threshold"] = tuned.as_dict()
        observer.stage(f"Scoring {chosen} once on the test set")
        holdout = score(spec.task, model, X_test, y_test, spec.target.positive, parts.w_test)
        observer.stage("Evaluating: confidence intervals, curves, learning curve, importance")
        with joblib_workers():
            evaluation = evaluate(
                spec.task,
                model,
                X_train,
                y_train,
                X_test,
                y_test,
                metric=spec.metric,
                cv=folds,
                fold_scores=scored[chosen].folds,
                seed=spec.split.seed,
                n_jobs=settings.n_jobs,
                positive_label=spec.target.positive,
                refit=recipes[chosen].build(scored[chosen].params),
                time_order=parts.time_order,
                train_weights=parts.w_train,
                test_weights=parts.w_test,
            )
        leakage.conclude(parts.screening, evaluation, details)
        model, details["refit"] = ship(
            spec.refit,
            model,
            recipes[chosen],
            scored[chosen].params,
            parts.labelled,
            observer,
            workspace,
        )
    details.update({key: evaluation[key] for key in ("backtest",) if key in evaluation})
    report = _write_report(workspace, loaded, run_id, best, ingested, evaluation, details)
    details["report"] = str(report.html_path)
    classes = getattr(model, "classes_", None)

    observer.stage("Registering the model")
    class_list = [plain(c) for c in classes] if classes is not None else None
    signature = Signature.from_spec(spec, X_train, class_list)
    artifact = save_model(model, workspace.artifacts)
    wall = time.perf_counter() - started
    # What the work used: every fold, trial and fit (measured where it ran), plus ingest, the
    # threshold search and the test scoring in this process.
    own = ingesting.usage + finishing.usage + sum((n.usage for n in nested.values()), Usage())
    run_usage = sum((r.usage for r in leaderboard), own)
    run_cost = sum(r.cost for r in leaderboard) + prices.cost(own)
    version = workspace.runs.finish_run(
        run_id,
        dataset_id=ingested.dataset.id,
        candidates=[
            _candidate(row, rank, row.name == chosen) for rank, row in enumerate(leaderboard, 1)
        ],
        metrics=[
            *(
                NewMetric(candidate=row.name, split="cv", name=name, value=value)
                for row in leaderboard
                for name, value in row.cv_metrics.items()
            ),
            *(
                NewMetric(candidate=chosen, split="holdout", name=name, value=value)
                for name, value in holdout.items()
            ),
        ],
        best_candidate=chosen,
        wall_seconds=wall,
        outcome={
            "cpu_seconds": run_usage.cpu_seconds,
            "peak_memory_bytes": run_usage.peak_memory_bytes,
            "cost": run_cost,
            "details": details,
            "report_sha256": report.sha256,
        },
        register=NewVersion(
            name=spec.name,
            dataset_hash=ingested.dataset.data_hash,
            estimator=best.estimator,
            params=best.params,
            artifact_sha256=artifact.sha256,
            artifact_size=artifact.size,
            artifact_signature=workspace.artifact_signature(artifact.sha256),
            signature=signature.to_dict(),
            metrics={"holdout": holdout, "cv": best.cv_metrics},
        ),
    )
    assert version is not None
    return RunResult(
        run_id=run_id,
        dataset_hash=ingested.dataset.data_hash,
        dataset_reused=ingested.reused,
        n_rows=len(ingested.frame),
        leaderboard=leaderboard,
        holdout=holdout,
        version=version,
        wall_seconds=wall,
        validation=ingested.validation,
        selected=chosen,
        usage=run_usage,
        cost=run_cost,
        details=details,
        attempt=attempt,
    )


@dataclass(frozen=True)
class _Report:
    sha256: str
    html_path: Any


def report_facts(
    run_id: str, pipeline: str, row: LeaderboardRow, dataset_hash: str, details: dict[str, Any]
) -> dict[str, Any]:
    """The header of a run's evaluation report."""
    facts = {
        "id": run_id,
        "pipeline": pipeline,
        "model": row.name,
        "estimator": row.estimator,
        "dataset_hash": dataset_hash,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "selection": details["selection"]["rule"],
        "test set": details["split"]["test_scored"],
    }
    if "backtest" in details:
        facts["test set"] = details["backtest"]["test_set"]
    if "strategy" in details["split"]:
        facts["split"] = details["split"]["strategy"]["text"].removeprefix("split: ")
    if details.get("warnings"):
        facts["library warnings"] = "; ".join(summary_lines(details["warnings"]))
    if "threshold" in details:
        facts["decision threshold"] = round(details["threshold"]["threshold"], 4)
    if "sample_weights" in details:
        facts["sample weights"] = details["sample_weights"]
    if "target_transform" in details:
        facts["target transform"] = details["target_transform"]["transform"]
    fitted_on = FittedOn.from_details(details)
    if fitted_on is not None:
        facts["shipped"] = fitted_on.sentence()
    if row.name in details.get("nested", {}):
        facts["nested CV"] = nested_summary(details["nested"][row.name], details["split"])
    return facts


def nested_summary(estimate: dict[str, Any], split: dict[str, Any]) -> str:
    """``0.8123 ± 0.0110 roc_auc over 5 outer folds, tuned inside each``, for reports."""
    how = "tuned inside each" if estimate["tuned"] else "no tuning"
    return (
        f"{estimate['mean']:.4f} ± {estimate['std']:.4f} {estimate['metric']} over "
        f"{split['outer_folds']} outer folds, {how}"
    )


def _write_report(
    workspace: Workspace,
    loaded: LoadedSpec,
    run_id: str,
    row: LeaderboardRow,
    ingested: Ingested,
    evaluation: dict[str, Any],
    details: dict[str, Any],
) -> _Report:
    """Store the evaluation (JSON, content-addressed) and write the HTML report beside the data
    report, so ``mlship runs report`` can render it again from the store alone."""
    import json

    facts = report_facts(run_id, loaded.spec.name, row, ingested.dataset.data_hash, details)
    stored = {"run": facts, "evaluation": evaluation}
    sha = workspace.artifacts.put_bytes(
        json.dumps(stored, sort_keys=True, default=str).encode()
    ).sha256
    directory = workspace.settings.home_resolved / "reports"
    _, html_path = write_evaluation_report(
        directory, f"{loaded.spec.name}-run-{run_id[:8]}", evaluation, facts
    )
    return _Report(sha, html_path)


def _candidate(row: LeaderboardRow, rank: int, selected: bool) -> NewCandidate:
    return NewCandidate(
        name=row.name,
        estimator=row.estimator,
        params=row.params,
        cv_mean=row.cv_mean,
        cv_std=row.cv_std,
        fit_seconds=row.fit_seconds,
        rank=rank,
        selected=selected,
        train_mean=row.train_mean,
        cpu_seconds=row.usage.cpu_seconds,
        peak_memory_bytes=row.usage.peak_memory_bytes,
        cost=row.cost,
        predict_ms=row.predict_ms,
        trials=row.trials,
        tuning=row.tuning,
    )
