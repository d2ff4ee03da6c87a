"""Runs side by side: what each trained on, what it picked, how it scored and what it cost.

One column per run and one row per compared field. Parameters and metrics are the union over the
runs (a run without a value shows none), so runs of different candidates or specs still line up.
A row *differs* when its values are not all the same. Each metric row marks its best value, in the
metric's own direction (a larger ROC-AUC, a smaller RMSE) as training judges it
(:data:`mlship.train.metrics.METRICS`); time, memory and cost rows mark the smallest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlship.errors import MlshipError
from mlship.store.entities import Run
from mlship.train.metrics import METRICS

SHORT_HASH = 12

SECTIONS = ("run", "params", "holdout", "cv", "resources")
"""The row groups, in the order they are shown."""

METRIC_SECTIONS = ("holdout", "cv")


@dataclass(frozen=True)
class Row:
    """One compared field: its value in each run (``None`` where a run has none) and which runs
    hold the best value (empty when the field has no better or worse)."""

    section: str
    name: str
    values: tuple[Any, ...]
    best: tuple[bool, ...] = ()
    greater_is_better: bool | None = None

    @property
    def differs(self) -> bool:
        return len({repr(value) for value in self.values}) > 1


@dataclass(frozen=True)
class RunComparison:
    """Runs compared field by field; ``labels`` are the short ids that head the columns."""

    runs: tuple[str, ...]
    labels: tuple[str, ...]
    rows: tuple[Row, ...] = field(default_factory=tuple)

    def section(self, name: str) -> list[Row]:
        return [row for row in self.rows if row.section == name]

    def as_dict(self) -> dict[str, Any]:
        """The comparison as plain JSON values (undefined numbers as ``None``)."""
        return {
            "runs": list(self.runs),
            "rows": [
                {
                    "section": row.section,
                    "name": row.name,
                    "values": [_finite(value) for value in row.values],
                    "best": list(row.best),
                    "differs": row.differs,
                    "greater_is_better": row.greater_is_better,
                }
                for row in self.rows
            ],
        }


def compare_runs(runs: Sequence[Run]) -> RunComparison:
    """Compare two or more runs (each loaded with its candidates, metrics and dataset, as
    :meth:`MetadataStore.get_run` returns them)."""
    if len(runs) < 2:
        raise MlshipError("comparing needs at least two runs")
    seen: set[str] = set()
    for run in runs:
        if run.id in seen:
            raise MlshipError(f"run {run.id[:8]} is given twice")
        seen.add(run.id)
    tasks = {run.task for run in runs}
    rows: list[Row] = [
        Row("run", name, tuple(_fact(run, name) for run in runs))
        for name in ("pipeline", "status", "owner", "tags", "task", "metric", "dataset", "spec")
    ]
    selected = [_selected(run) for run in runs]
    rows.append(Row("run", "best candidate", tuple(run.best_candidate for run in runs)))
    rows.append(Row("run", "estimator", tuple(c.estimator if c else None for c in selected)))
    params = [c.params if c else {} for c in selected]
    for key in sorted({key for found in params for key in found}):
        rows.append(Row("params", key, tuple(found.get(key) for found in params)))
    for split in METRIC_SECTIONS:
        scores = [_scores(run, split) for run in runs]
        for name in sorted({name for found in scores for name in found}):
            values = tuple(found.get(name) for found in scores)
            bigger = _direction(name, tasks)
            rows.append(Row(split, name, values, _best(values, bigger), bigger))
    for name, values in _resources(runs):
        rows.append(Row("resources", name, values, _best(values, False), False))
    return RunComparison(
        tuple(run.id for run in runs), tuple(run.id[:8] for run in runs), tuple(rows)
    )


def _fact(run: Run, name: str) -> Any:
    if name == "tags":
        return ", ".join(f"{k}={v}" for k, v in sorted((run.tags or {}).items())) or None
    if name == "dataset":
        return run.dataset.data_hash[:SHORT_HASH] if run.dataset else None
    if name == "spec":
        return run.spec_hash[:SHORT_HASH]
    return getattr(run, name)


def _selected(run: Run) -> Any:
    return next((c for c in run.candidates if c.selected), None)


def _scores(run: Run, split: str) -> dict[str, float]:
    """The run's test-set scores, or the cross-validated scores of its selected candidate."""
    return {
        metric.name: metric.value
        for metric in run.metrics
        if metric.split == split and (split != "cv" or metric.candidate == run.best_candidate)
    }


def _resources(runs: Sequence[Run]) -> list[tuple[str, tuple[Any, ...]]]:
    def memory(run: Run) -> float | None:
        return None if run.peak_memory_bytes is None else run.peak_memory_bytes / 2**20

    return [
        ("wall seconds", tuple(run.wall_seconds for run in runs)),
        ("CPU seconds", tuple(run.cpu_seconds for run in runs)),
        ("peak memory MiB", tuple(memory(run) for run in runs)),
        ("cost", tuple(run.cost for run in runs)),
    ]


def _direction(metric: str, tasks: set[str]) -> bool | None:
    """Whether a larger ``metric`` is better, as the runs' tasks define it; ``None`` when no
    task knows the metric."""
    for task in sorted(tasks):
        known = METRICS.get(task, {})
        if metric in known:
            return known[metric]
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _best(values: tuple[Any, ...], bigger: bool | None) -> tuple[bool, ...]:
    """Which values are the best (ties all count); nothing is marked without a direction, with
    fewer than two numbers to compare, or when they are all the same."""
    numbers = [_number(value) for value in values]
    present = [number for number in numbers if number is not None]
    if bigger is None or len(present) < 2 or len(set(present)) == 1:
        return ()
    target = max(present) if bigger else min(present)
    return tuple(number is not None and number == target for number in numbers)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
