"""Hyper-parameter search: grid, random or Bayesian (TPE), with pruning, budgets and resume.

Optuna decides which parameters to try; mlship decides where they run. Trials are asked for in
batches of a fixed size (``tuning.batch``, part of the spec, not of the machine) and evaluated fold
by fold through the executor: after each fold every live trial reports its running mean, and the
pruner stops the ones that lag. Because the batch size and every seed are fixed, a search makes the
same choices in-process, on a local pool or on a Ray cluster.

A grid is queued in a seeded shuffled order and cut at ``tuning.trials``, so a grid larger than
the budget is sampled evenly. Studies are stored with Optuna's RDB storage in mlship's own metadata
database, so a search killed mid-way resumes where it stopped: finished trials are kept, trials cut
off mid-flight are marked failed and asked again, and the wall-clock and money budgets count what
was already spent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from mlship.json_values import plain
from mlship.spec.training import Space, Tuning
from mlship.store.db import BUSY_TIMEOUT_SECONDS
from mlship.train.cost import Prices, Usage
from mlship.train.executors import Executor
from mlship.train.fit_warnings import Caught, CaughtWarning, merge
from mlship.train.folds import FoldJob, FoldResult, run_fold
from mlship.train.sample_first import (
    Stage,
    fractions,
    kept,
    rank_key,
    sample_order,
    sampled_folds,
)
from mlship.train.spaces import decode_optuna, encode_optuna, grid, sample_optuna

optuna.logging.set_verbosity(logging.WARNING)

_ELAPSED = "mlship:elapsed_seconds"
_COST = "mlship:cost"
_INTERRUPTED = "mlship:interrupted"
_STAGES = "mlship:sample_first_stages"
_SURVIVORS = "mlship:sample_first_survivors"
FOLDS = ":folds"
"""The study after ``RUN:`` that keeps a run's finished cross-validation folds, not a search."""


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial as the leaderboard and reports need it."""

    number: int
    state: str
    params: dict[str, Any]
    value: float | None
    fold_scores: list[float]
    usage: Usage
    cost: float
    error: str | None = None
    warnings: Caught = ()
    """Library warnings the trial's folds raised, counted."""


@dataclass(frozen=True)
class SearchOutcome:
    """The best parameters of a candidate, the folds that scored them, and every trial."""

    candidate: str
    best_params: dict[str, Any]
    best_folds: list[FoldResult] | None
    best_value: float
    trials: list[TrialRecord]
    stopped_by: str
    resumed_trials: int


def storage_for(database_url: str) -> optuna.storages.RDBStorage:
    """Optuna's storage in mlship's database (its tables sit beside mlship's).

    On SQLite it waits for the write lock as long as mlship's own engine does: with the driver's
    default of 5 s, tuned runs sharing a workspace fail with ``database is locked``."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if database_url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_SECONDS}
    return optuna.storages.RDBStorage(database_url, engine_kwargs=kwargs)


def _sampler(tuning: Tuning, drawn: int = 0) -> optuna.samplers.BaseSampler:
    """The search's sampler, seeded by ``tuning.seed``; a search resumed after ``drawn``
    trials gets a seed of its own, derived from both.

    A sampler's random state lives in the process, not in the study: re-created with the same
    seed, it would draw the first points again, and a resumed search would spend its remaining
    budget on points it had tried (TPE's first trials are random draws). The derived seed keeps
    a resumed search deterministic for a given interruption and its draws new.
    """
    seed = tuning.seed
    if drawn:
        seed = int(np.random.SeedSequence([tuning.seed, drawn]).generate_state(1)[0])
    if tuning.method in ("grid", "random"):  # a grid's points are queued; nothing is sampled
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(
        seed=seed, multivariate=True, constant_liar=True, n_startup_trials=8
    )


def _pruner(tuning: Tuning) -> optuna.pruners.BasePruner:
    if tuning.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if tuning.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


@dataclass
class _Live:
    trial: optuna.trial.Trial
    params: dict[str, Any]
    folds: list[FoldResult]


class Search:
    """One candidate's study: ask, evaluate fold by fold, prune, tell, until a budget ends."""

    def __init__(
        self,
        *,
        study_name: str,
        storage: optuna.storages.BaseStorage | None,
        candidate: str,
        space: Space,
        tuning: Tuning,
        metric: str,
        bigger: bool,
        n_folds: int,
        prices: Prices,
        fold_ids: Sequence[int] | None = None,
    ) -> None:
        """``fold_ids`` are the positions in ``shared["folds"]`` to evaluate on (the first
        ``n_folds`` when not given; nested cross-validation tunes on an outer fold's inner ones)."""
        self.candidate = candidate
        self.space = space
        self.tuning = tuning
        self.metric = metric
        self.fold_ids = list(fold_ids) if fold_ids is not None else list(range(n_folds))
        self.n_folds = len(self.fold_ids)
        self.prices = prices
        self.study = optuna.create_study(
            study_name=study_name,
            storage=storage,
            sampler=_sampler(tuning),
            pruner=_pruner(tuning),
            direction="maximize" if bigger else "minimize",
            load_if_exists=True,
        )
        drawn = len(self.study.get_trials(deepcopy=False))
        if drawn:
            self.study.sampler = _sampler(tuning, drawn)
        self.bigger = bigger
        self.limit = tuning.trials
        self.stages: list[Stage] = []
        self.screening_usage = Usage.zero()
        if tuning.sample_first is not None:
            self._stages_so_far()
        elif tuning.method == "grid":
            points = grid(space, tuning.grid_points, limit=tuning.trials, seed=tuning.seed)
            self.limit = len(points)
            if not self.study.get_trials(deepcopy=False):
                for point in points:
                    self.study.enqueue_trial(encode_optuna(space, point))
        self.resumed = self._recover()

    def _stages_so_far(self) -> None:
        """A resumed search screened already: its survivors are queued, only they are left."""
        attrs = self.study.user_attrs
        if _STAGES in attrs:
            self.stages = [Stage(**stage) for stage in attrs[_STAGES]]
            self.limit = int(attrs[_SURVIVORS])

    def _points(self) -> list[dict[str, Any]]:
        """Every point the search would visit, chosen up front (grid or seeded random)."""
        if self.tuning.method == "grid":
            return grid(
                self.space, self.tuning.grid_points, limit=self.tuning.trials, seed=self.tuning.seed
            )
        draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=self.tuning.seed))
        return [sample_optuna(draws.ask(), self.space) for _ in range(self.tuning.trials)]

    def screen(self, executor: Executor, shared: dict[str, Any]) -> list[Stage]:
        """Rank the points on growing stratified samples and queue the survivors for the full
        cross-validation (``tuning.sample_first``); a no-op without it or when already done."""
        plan = self.tuning.sample_first
        if plan is None or _STAGES in self.study.user_attrs:
            return self.stages
        started = time.perf_counter()
        y: pd.Series = shared["y"]
        stratify = shared["recipes"][self.candidate].task == "classification"
        folds = shared["folds"]
        screened = self.fold_ids[: plan.folds]
        rows = np.unique(np.concatenate([folds[i][0] for i in screened]))
        order = np.asarray(sample_order(rows, y, stratify, self.tuning.seed))
        alive = self._points()
        usage = Usage.zero()
        for share in fractions(plan.fraction, plan.keep):
            if len(alive) <= 1:
                break
            chosen = np.sort(order[: max(1, round(share * len(order)))])
            cut = sampled_folds(folds, screened, chosen)
            staged = dict(shared, folds=cut, metric=self.metric, screening=True)
            jobs = [FoldJob(self.candidate, fold, params) for params in alive for fold in screened]
            results = executor.map(run_fold, jobs, shared=staged)
            usage = usage + sum((r.usage for r in results), Usage.zero())
            n = len(screened)
            keys = [
                rank_key(results[i * n : (i + 1) * n], self.metric, self.bigger)
                for i in range(len(alive))
            ]
            ranked = sorted(range(len(alive)), key=lambda i: (keys[i], i))
            going_on = kept(len(alive), plan.keep)
            self.stages.append(Stage(len(chosen), len(alive), going_on))
            alive = [alive[i] for i in ranked[:going_on]]
        for point in alive:
            self.study.enqueue_trial(encode_optuna(self.space, point))
        self.limit = len(alive)
        self.screening_usage = usage
        elapsed, cost = self._spent()
        self.study.set_user_attr(_ELAPSED, elapsed + time.perf_counter() - started)
        self.study.set_user_attr(_COST, cost + self.prices.cost(usage))
        self.study.set_user_attr(_STAGES, [stage.as_dict() for stage in self.stages])
        self.study.set_user_attr(_SURVIVORS, len(alive))
        return self.stages

    def _recover(self) -> int:
        """Fail the trials a killed session left running; count the ones it finished."""
        interrupted = list(self.study.user_attrs.get(_INTERRUPTED, []))
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study.tell(trial.number, state=TrialState.FAIL)
            self.study.enqueue_trial(trial.params)  # asked again, not lost
            interrupted.append(trial.number)
        self.study.set_user_attr(_INTERRUPTED, interrupted)
        return len(self._finished())

    def _finished(self) -> list[optuna.trial.FrozenTrial]:
        """Trials that count against the budget: completed, pruned, or failed on their own."""
        interrupted = set(self.study.user_attrs.get(_INTERRUPTED, []))
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        found = self.study.get_trials(deepcopy=False, states=states)
        return [t for t in found if t.number not in interrupted]

    def _spent(self) -> tuple[float, float]:
        attrs = self.study.user_attrs
        return float(attrs.get(_ELAPSED, 0.0)), float(attrs.get(_COST, 0.0))

    def _budget_left(self) -> tuple[int, str | None]:
        done = len(self._finished())
        if done >= self.limit:
            if self.tuning.sample_first is not None:
                return 0, "survivors"  # every point that came through the screening was tried
            return 0, "grid exhausted" if self.limit < self.tuning.trials else "trials"
        elapsed, cost = self._spent()
        if self.tuning.max_seconds is not None and elapsed >= self.tuning.max_seconds:
            return 0, "max_seconds"
        if self.tuning.max_cost is not None and cost >= self.tuning.max_cost:
            return 0, "max_cost"
        return min(self.tuning.batch, self.limit - done), None

    def run(
        self,
        executor: Executor,
        shared: dict[str, Any],
        on_trial: Callable[[TrialRecord], None] | None = None,
    ) -> SearchOutcome:
        best_folds: dict[int, list[FoldResult]] = {}
        stopped_by = "trials"
        while True:
            size, reason = self._budget_left()
            if reason is not None:
                stopped_by = reason
                break
            started = time.perf_counter()
            batch = [self._ask() for _ in range(size)]
            finished = self._evaluate(batch, executor, shared)
            elapsed, cost = self._spent()
            self.study.set_user_attr(_ELAPSED, elapsed + time.perf_counter() - started)
            self.study.set_user_attr(_COST, cost + sum(r.cost for r in finished))
            for live, record in zip(batch, finished, strict=True):
                if record.state == "COMPLETE":
                    best_folds[record.number] = live.folds
                if on_trial is not None:
                    on_trial(record)
        return self._outcome(best_folds, stopped_by)

    def _ask(self) -> _Live:
        trial = self.study.ask()
        return _Live(trial, sample_optuna(trial, self.space, self.tuning.method), [])

    def _evaluate(
        self, batch: list[_Live], executor: Executor, shared: dict[str, Any]
    ) -> list[TrialRecord]:
        records: dict[int, TrialRecord] = {}
        live = list(batch)
        for step, fold in enumerate(self.fold_ids):
            jobs = [FoldJob(self.candidate, fold, item.params, item.trial.number) for item in live]
            results = executor.map(run_fold, jobs, shared=shared)
            still: list[_Live] = []
            for item, result in zip(live, results, strict=True):
                item.folds.append(result)
                if not result.ok:
                    records[item.trial.number] = self._tell(item, TrialState.FAIL, result.error)
                    continue
                running = self._mean(item.folds)
                item.trial.report(running, step=step)
                if step < self.n_folds - 1 and item.trial.should_prune():
                    records[item.trial.number] = self._tell(item, TrialState.PRUNED)
                    continue
                still.append(item)
            live = still
        for item in live:
            records[item.trial.number] = self._tell(item, TrialState.COMPLETE)
        return [records[item.trial.number] for item in batch]

    def _mean(self, folds: list[FoldResult]) -> float:
        return float(np.mean([f.validation[self.metric] for f in folds]))

    def _tell(self, item: _Live, state: TrialState, error: str | None = None) -> TrialRecord:
        usage = sum((f.usage for f in item.folds), Usage.zero())
        cost = self.prices.cost(usage)
        scores = [f.validation[self.metric] for f in item.folds if f.ok]
        trial = item.trial
        trial.set_user_attr("params", {k: plain(v) for k, v in item.params.items()})
        trial.set_user_attr("fold_scores", scores)
        trial.set_user_attr("fold_metrics", [f.validation for f in item.folds if f.ok])
        trial.set_user_attr("train_metrics", [f.train for f in item.folds if f.ok])
        trial.set_user_attr("usage", usage.as_dict())
        trial.set_user_attr("cost", cost)
        caught = merge(f.warnings for f in item.folds)
        if caught:
            trial.set_user_attr("warnings", [w.as_dict() for w in caught])
        if error is not None:
            trial.set_user_attr("error", error)
        value = self._mean(item.folds) if state == TrialState.COMPLETE else None
        if state == TrialState.COMPLETE:
            self.study.tell(trial, value)
        else:
            self.study.tell(trial, state=state)
        return TrialRecord(
            number=trial.number,
            state=state.name,
            params=item.params,
            value=value,
            fold_scores=scores,
            usage=usage,
            cost=cost,
            error=error,
            warnings=caught,
        )

    def _outcome(self, best_folds: dict[int, list[FoldResult]], stopped_by: str) -> SearchOutcome:
        completed = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not completed:
            errors = [t.user_attrs.get("error") for t in self.study.get_trials(deepcopy=False)]
            first = next((e for e in errors if e), "no trial finished")
            raise TuningError(f"tuning {self.candidate}: no trial completed ({first})")
        best = self.study.best_trial
        return SearchOutcome(
            candidate=self.candidate,
            best_params=_params_of(best, self.space),
            best_folds=best_folds.get(best.number),
            best_value=float(best.value) if best.value is not None else float("nan"),
            trials=[_record(t, self.space) for t in self.study.get_trials(deepcopy=False)],
            stopped_by=stopped_by,
            resumed_trials=self.resumed,
        )


class TuningError(RuntimeError):
    """No trial of a search could be completed."""


def _params_of(trial: optuna.trial.FrozenTrial, space: Space) -> dict[str, Any]:
    return decode_optuna(space, {n: trial.params[n] for n in space if n in trial.params})


def _record(trial: optuna.trial.FrozenTrial, space: Space | None) -> TrialRecord:
    usage = trial.user_attrs.get("usage")
    if "params" in trial.user_attrs or space is None:
        params = dict(trial.user_attrs.get("params", trial.params))
    else:
        params = decode_optuna(space, trial.params)
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        params=params,
        value=trial.value,
        fold_scores=list(trial.user_attrs.get("fold_scores", [])),
        usage=Usage.from_dict(usage) if usage else Usage.zero(),
        cost=float(trial.user_attrs.get("cost", 0.0)),
        error=trial.user_attrs.get("error"),
        warnings=tuple(CaughtWarning.from_dict(w) for w in trial.user_attrs.get("warnings", [])),
    )


def trials_of(storage: optuna.storages.BaseStorage, run_id: str) -> dict[str, list[TrialRecord]]:
    """Every trial of every search of run ``run_id``, by study (``candidate`` for the run's own
    search, ``candidate:outerN`` for nested cross-validation's), in the order they were asked;
    the study of the run's finished folds is not a search and is left out."""
    prefix = f"{run_id}:"
    found: dict[str, list[TrialRecord]] = {}
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if summary.study_name.startswith(prefix) and summary.study_name != f"{prefix}{FOLDS}":
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            trials = study.get_trials(deepcopy=False)
            found[summary.study_name[len(prefix) :]] = [_record(t, None) for t in trials]
    return dict(sorted(found.items()))
