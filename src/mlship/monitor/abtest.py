"""The variants of a canary or A/B deployment compared on their labelled traffic.

A deployment that routes a model's requests to several versions logs which version answered each
one (:mod:`mlship.monitor.traffic`); the true labels sent back later
(:mod:`mlship.monitor.feedback`) say which answers were right. This module joins the two and
compares each other version (a *treatment*) with the *control*: the version in production when
it answered in the window, else the one that answered most.

The metric is per record, so that every labelled record is one more observation of its variant:
accuracy (an answer is right or wrong) for classifiers, mean absolute error for regressors. Each
comparison runs the always-valid test of :mod:`mlship.monitor.sequential` over the records of the
two variants in the order they were answered, so the p-value and interval can be read at any time
while the canary runs. Latency and error rates per variant come from the request log
(:func:`mlship.monitor.health.health_summary`), counted in requests as the health figures are.

Only answers a server gave (role ``route``) or a stream runner scored (``stream``) count: shadows
saw every request and batch scoring is not part of the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import polars as pl

from mlship.errors import DataError, NotFoundError
from mlship.monitor import predlog
from mlship.monitor.feedback import feedback_log, read_labels
from mlship.monitor.health import health_summary
from mlship.monitor.sequential import SequentialTest, sequential_test
from mlship.monitor.traffic import (
    PREDICTION,
    Traffic,
    prediction_dtype,
    read_request_log,
    read_traffic,
)
from mlship.monitor.window import Window
from mlship.store.context import HasCatalogue, HasLogs, HasSealing
from mlship.train.signature import Signature

VARIANT_ROLES = ("route", predlog.STREAM_ROLE)
"""Roles of rows that took part in the split."""

DEFAULT_TAU = {"accuracy": 0.05}
"""The difference worth finding when none is given: 5 points of accuracy."""

RELATIVE_TAU = 0.1
"""For an error in the target's units, the difference worth finding is this share of the
control's test-set error (known before the canary's traffic is seen, as the test requires)."""

HEALTH = ("requests", "error_rate", "latency_p50_ms", "latency_p99_ms")


class AbStores(HasCatalogue, HasLogs, HasSealing, Protocol):
    """What a comparison reads: the versions and the prediction and label logs."""


@dataclass(frozen=True)
class Variant:
    version: int
    stage: str
    answered: int
    """Records this version answered in the window."""
    labelled: int
    metric: float | None
    """The metric on the labelled records (None without any)."""
    health: dict[str, float | None]
    """``requests``, ``error_rate``, ``latency_p50_ms``, ``latency_p99_ms`` in the window."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "stage": self.stage,
            "answered": self.answered,
            "labelled": self.labelled,
            "metric": self.metric,
            "health": self.health,
        }


@dataclass(frozen=True)
class Comparison:
    control: int
    treatment: int
    test: SequentialTest
    greater_is_better: bool

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` (the treatment, significantly) or ``undecided``."""
        if not self.test.significant or self.test.difference is None:
            return "undecided"
        up = self.test.difference > 0
        return "better" if up == self.greater_is_better else "worse"

    def to_dict(self) -> dict[str, Any]:
        return {
            "control": self.control,
            "treatment": self.treatment,
            "verdict": self.verdict,
            **self.test.to_dict(),
        }


@dataclass(frozen=True)
class AbResult:
    model: str
    window: Window
    at: datetime
    metric: str
    greater_is_better: bool
    control: int | None
    variants: tuple[Variant, ...]
    comparisons: tuple[Comparison, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "window": self.window.label,
            "at": self.at.isoformat(),
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "control": self.control,
            "variants": [v.to_dict() for v in self.variants],
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


def _outcomes(traffic: Traffic, labels: pl.DataFrame) -> pl.DataFrame:
    """The window's answered records with their label and per-record outcome (null unlabelled),
    in the order they were answered."""
    signature = traffic.signature
    decoded = labels.with_columns(
        pl.col("label").str.json_decode(prediction_dtype(signature))
    ).select("request_id", "row", "label")
    answered = traffic.frame.filter(pl.col("role").is_in(VARIANT_ROLES))
    joined = answered.select("request_id", "row", "at", "version", PREDICTION).join(
        decoded, on=["request_id", "row"], how="left", maintain_order="left"
    )
    if signature.task == "regression":
        outcome = (pl.col("label") - pl.col(PREDICTION)).abs()
    else:
        outcome = (pl.col("label") == pl.col(PREDICTION)).cast(pl.Float64)
    return joined.with_columns(
        pl.when(pl.col("label").is_not_null()).then(outcome).otherwise(None).alias("outcome")
    )


def _control(versions: list[int], answered: pl.DataFrame, stages: dict[int, str]) -> int:
    production = [v for v in versions if stages.get(v) == "production"]
    if production:
        return production[0]
    counts = answered.group_by("version").len().sort(["len", "version"], descending=True)
    return int(counts.get_column("version")[0])


def _tau(metric: str, control_metrics: dict[str, Any], given: float | None) -> float:
    if given is not None:
        if not given > 0:
            raise DataError(f"--effect: expected a positive difference in {metric}, got {given}")
        return given
    if metric in DEFAULT_TAU:
        return DEFAULT_TAU[metric]
    baseline = (control_metrics.get("holdout") or {}).get(metric)
    if isinstance(baseline, (int, float)) and baseline > 0:
        return RELATIVE_TAU * float(baseline)
    raise DataError(
        f"the control has no test-set {metric} to size the difference worth finding: "
        f"give one with --effect (in the target's units)"
    )


def compare_variants(
    workspace: AbStores,
    model: str,
    window: Window,
    *,
    alpha: float = 0.05,
    effect: float | None = None,
    control: int | None = None,
    now: datetime | None = None,
) -> AbResult:
    """Each variant of ``model`` that answered in ``window`` and each treatment against the
    control (``control``, or see the module docstring)."""
    if not 0 < alpha < 1:
        raise DataError(f"--alpha: expected a level between 0 and 1, got {alpha}")
    at = now or datetime.now(UTC)
    newest = workspace.catalogue.get_version(model)
    signature = Signature.from_dict(newest.signature)
    traffic = read_traffic(
        workspace.logs, model, signature, window=window, now=at, sealing=workspace.sealing
    )
    answered = traffic.frame.filter(pl.col("role").is_in(VARIANT_ROLES))
    versions = sorted(int(v) for v in answered.get_column("version").unique())
    metric = "mae" if signature.task == "regression" else "accuracy"
    greater = signature.task != "regression"
    if control is not None and control not in versions:
        found = ", ".join(f"{model}:{v}" for v in versions) or "none"
        raise NotFoundError(
            f"--control: {model}:{control} answered no request in the {window.label} "
            f"(versions that did: {found})"
        )
    if not versions:
        return AbResult(model, window, at, metric, greater, None, (), ())
    records = {v: workspace.catalogue.get_version(model, v) for v in versions}
    chosen = control if control is not None else _control(
        versions, answered, {v: r.stage for v, r in records.items()}
    )  # fmt: skip
    if records[chosen].signature != newest.signature:
        signature = Signature.from_dict(records[chosen].signature)
        traffic = read_traffic(
            workspace.logs, model, signature, window=window, now=at, sealing=workspace.sealing
        )
    labels = read_labels(feedback_log(workspace.logs), workspace.sealing)
    outcomes = _outcomes(traffic, labels)
    health = _health(workspace, model, window, traffic, at, versions)
    variants = []
    for version in versions:
        rows = outcomes.filter(pl.col("version") == version)
        labelled = rows.get_column("outcome").drop_nulls()
        variants.append(
            Variant(
                version=version,
                stage=records[version].stage,
                answered=rows.height,
                labelled=labelled.len(),
                metric=float(labelled.mean()) if labelled.len() else None,  # type: ignore[arg-type]
                health=health[version],
            )
        )
    tau = _tau(metric, records[chosen].metrics or {}, effect)
    comparisons = []
    labelled_rows = outcomes.filter(pl.col("outcome").is_not_null())
    for version in versions:
        if version == chosen:
            continue
        pair = labelled_rows.filter(pl.col("version").is_in([chosen, version]))
        arms = (pair.get_column("version") == version).to_numpy()
        values = pair.get_column("outcome").to_numpy().astype(np.float64)
        test = sequential_test(arms, values, tau=tau, alpha=alpha)
        comparisons.append(Comparison(chosen, version, test, greater))
    return AbResult(model, window, at, metric, greater, chosen, tuple(variants), tuple(comparisons))


def _health(
    workspace: AbStores,
    model: str,
    window: Window,
    traffic: Traffic,
    at: datetime,
    versions: list[int],
) -> dict[int, dict[str, float | None]]:
    """Requests, error rate and latency of each version over the window (a window of rows spans
    from its oldest row)."""
    if window.seconds is not None:
        start = at - timedelta(seconds=window.seconds)
    else:
        oldest: datetime = traffic.frame.get_column("at").min()  # type: ignore[assignment]
        start = oldest
    log = read_request_log(workspace.logs, model, since=start, sealing=workspace.sealing)
    span = max(at - start, timedelta(milliseconds=1))
    figures = {}
    for version in versions:
        summary = health_summary(log, model, span, version=version, now=at)
        figures[version] = {name: summary.get(f"health.{name}") for name in HEALTH}
    return figures
