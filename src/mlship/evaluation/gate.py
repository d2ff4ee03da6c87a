"""The gate's verdict: does a candidate beat the baseline on the same rows, within its budgets?

Every check is kept, passed or not, and each failed one says why in a sentence, so a pipeline that
stops at the gate tells its reader everything that would have to change rather than the first
thing. The statistics are :mod:`mlship.evaluation.gate_stats`'; what they must show is the gate
spec's (:class:`mlship.spec.gate.GateSpec`):

* the point estimate of the improvement reaches ``min_improvement``;
* ``require: significant``: the interval of the improvement lies above zero, and above
  ``min_improvement`` when that is positive (significantly better by at least that much: a
  margin asked of the point estimate alone would pass a gain the rows cannot tell from less),
  and where a classical paired test applies (McNemar for accuracy, DeLong for binary ROC-AUC)
  it rejects equal performance at the same level, in the candidate's favour. A better point
  estimate whose interval includes zero fails: it could be noise.
* ``require: not_worse``: the interval's low end is no lower than ``-max_loss``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlship.errors import SpecError
from mlship.evaluation.gate_stats import (
    Difference,
    PairedTest,
    delong,
    mcnemar,
    paired_bootstrap,
)
from mlship.evaluation.metrics import resampled_metrics
from mlship.evaluation.slices import SMALL_SLICE, slice_metrics
from mlship.json_values import plain
from mlship.spec.gate import GateBudgets, GateSpec, SliceBudget
from mlship.spec.models import Task
from mlship.train.metrics import METRICS, metric_label, positive_index


@dataclass(frozen=True)
class Check:
    """One thing the gate judged: what was measured, and why it failed (empty when passed)."""

    name: str
    passed: bool
    measured: str
    reason: str = ""


@dataclass(frozen=True)
class Scored:
    """One model's outputs on the gate's rows."""

    ref: str
    predictions: np.ndarray[Any, Any]
    proba: np.ndarray[Any, Any] | None
    classes: list[Any] | None


@dataclass(frozen=True)
class GateVerdict:
    """Everything the gate measured and decided about ``candidate`` against ``baseline``."""

    candidate: str
    baseline: str
    task: str
    rows: int
    rows_from: str
    require: str
    difference: Difference
    test: PairedTest | None
    checks: tuple[Check, ...]
    notes: tuple[str, ...] = ()
    gate: GateSpec | None = None
    """The gate judged by (the declared one, or the defaults)."""

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def reasons(self) -> list[str]:
        return [check.reason for check in self.checks if not check.passed]


def gate_metric(spec: GateSpec, task: Task, run_metric: str) -> str:
    """The metric the gate compares: the spec's, else the run's own; refused when the task has
    no such metric."""
    metric = spec.metric or run_metric
    if metric not in METRICS[task]:
        raise SpecError(
            f"gate.metric: {task} has no metric {metric!r}; expected one of: "
            + ", ".join(METRICS[task])
        )
    return metric


def judge_metric(
    spec: GateSpec,
    task: Task,
    metric: str,
    y_true: Any,
    candidate: Scored,
    baseline: Scored,
    *,
    positive_label: Any = None,
) -> tuple[Difference, PairedTest | None, list[Check]]:
    """The paired comparison on ``metric`` and the checks the spec asks of it."""
    bigger = METRICS[task][metric]
    truth = np.asarray(y_true, dtype=object if task == "classification" else float)
    try:
        difference = paired_bootstrap(
            metric,
            bigger,
            resampled_metrics(
                task,
                truth,
                candidate.predictions,
                candidate.proba,
                candidate.classes,
                positive_label=positive_label,
            ),
            resampled_metrics(
                task,
                truth,
                baseline.predictions,
                baseline.proba,
                baseline.classes,
                positive_label=positive_label,
            ),
            resamples=spec.resamples,
            confidence=spec.confidence,
            seed=spec.seed,
        )
    except ValueError as exc:
        raise SpecError(f"the gate cannot compare {metric_label(metric)}: {exc}") from None
    test = _paired_test(task, metric, truth, candidate, baseline, positive_label)
    label = metric_label(metric)
    checks = [_improvement_check(spec, label, difference, baseline.ref)]
    interval = f"[{difference.low:+.4f}, {difference.high:+.4f}]"
    level = f"{difference.confidence:.0%}"
    if spec.require == "significant":
        margin = max(0.0, spec.min_improvement)
        if difference.low > 0:  # above zero, not above the margin
            why = (
                f"does not lie above the min_improvement of {margin:+.4f}: the candidate is not "
                f"significantly better by {margin:+.4f}"
            )
        else:
            why = (
                "includes zero" if difference.includes_zero else "lies below zero"
            ) + ": the candidate is not significantly better"
        checks.append(
            Check(
                "significant",
                difference.low > margin,
                f"{level} interval of the improvement {interval}",
                f"the {level} interval of the {label} improvement, {interval}, {why}",
            )
        )
        if test is not None:
            alpha = 1 - spec.confidence
            favours = test.statistic > 0
            checks.append(
                Check(
                    test.name,
                    test.p_value < alpha and favours,
                    f"p = {test.p_value:.4g} ({test.detail})",
                    f"{test.name}: p = {test.p_value:.4g}"
                    + (f", not below {alpha:.4g}" if test.p_value >= alpha else "")
                    + ("" if favours else ", and not in the candidate's favour")
                    + f" ({test.detail})",
                )
            )
    else:
        assert spec.max_loss is not None
        checks.append(
            Check(
                "not worse",
                difference.low >= -spec.max_loss,
                f"{level} interval of the improvement {interval}",
                f"the {level} interval of the {label} improvement, {interval}, reaches "
                f"{difference.low:+.4f}, below the largest loss allowed, {-spec.max_loss:+.4f}",
            )
        )
    return difference, test, checks


def _improvement_check(spec: GateSpec, label: str, difference: Difference, baseline: str) -> Check:
    measured = (
        f"{label} {difference.candidate:.4f} against {difference.baseline:.4f}: "
        f"improvement {difference.improvement:+.4f}"
    )
    return Check(
        "improvement",
        difference.improvement >= spec.min_improvement,
        measured,
        f"{label} is {difference.candidate:.4f} against {difference.baseline:.4f} for {baseline}: "
        f"an improvement of {difference.improvement:+.4f}, short of the "
        f"{spec.min_improvement:+.4f} the gate asks",
    )


def _paired_test(
    task: Task,
    metric: str,
    truth: np.ndarray[Any, Any],
    candidate: Scored,
    baseline: Scored,
    positive_label: Any,
) -> PairedTest | None:
    """McNemar's test for accuracy, DeLong's for the ROC-AUC of two classes; otherwise none."""
    if task != "classification":
        return None
    if metric == "accuracy":
        right = [plain(v) for v in truth]
        return mcnemar(
            [plain(p) == t for p, t in zip(candidate.predictions, right, strict=True)],
            [plain(p) == t for p, t in zip(baseline.predictions, right, strict=True)],
        )
    if metric != "roc_auc" or candidate.proba is None or baseline.proba is None:
        return None
    if not candidate.classes or not baseline.classes or len(candidate.classes) != 2:
        return None
    positive = plain(candidate.classes[positive_index(candidate.classes, positive_label)])
    is_positive = np.array([plain(v) == positive for v in truth])
    try:
        return delong(
            is_positive,
            candidate.proba[:, _column(candidate.classes, positive)],
            baseline.proba[:, _column(baseline.classes, positive)],
        )
    except ValueError:  # the baseline lacks the class, or a class has fewer than two rows
        return None


def _column(classes: list[Any], positive: Any) -> int:
    return [plain(c) for c in classes].index(positive)


def budget_checks(
    budgets: GateBudgets,
    *,
    size_bytes: int | None,
    latency_p95_ms: float | None,
    cost_per_1000: float | None = None,
    currency: str = "",
) -> list[Check]:
    """The candidate's declared limits, each a check (only those the gate declares)."""
    checks = []
    if budgets.max_size_mb is not None and size_bytes is not None:
        size = size_bytes / 2**20
        checks.append(
            Check(
                "size",
                size <= budgets.max_size_mb,
                f"{size:.2f} MiB (budget {budgets.max_size_mb:g} MiB)",
                f"the model is {size:.2f} MiB, over its budget of {budgets.max_size_mb:g} MiB",
            )
        )
    if budgets.max_latency_ms is not None and latency_p95_ms is not None:
        checks.append(
            Check(
                "latency",
                latency_p95_ms <= budgets.max_latency_ms,
                f"p95 {latency_p95_ms:.2f} ms a row (budget {budgets.max_latency_ms:g} ms)",
                f"one-row predictions take {latency_p95_ms:.2f} ms at the 95th percentile, over "
                f"the budget of {budgets.max_latency_ms:g} ms",
            )
        )
    if budgets.max_cost_per_1000 is not None and cost_per_1000 is not None:
        limit = f"{budgets.max_cost_per_1000:g} {currency}".strip()
        checks.append(
            Check(
                "cost",
                cost_per_1000 <= budgets.max_cost_per_1000,
                f"{cost_per_1000:.6f} {currency} per 1,000 predictions (budget {limit})",
                f"1,000 predictions cost {cost_per_1000:.6f} {currency}, over the budget of "
                f"{limit}",
            )
        )
    return checks


def slice_checks(
    budget: SliceBudget,
    task: Task,
    metric: str,
    y_true: pd.Series,
    groups: Mapping[str, pd.Series],
    candidate: Scored,
    baseline: Scored,
    *,
    positive_label: Any = None,
) -> list[Check]:
    """One check per column: no group of at least :data:`SMALL_SLICE` rows loses more than
    ``budget.max_loss`` of ``metric`` (in its own direction) against the baseline. Smaller groups
    are too noisy to judge and are named in the measurement instead."""
    label = metric_label(metric)
    bigger = METRICS[task][metric]

    def report(model: Scored) -> dict[tuple[str, str], tuple[int, float | None]]:
        found = slice_metrics(
            task,
            metric,
            (),
            y_true,
            model.predictions,
            model.proba,
            model.classes,
            groups,
            positive=positive_label,
        )
        return {(s.column, s.value): (s.rows, s.metrics.get(metric)) for s in found.slices}

    ours, theirs = report(candidate), report(baseline)
    checks = []
    for column in groups:
        losses, small, judged = [], [], 0
        for (where, value), (rows, score) in ours.items():
            if where != column:
                continue
            if rows < SMALL_SLICE:
                small.append(value)
                continue
            before = theirs.get((where, value), (rows, None))[1]
            if score is None or before is None:
                continue
            judged += 1
            loss = (before - score) if bigger else (score - before)
            if loss > budget.max_loss:
                losses.append(
                    f"{column}={value} ({rows} rows): {label} {score:.4f} against {before:.4f}, "
                    f"a loss of {loss:.4f}"
                )
        measured = f"{judged} groups of {column} judged"
        if small:
            measured += f"; too few rows to judge: {', '.join(small)}"
        checks.append(
            Check(
                f"slices: {column}",
                not losses,
                measured,
                f"groups of {column} lose more than {budget.max_loss:g} of {label} against "
                f"{baseline.ref}: " + "; ".join(losses),
            )
        )
    return checks
