"""Gating a candidate version against another (usually the one in production) on the same rows.

The rows are the candidate's own test rows, split off its stored dataset again
(:mod:`mlship.registry.held_out`): rows the candidate has not learnt from. Each version is scored
by the model its run tested (the scored model a refit version keeps), for the same reason. The
baseline may have been trained on another dataset, which may hold some of these rows; that can
only flatter the baseline, so the gate errs towards keeping what is in production, and says so
in its notes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mlship.errors import MlshipError
from mlship.evaluation.gate import (
    Check,
    GateVerdict,
    Scored,
    budget_checks,
    gate_metric,
    judge_metric,
    slice_checks,
)
from mlship.registry.held_out import HeldOutStores, held_out, run_spec, scored_model
from mlship.spec.gate import GateSpec, SliceBudget
from mlship.spec.models import PipelineSpec
from mlship.store.entities import ModelVersion, model_of
from mlship.train.model_io import LoadedModel
from mlship.train.pareto import serving_cost


class GateStores(HeldOutStores, Protocol):
    """Where the gate finds the rows and the models."""


def _ref(version: ModelVersion) -> str:
    return f"{model_of(version).name}:{version.version}"


@dataclass(frozen=True)
class EvaluationRows:
    """Declared evaluation rows (a file with the inputs and the target), read as scored files
    are; ``origin`` names them in messages."""

    frame: pd.DataFrame
    origin: str
    csv_lines: bool = False


def run_gate(
    workspace: GateStores,
    candidate: ModelVersion,
    baseline: ModelVersion,
    declared: GateSpec | None = None,
    rows: EvaluationRows | None = None,
) -> GateVerdict:
    """Score both versions on the candidate's test rows (or on declared ``rows``, by the versions
    as they serve) and judge them by ``declared`` (a gate file), else the candidate's spec's
    ``gate:`` block, else the defaults."""
    if candidate.id == baseline.id:
        raise MlshipError(f"{_ref(candidate)} is the baseline itself; gate a newer version")
    held = held_out(workspace, candidate) if rows is None else None
    run = held.run if held is not None else workspace.runs.get_run(candidate.run_id)
    pipeline = (
        held.spec
        if held is not None
        else run_spec(run, workspace.datasets.get_dataset(candidate.dataset_hash))
    )
    spec = declared or pipeline.gate
    notes: list[str] = []
    if spec is None:
        spec = GateSpec()
        notes.append(
            "No gate is declared (a `gate:` block in the spec or --gate FILE): the defaults "
            "apply, the run's metric with require: significant."
        )
    task = pipeline.task
    baseline_run = workspace.runs.get_run(baseline.run_id)
    if baseline_run.task != task:
        raise MlshipError(
            f"{_ref(candidate)} is a {task} model and {_ref(baseline)} a {baseline_run.task} "
            "model; the gate compares models of one task"
        )
    target = pipeline.target.name
    if baseline.signature["target"]["name"] != target:
        raise MlshipError(
            f"{_ref(candidate)} predicts {target!r} and {_ref(baseline)} predicts "
            f"{baseline.signature['target']['name']!r}; the gate compares models of one target"
        )
    metric = gate_metric(spec, task, run.metric)
    if held is not None:
        models = (
            scored_model(workspace, candidate, held.run),
            scored_model(workspace, baseline, baseline_run),
        )
        frame, y = held.rows.frame, held.rows.y
        rows_from = (
            f"the {len(y)} test rows of run {held.run.id[:8]} "
            f"(dataset {held.dataset.data_hash[:12]})"
        )
    else:
        assert rows is not None
        models = (workspace.load_model(candidate), workspace.load_model(baseline))
        frame = rows.frame
        y = _target(rows, target, task, models[0])
        rows_from = f"the {len(y)} rows of {rows.origin}"
        notes.append(
            f"Declared evaluation rows: each version is scored as it serves; rows it was trained "
            f"on among {rows.origin} would flatter it."
        )
    pairs = zip(models, (candidate, baseline), strict=True)
    outputs = [_scored(model, frame, version, rows) for model, version in pairs]
    difference, test, checks = judge_metric(
        spec,
        task,
        metric,
        y,
        outputs[0],
        outputs[1],
        positive_label=pipeline.target.positive,
    )
    budgets = spec.budgets
    latency = cost = None
    if budgets.max_latency_ms is not None or budgets.max_cost_per_1000 is not None:
        timed = frame
        if rows is not None:  # typed as the candidate takes them, as in _scored
            timed = models[0].prepare(frame, rows.origin, csv_lines=rows.csv_lines)
        spent = _one_row_ms(models[0], timed, budgets.latency_rows)
        latency = float(np.percentile(spent, 95))
        prices = workspace.settings.prices
        cost = serving_cost(float(np.median(spent)), candidate.artifact_size, prices)
    checks += budget_checks(
        budgets,
        size_bytes=candidate.artifact_size,
        latency_p95_ms=latency,
        cost_per_1000=cost,
        currency=workspace.settings.prices.currency,
    )
    if budgets.slices is not None:
        checks += _slices(budgets.slices, pipeline, metric, frame, y, outputs, rows_from)
    if held is not None and baseline.dataset_hash != candidate.dataset_hash:
        notes.append(
            f"{_ref(baseline)} was trained on dataset {baseline.dataset_hash[:12]}, not on "
            f"{candidate.dataset_hash[:12]}; rows of it among these test rows can only flatter "
            f"{_ref(baseline)}."
        )
    return GateVerdict(
        candidate=_ref(candidate),
        baseline=_ref(baseline),
        task=task,
        rows=len(y),
        rows_from=rows_from,
        require=spec.require,
        difference=difference,
        test=test,
        checks=tuple(checks),
        notes=tuple(notes),
        gate=spec,
    )


def _slices(
    budget: SliceBudget,
    pipeline: PipelineSpec,
    metric: str,
    frame: pd.DataFrame,
    y: pd.Series,
    outputs: list[Scored],
    rows_from: str,
) -> list[Check]:
    """The slice budget's checks, on the declared columns or the card's sensitive ones."""
    columns = budget.columns or (pipeline.card.sensitive if pipeline.card else [])
    if not columns:
        raise MlshipError(
            "gate.budgets.slices names no columns and the spec's card declares no sensitive "
            "ones; list the columns whose groups are compared"
        )
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise MlshipError(
            f"gate.budgets.slices: column(s) {', '.join(missing)} are not in {rows_from}; "
            f"they have: {', '.join(map(str, frame.columns))}"
        )
    return slice_checks(
        budget,
        pipeline.task,
        metric,
        y,
        {name: frame[name] for name in columns},
        outputs[0],
        outputs[1],
        positive_label=pipeline.target.positive,
    )


def _scored(
    model: LoadedModel, frame: Any, version: ModelVersion, rows: EvaluationRows | None
) -> Scored:
    inputs = [column.name for column in model.signature.inputs]
    missing = [name for name in inputs if name not in frame.columns]
    if missing:
        where = rows.origin if rows is not None else "the candidate's test rows"
        raise MlshipError(
            f"{_ref(version)} needs column(s) {', '.join(missing)}, which {where} does not have"
        )
    typed = frame[inputs]
    if rows is not None:  # a file: checked against the version's signature, as predict does
        typed = model.prepare(frame, rows.origin, csv_lines=rows.csv_lines)
    predictions, proba = model.predict(typed)
    classes = getattr(model.pipeline, "classes_", None)
    return Scored(
        _ref(version),
        np.asarray(predictions),
        proba,
        None if classes is None else list(classes),
    )


def _target(rows: EvaluationRows, target: str, task: str, model: LoadedModel) -> pd.Series:
    """The declared rows' target, as the candidate's classes (matched by their text) or as
    numbers; a value that is neither stops the gate naming its row."""
    if target not in rows.frame.columns:
        raise MlshipError(
            f"{rows.origin}: the target column {target!r} is missing; the gate scores rows "
            "whose outcome is known"
        )
    values = rows.frame[target].reset_index(drop=True)
    if task == "regression":
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna()
    else:
        classes = {str(c).lower(): c for c in getattr(model.pipeline, "classes_", [])}
        numbers = values.map(lambda v: classes.get(str(v).lower()))
        bad = numbers.isna() & values.notna() | values.isna()
    if bad.any():
        first = int(bad.to_numpy().argmax())
        expected = (
            "a number"
            if task == "regression"
            else "one of " + ", ".join(map(str, getattr(model.pipeline, "classes_", [])))
        )
        where = f"row {first + 1}" + (f" (line {first + 2})" if rows.csv_lines else "")
        raise MlshipError(
            f"{rows.origin}: {where}, column {target!r}: {values.iloc[first]!r} is not "
            f"{expected} ({int(bad.sum())} such rows)"
        )
    return numbers


def _one_row_ms(model: LoadedModel, frame: Any, rows: int) -> list[float]:
    """Milliseconds of predicting one row at a time, as a model server does, for each of the
    first ``rows`` rows (after one untimed warm-up prediction)."""
    inputs = frame[[column.name for column in model.signature.inputs]]
    count = min(rows, len(inputs))
    model.predict(inputs.iloc[:1])
    spent = []
    for index in range(count):
        row = inputs.iloc[index : index + 1]
        started = time.perf_counter()
        model.predict(row)
        spent.append((time.perf_counter() - started) * 1000)
    return spent
