"""Model compression after a run: what a smaller model gives up in score and saves in cost.

Two ways to a smaller model are compared, each as ``before -> after``:

- distillation, decided in the spec (``distilled_from``): the run already scored and timed the
  student beside its teacher, so their rows come from the run's record;
- tree pruning, asked for after the fact: a fitted tree ensemble keeps its first ``k`` trees.
  The first ones, not the ``k`` best by validation: a boosted ensemble's trees each correct the
  ones before, so only a prefix is a model at all, and a forest's trees are exchangeable, so
  any ``k`` of them are as good as the first ``k`` in expectation (and choosing the best ``k`` on
  the validation folds would make the score that reports the choice an optimistic one).

A pruned model is scored the way the leaderboard scores a candidate, on the run's own CV folds
(re-made from the stored dataset and the spec): each fold's ensemble is fitted once and cut to
every ``k``, so the score is honest and comparable with the candidate's CV score. Size (pickled
bytes, as the registry stores a model), median single-row latency and the cost of 1,000
predictions (:func:`mlship.train.pareto.serving_cost`) are measured on the ensemble fitted on the
whole training part, cut likewise.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from mlship.errors import MlshipError
from mlship.prices import Prices
from mlship.spec.data import Column
from mlship.spec.models import PipelineSpec
from mlship.store.context import HasArtifacts, HasRuns, HasSettings
from mlship.store.entities import Run
from mlship.train.candidates import Recipe
from mlship.train.cost import predict_latency
from mlship.train.details import RunDetails
from mlship.train.pareto import serving_cost
from mlship.train.parts import TrainingPart, training_part
from mlship.train.scoring import score_metric
from mlship.train.weighting import fit_weighted, rows

PRUNABLE = (
    "random_forest",
    "extra_trees",
    "gradient_boosting",
    "hist_gradient_boosting",
    "xgboost",
)
"""Catalog estimators whose fitted trees can be cut to a prefix."""


class CompressError(MlshipError):
    """A run or candidate that cannot be compressed as asked; the message says why."""


class CompressStores(HasRuns, HasArtifacts, HasSettings, Protocol):
    """What compression reads: the run, its stored dataset, the prices."""


@dataclass(frozen=True)
class Footprint:
    """A model's score and what it costs to keep and to serve."""

    score: float
    model_bytes: int | None
    p50_ms: float | None
    per_1k: float | None


@dataclass(frozen=True)
class Compressed:
    """One compressed model against the model it came from."""

    model: str
    method: str
    before: Footprint
    after: Footprint


@dataclass(frozen=True)
class Compression:
    """A run's compression table, with the metric its scores are in."""

    run_id: str
    metric: str
    currency: str
    rows: tuple[Compressed, ...]


def distilled_rows(run: Run) -> list[Compressed]:
    """Every distilled student of ``run`` against its teacher, from the run's record."""
    costs = RunDetails.from_json(run.details).costs or {}
    by_name = {c.name: c for c in run.candidates}
    found: list[Compressed] = []
    for name, record in costs.items():
        teacher = record.distilled_from
        if teacher is None or teacher not in by_name or name not in by_name:
            continue

        def footprint(candidate: str) -> Footprint:
            kept = costs.get(candidate)
            return Footprint(
                score=by_name[candidate].cv_mean,
                model_bytes=kept.model_bytes if kept else None,
                p50_ms=by_name[candidate].predict_ms,
                per_1k=kept.serving_per_1k if kept else None,
            )

        found.append(
            Compressed(
                f"{name}, distilled from {teacher}",
                "distillation",
                footprint(teacher),
                footprint(name),
            )
        )
    return found


def compress(
    workspace: CompressStores,
    run_ref: str,
    candidate: str | None = None,
    trees: Sequence[int] = (10, 25, 50),
) -> Compression:
    """The compression table of run ``run_ref``: its distilled students, and ``candidate`` (the
    selected one by default, when it is a tree ensemble) cut to each of ``trees``."""
    if not trees or any(k < 1 for k in trees):
        raise CompressError(f"--trees: expected whole numbers of 1 or more, got {list(trees)}")
    run = workspace.runs.get_run(run_ref)
    if run.status != "succeeded" or not run.candidates:
        raise CompressError(
            f"run {run.id[:8]} is {run.status}; only a run that succeeded is compressed"
        )
    prices = workspace.settings.prices
    rows_found = distilled_rows(run)
    chosen = candidate or run.best_candidate or run.candidates[0].name
    named = next((c for c in run.candidates if c.name == chosen), None)
    if named is None:
        known = ", ".join(c.name for c in run.candidates)
        raise CompressError(f"--candidate: run {run.id[:8]} has no candidate {chosen!r}: {known}")
    spec = _spec(run)
    declared = next(m for m in spec.models if m.label == chosen)
    base = declared.estimator
    if base not in PRUNABLE:
        if candidate is not None or not rows_found:
            raise CompressError(
                f"--candidate: {chosen} is a {base}; tree pruning takes a "
                f"{', '.join(PRUNABLE)} candidate"
            )
        return Compression(run.id, run.metric, prices.currency, tuple(rows_found))
    recipe = replace(Recipe.from_spec(spec, declared), params=dict(named.params))
    part = training_part(spec, _frame(workspace, run))
    rows_found.extend(_pruned(spec, recipe, part, sorted(set(trees)), prices, chosen))
    return Compression(run.id, run.metric, prices.currency, tuple(rows_found))


def _spec(run: Run) -> PipelineSpec:
    spec = PipelineSpec.model_validate(run.spec)
    if spec.infer_columns and run.dataset is not None:  # the columns the run inferred
        columns = [Column.model_validate(c) for c in run.dataset.columns]
        spec = spec.model_copy(update={"columns": columns})
    return spec


def _frame(workspace: CompressStores, run: Run) -> Any:
    from mlship.data.ingested import dataset_frame
    from mlship.data.versioning import frame_hash

    dataset = run.dataset
    if dataset is None:
        raise CompressError(f"run {run.id[:8]} recorded no dataset to score pruned models on")
    frame = dataset_frame(dataset, workspace)
    if frame_hash(frame) != dataset.data_hash:
        raise CompressError(
            f"dataset {dataset.data_hash[:12]} of run {run.id[:8]} does not hash to its recorded "
            "content hash; its folds cannot be trusted to score pruned models"
        )
    return frame


def _pruned(
    spec: PipelineSpec,
    recipe: Recipe,
    part: TrainingPart,
    trees: list[int],
    prices: Prices,
    name: str,
) -> list[Compressed]:
    scores: dict[int, list[float]] = {}
    full = 0
    for train, valid in part.folds:
        model = fit_weighted(
            recipe.build(), part.X.iloc[train], part.y.iloc[train], rows(part.weights, train)
        )
        full = tree_count(model)
        for k in [*trees, full]:
            value = score_metric(
                spec.task,
                spec.metric,
                pruned(model, k),
                part.X.iloc[valid],
                part.y.iloc[valid],
                spec.target.positive,
                rows(part.weights, valid),
            )
            scores.setdefault(min(k, full), []).append(np.nan if value is None else value)
    model = fit_weighted(recipe.build(), part.X, part.y, part.weights)
    full = tree_count(model)
    row = part.X.iloc[:1]

    def footprint(k: int) -> Footprint:
        cut = pruned(model, k)
        size = len(pickle.dumps(cut, protocol=5))
        p50_ms = predict_latency(cut, row, repeats=30)["p50_seconds"] * 1000
        return Footprint(
            float(np.mean(scores[k])), size, p50_ms, serving_cost(p50_ms, size, prices)
        )

    before = footprint(full)
    return [
        Compressed(f"{name}, first {k} of {full} trees", "pruning", before, footprint(k))
        for k in trees
        if k < full
    ]


def ensemble(model: Any) -> Any:
    """The fitted tree ensemble inside a pipeline (or a distilled student's, or a target
    transform's)."""
    learner = getattr(model, "learner", None)
    if callable(learner):
        model = learner()
    step = getattr(model, "named_steps", {}).get("model", model)
    return getattr(step, "regressor_", step)


def tree_count(model: Any) -> int:
    """How many boosting rounds or trees the fitted ensemble in ``model`` has."""
    step = ensemble(model)
    if hasattr(step, "get_booster"):  # XGBoost
        return int(step.get_booster().num_boosted_rounds())
    if hasattr(step, "_predictors"):  # histogram gradient boosting
        return int(step.n_iter_)
    if hasattr(step, "n_estimators_"):  # gradient boosting (fewer with early stopping)
        return int(step.n_estimators_)
    return len(step.estimators_)


def pruned(model: Any, k: int) -> Any:
    """A copy of the fitted ``model`` whose ensemble keeps its first ``k`` trees (or rounds)."""
    if k >= tree_count(model):
        return model
    cut = copy.deepcopy(model)
    step = ensemble(cut)
    if hasattr(step, "get_booster"):  # a booster sliced to its first k rounds
        step._Booster = step.get_booster()[:k]
        step.n_estimators = k
        return cut
    if hasattr(step, "_predictors"):
        step._predictors = step._predictors[:k]  # its n_iter_ is their count
        return cut
    step.estimators_ = step.estimators_[:k]
    if hasattr(step, "n_estimators_"):
        step.n_estimators_ = k
        step.train_score_ = step.train_score_[:k]
    step.n_estimators = k
    return cut


__all__ = [
    "PRUNABLE",
    "CompressError",
    "Compressed",
    "Compression",
    "Footprint",
    "compress",
    "distilled_rows",
    "ensemble",
    "pruned",
    "tree_count",
]
