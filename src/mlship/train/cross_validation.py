"""Scoring the candidates on the training part: cross-validation, searches, nested CV, the fits.

Fixed candidates are cross-validated on the run's folds, candidates with a search space are tuned
on them (:mod:`mlship.train.tuning`), every candidate is then fitted once on the whole training
part, and with ``split.nested`` each gets an outer-fold estimate (:mod:`mlship.train.nested`). All
of it goes through one executor, so the same code runs in-process, in a pool or on Ray; what each
piece used comes back with its result. The test set is not here: it is never seen before
selection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mlship.errors import DataError
from mlship.spec.loader import LoadedSpec
from mlship.store.context import HasSettings, HasTuningStorage
from mlship.train.candidates import Recipe
from mlship.train.cost import Usage
from mlship.train.executors import Executor, make_executor
from mlship.train.fit_warnings import Caught, merge
from mlship.train.fold_journal import FoldJournal
from mlship.train.folds import FitJob, Fitted, FoldJob, FoldResult, fit_full, run_fold
from mlship.train.metrics import greater_is_better
from mlship.train.nested import NestedScore, OuterFold, nested_scores
from mlship.train.observer import RunObserver
from mlship.train.spaces import resolve_space
from mlship.train.tuning import Search, SearchOutcome


class TuningStores(HasSettings, HasTuningStorage, Protocol):
    """What the candidates' searches read: the settings, and where their studies live."""


@dataclass
class Scored:
    """What cross-validation (or a search) found for one candidate."""

    recipe: Recipe
    params: dict[str, Any]
    folds: list[FoldResult]
    usage: Usage
    trials: int = 0
    tuning: dict[str, Any] | None = None
    warnings: Caught = ()


def cross_validate(
    recipes: Sequence[Recipe],
    n_folds: int,
    executor: Executor,
    shared: dict[str, Any],
    observer: RunObserver,
    journal: FoldJournal | None = None,
) -> dict[str, Scored]:
    """Every fold of every fixed candidate, as one batch of jobs; a failed fold stops the run
    with the candidate, the fold and the error. With a ``journal``, each fold is kept as it
    finishes, and the folds it already holds (an earlier attempt's) are reused, not refitted."""
    if not recipes:
        return {}
    names = {r.name for r in recipes}
    kept = {key: r for key, r in (journal.finished() if journal else {}).items() if key[0] in names}
    jobs = [
        FoldJob(r.name, fold)
        for r in recipes
        for fold in range(n_folds)
        if (r.name, fold) not in kept
    ]
    for result in kept.values():
        observer.fold_done(result)

    def done(_: int, result: FoldResult) -> None:
        if journal is not None:
            journal.record(result)
        observer.fold_done(result)

    fresh = executor.map(run_fold, jobs, shared=shared, on_result=done) if jobs else []
    results = [*kept.values(), *fresh]
    scored: dict[str, Scored] = {}
    for recipe in recipes:
        mine = sorted((r for r in results if r.candidate == recipe.name), key=lambda r: r.fold)
        failed = next((r for r in mine if not r.ok), None)
        if failed is not None:
            raise DataError(f"candidate {recipe.name} failed on fold {failed.fold}: {failed.error}")
        usage = sum((r.usage for r in mine), Usage.zero())
        caught = merge(r.warnings for r in mine)
        scored[recipe.name] = Scored(recipe, {}, mine, usage, warnings=caught)
    return scored


def search(
    recipe: Recipe,
    space: dict[str, Any],
    loaded: LoadedSpec,
    workspace: TuningStores,
    run_id: str,
    n_folds: int,
    executor: Executor,
    shared: dict[str, Any],
    observer: RunObserver,
    outer: OuterFold | None = None,
) -> Scored:
    """Tune ``recipe`` on the run's folds, or on the inner folds of ``outer`` (nested CV)."""
    spec = loaded.spec
    suffix = "" if outer is None else f":outer{outer.number + 1}"
    label = recipe.name if outer is None else f"{recipe.name} (outer fold {outer.number + 1})"
    found = Search(
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
    stages = found.screen(executor, shared)
    observer.start_search(label, found.limit, found.resumed)
    outcome = found.run(executor, shared, lambda t: observer.trial_done(label, t))
    observer.end_search(label, outcome)
    folds = outcome.best_folds or _folds_from_study(found, outcome)
    usage = sum((t.usage for t in outcome.trials), found.screening_usage)
    states = [t.state for t in outcome.trials]
    tuning: dict[str, Any] = {
        "method": spec.tuning.method,
        "trials": len(outcome.trials),
        "completed": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"),
        "stopped_by": outcome.stopped_by,
        "resumed_trials": outcome.resumed_trials,
        "best_value": outcome.best_value,
        "study": found.study.study_name,
        "cost": sum(t.cost for t in outcome.trials),
    }
    if spec.tuning.sample_first is not None:
        # The rows each screening stage scored every point on, then the full folds' rows.
        tuning["sample_first"] = [stage.as_dict() for stage in stages] + [
            {"rows": _rows_of(shared, found.fold_ids), "candidates": found.limit, "kept": 1}
        ]
    caught = merge(t.warnings for t in outcome.trials)
    return Scored(recipe, outcome.best_params, folds, usage, len(outcome.trials), tuning, caught)


def _rows_of(shared: dict[str, Any], fold_ids: list[int]) -> int:
    """How many training rows the folds ``fold_ids`` cover between them."""
    parts = [np.concatenate(shared["folds"][i]) for i in fold_ids]
    return len(np.unique(np.concatenate(parts)))


def _folds_from_study(search: Search, outcome: SearchOutcome) -> list[FoldResult]:
    """The best trial's folds as an earlier attempt recorded them in the study."""
    best = search.study.best_trial
    metrics = best.user_attrs.get("fold_metrics", [])
    trains = best.user_attrs.get("train_metrics", [])
    return [
        FoldResult(search.candidate, i, best.number, v, t, 0.0, Usage.zero())
        for i, (v, t) in enumerate(zip(metrics, trains, strict=True))
    ]


def train_candidates(
    loaded: LoadedSpec,
    workspace: TuningStores,
    run_id: str,
    recipes: dict[str, Recipe],
    shared: dict[str, Any],
    n_folds: int,
    observer: RunObserver,
    outer: list[OuterFold],
) -> tuple[dict[str, Scored], dict[str, Fitted], dict[str, NestedScore]]:
    """Cross-validate the fixed candidates, tune the others, fit each on the training part, and
    (with ``outer`` folds) estimate each candidate's score by nested cross-validation."""
    spec = loaded.spec
    spaces = {m.label: resolve_space(m, spec.task) for m in spec.models}
    with make_executor(spec.executor, workspace.settings.n_jobs) as executor:
        fixed = [recipes[name] for name, space in spaces.items() if not space]
        observer.start_cv([r.name for r in fixed], n_folds)
        journal = FoldJournal(workspace.tuning_storage(run_id), run_id) if fixed else None
        scored = cross_validate(fixed, n_folds, executor, shared, observer, journal)
        observer.end_cv()

        def tuned(name: str, outer_fold: OuterFold | None = None) -> Scored:
            return search(
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
                scored[name] = tuned(name)
        observer.stage("Fitting every candidate on the training part")
        jobs = [FitJob(m.label, scored[m.label].params) for m in spec.models]
        fits = executor.map(fit_full, jobs, shared=shared)
        nested: dict[str, NestedScore] = {}
        if outer:
            observer.stage(f"Nested cross-validation: {len(outer)} outer folds")

            def tune(name: str, part: OuterFold) -> tuple[dict[str, Any], Usage]:
                found = tuned(name, part)
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


__all__ = ["Scored", "cross_validate", "search", "train_candidates"]
