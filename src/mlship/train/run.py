"""A run: ingest, split, cross-validate or tune every candidate, select, evaluate once, register.

The test set is split off before anything is fitted and is scored exactly once, by the selected
model, after selection (and after threshold tuning, which uses the CV folds). Every fold and trial
runs through one executor (in-process, a local pool or Ray) and reports what it cost; the run
adds it up. A run killed mid-way can be resumed: ``execute(..., resume=True)`` reopens the newest
unfinished run of the same spec, and tuning continues its studies where they stopped.

While it works, a run renews its heartbeat (:mod:`mlship.train.heartbeat`), so a run whose process
was killed without a word shows as ``abandoned``; any exception, ``KeyboardInterrupt`` and the
CLI's SIGTERM included, stops the workers and marks the run ``failed`` with its message.

This module is the order of the steps and the record; the steps live beside it, one concept
each: which rows are trained and tested on (:mod:`mlship.train.parts`), scoring the candidates
(:mod:`mlship.train.cross_validation`), the leaderboard and the selection rule
(:mod:`mlship.train.selection`), and the evaluation report (:mod:`mlship.train.report_facts`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from mlship.data.ingest import ingest
from mlship.data.ingested import Ingested
from mlship.data.undeclared import with_columns
from mlship.environment import describe_environment, git_commit
from mlship.evaluation import evaluate
from mlship.json_values import plain
from mlship.prices import Prices
from mlship.spec.loader import LoadedSpec
from mlship.spec.models import PipelineSpec
from mlship.store.context import (
    ChecksWritable,
    HasArtifacts,
    HasDatasets,
    HasLogs,
    HasMarks,
    HasRuns,
    HasSealing,
    HasSettings,
    HasTuningStorage,
    SignsArtifacts,
)
from mlship.store.entities import ModelVersion
from mlship.store.liveness import Worker
from mlship.store.repositories import NewCandidate, NewMetric, NewVersion
from mlship.train import leakage
from mlship.train.candidates import Recipe
from mlship.train.cost import Usage, measure
from mlship.train.cross_validation import Scored, train_candidates
from mlship.train.details import (
    BacktestRecord,
    CostsRecord,
    LeakageRecord,
    NestedRecord,
    RefitRecord,
    RunDetails,
    SelectionRecord,
    SplitRecord,
    StrategyRecord,
    ThresholdRecord,
    UndeclaredRecord,
    WeightingRecord,
)
from mlship.train.fit_warnings import merge, silenced
from mlship.train.folds import Fitted, shared_inputs
from mlship.train.heartbeat import Heartbeat
from mlship.train.lifeline import joblib_workers
from mlship.train.metrics import greater_is_better
from mlship.train.model_io import save_model
from mlship.train.nested import NestedScore
from mlship.train.observer import RunObserver
from mlship.train.pareto import fronts
from mlship.train.parts import Holdout, Parts, holdout_part, split_parts
from mlship.train.refit import ship
from mlship.train.report_facts import report_facts, write_report
from mlship.train.scoring import score
from mlship.train.selection import (
    LeaderboardRow,
    Selected,
    choose,
    leaderboard_row,
    rank,
    select,
)
from mlship.train.signature import Signature
from mlship.train.split_strategy import SplitStrategy
from mlship.train.threshold import tune_threshold


class RunStores(
    HasSettings,
    HasDatasets,
    HasMarks,
    HasRuns,
    HasArtifacts,
    HasLogs,
    HasSealing,
    HasTuningStorage,
    SignsArtifacts,
    ChecksWritable,
    Protocol,
):
    """Everything a run reads and writes: what its ingest, searches, refit and report use, and
    the runs it records itself in. A workspace is one."""


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
    details: RunDetails = field(default_factory=RunDetails)
    attempt: int = 1


def execute(
    loaded: LoadedSpec,
    workspace: RunStores,
    observer: RunObserver | None = None,
    *,
    resume: bool = False,
    resume_run: str | None = None,
) -> RunResult:
    """Run the pipeline ``loaded`` describes and record it; raises on bad data or spec.

    With ``resume``, the newest unfinished run of the same spec is reopened (its searches keep
    the trials they finished); with nothing to resume, a new run starts. ``resume_run`` names
    the run to reopen instead (an id or unambiguous prefix); one that cannot be resumed is an
    error.
    """
    observer = observer or RunObserver()
    workspace.check_writable()  # a read-only or full store stops the run here, not after training
    spec = loaded.spec
    runs = workspace.runs
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    worker = Worker.this_process()
    reopened = (
        runs.reopen_run(spec.name, loaded.spec_hash, run_id=resume_run, worker=worker)
        if resume or resume_run is not None
        else None
    )
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


def _details(
    spec: PipelineSpec,
    parts: Parts,
    scored: dict[str, Scored],
    fitted: dict[str, Fitted],
    nested: dict[str, NestedScore],
    validation: dict[str, Any],
) -> RunDetails:
    """What the run records of how it chose: the selection rule, the split, weights and target
    transform, library warnings per candidate, nested CV and the columns the spec does not
    declare (from the ingest's ``validation``); later steps add to it."""
    order = [m.label for m in spec.models]
    train_rows, test_rows = len(parts.X_train), len(parts.X_test)
    strategy = SplitStrategy.of(spec.split, spec.task, train_rows, test_rows, len(parts.outer))
    caught = {name: merge((scored[name].warnings, fitted[name].warnings)) for name in order}
    return RunDetails(
        selection=SelectionRecord(spec.selection.rule, spec.selection.tolerance),
        split=SplitRecord(
            train_rows=train_rows,
            test_rows=test_rows,
            folds=len(parts.folds),
            test_scored="once, by the selected model, after selection",
            strategy=StrategyRecord(strategy, strategy.text()),
            outer_folds=len(parts.outer) if nested else None,
        ),
        executor=spec.executor,
        weighting=WeightingRecord(
            spec.weight.name if spec.weight else None,
            spec.target.name if spec.target.target_transform else None,
            spec.target.target_transform,
        ),
        warnings={name: found for name, found in caught.items() if found},
        undeclared=UndeclaredRecord.from_json(validation.get("undeclared") or {}, "undeclared"),
        nested={name: NestedRecord.from_json(n.as_dict(), name) for name, n in nested.items()}
        or None,
    )


def cost_quality(
    leaderboard: list[LeaderboardRow],
    chosen: str,
    details: RunDetails,
    prices: Prices,
    spec: PipelineSpec,
) -> dict[str, Any]:
    """The leaderboard as the report's cost-against-quality charts read it: plain values."""
    costs = details.costs or {}
    selection = details.selection
    return {
        "metric": spec.metric,
        "bigger": greater_is_better(spec.task, spec.metric),
        "currency": prices.currency,
        "selected": chosen,
        "selection": selection.reason if selection is not None else None,
        "candidates": [
            {
                "name": row.name,
                "score": row.cv_mean,
                "training": row.fit_cost,
                "serving": row.serve_cost,
                "latency": row.predict_ms,
                "model_bytes": row.model_bytes,
                "distilled_from": row.distilled_from,
                "fronts": list(costs[row.name].fronts) if row.name in costs else [],
            }
            for row in leaderboard
        ],
    }


def _leaderboard(
    spec: PipelineSpec,
    scored: dict[str, Scored],
    fitted: dict[str, Fitted],
    prices: Prices,
    bigger: bool,
) -> tuple[list[LeaderboardRow], Selected]:
    """The candidates ranked by CV score, and the one the selection rule keeps."""
    spent = {name: prices.cost(s.usage) for name, s in scored.items()}
    rows = [
        leaderboard_row(scored[m.label], fitted[m.label], spec.metric, prices, spent[m.label])
        for m in spec.models
    ]
    teachers = {m.label: m.distilled_from for m in spec.models}
    ranked = rank([replace(r, distilled_from=teachers[r.name]) for r in rows], bigger)
    rule = spec.selection
    return ranked, choose(ranked, rule.rule, rule.tolerance, bigger, rule.cost, prices.currency)


def _costs(leaderboard: list[LeaderboardRow], bigger: bool) -> dict[str, CostsRecord]:
    """Each candidate's serving cost, size, teacher and the Pareto fronts it is on."""
    on = fronts([row.costs() for row in leaderboard], bigger)
    return {
        row.name: CostsRecord(
            serving_per_1k=row.serve_cost,
            model_bytes=row.model_bytes,
            fronts=tuple(on[row.name]),
            distilled_from=row.distilled_from,
        )
        for row in leaderboard
    }


def _execute(
    loaded: LoadedSpec,
    workspace: RunStores,
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
    parts = split_parts(loaded, ingested.frame, observer)
    X_train, y_train, X_test, y_test = parts.X_train, parts.y_train, parts.X_test, parts.y_test
    folds = parts.folds
    recipes = {m.label: Recipe.from_spec(spec, m) for m in spec.models}
    shared = shared_inputs(
        recipes, X_train, y_train, parts.every_fold, spec.metric, weights=parts.w_train
    )
    bigger = greater_is_better(spec.task, spec.metric)
    scored, fitted, nested = train_candidates(
        loaded, workspace, run_id, recipes, shared, len(folds), observer, parts.outer
    )
    leaderboard, selected = _leaderboard(spec, scored, fitted, prices, bigger)
    chosen = selected.name
    best = next(r for r in leaderboard if r.name == chosen)
    model = fitted[chosen].model
    rule = spec.selection
    details = replace(
        _details(spec, parts, scored, fitted, nested, ingested.validation),
        selection=SelectionRecord(rule.rule, rule.tolerance, rule.cost, selected.reason),
        costs=_costs(leaderboard, bigger),
    )
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
            details = replace(details, threshold=ThresholdRecord.from_json(tuned.as_dict()))
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
        screened = leakage.conclude(parts.screening, evaluation)
        model, refit = ship(
            spec.refit,
            model,
            recipes[chosen],
            scored[chosen].params,
            parts.labelled,
            observer,
            workspace,
        )
    details = replace(
        details,
        leakage=LeakageRecord.from_json(screened.as_dict(), "leakage"),
        refit=RefitRecord.from_json(refit, "refit"),
        backtest=(
            BacktestRecord.from_json(evaluation["backtest"], "backtest")
            if "backtest" in evaluation
            else None
        ),
    )
    facts = cost_quality(leaderboard, chosen, details, prices, spec)
    report = write_report(
        workspace, loaded, run_id, best, ingested, {**evaluation, "cost_quality": facts}, details
    )
    details = replace(details, report=str(report.html_path))
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
            _candidate(row, place, row.name == chosen) for place, row in enumerate(leaderboard, 1)
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
            "details": details.to_json(),
            "report_sha256": report.sha256,
        },
        register=NewVersion(
            name=spec.name,
            dataset_hash=ingested.dataset.data_hash,
            estimator=best.estimator,
            params=_registered_params(best),
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


def _registered_params(row: LeaderboardRow) -> dict[str, Any]:
    """The version's params; a distilled student's also say whose predictions it learnt."""
    if row.distilled_from is None:
        return row.params
    return {**row.params, "distilled_from": row.distilled_from}


def _candidate(row: LeaderboardRow, place: int, selected: bool) -> NewCandidate:
    return NewCandidate(
        name=row.name,
        estimator=row.estimator,
        params=row.params,
        cv_mean=row.cv_mean,
        cv_std=row.cv_std,
        fit_seconds=row.fit_seconds,
        rank=place,
        selected=selected,
        train_mean=row.train_mean,
        cpu_seconds=row.usage.cpu_seconds,
        peak_memory_bytes=row.usage.peak_memory_bytes,
        cost=row.cost,
        predict_ms=row.predict_ms,
        trials=row.trials,
        tuning=row.tuning,
    )


__all__ = [
    "Holdout",
    "LeaderboardRow",
    "RunResult",
    "execute",
    "holdout_part",
    "report_facts",
    "select",
]
