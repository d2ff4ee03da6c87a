"""How good the answers were, once their true labels arrived.

Labels (:mod:`mlship.monitor.feedback`) are joined to the logged predictions by request id and
record index, then every metric of the task is computed (the same functions as training uses, so
live accuracy and test-set accuracy mean the same thing) per model version and role (a shadow
version is judged on the same requests as the version that answered them), over the whole window
and per time bucket.

**Degradation** is the live figure against the version's test-set figure, signed so that a
positive number is always worse: ``baseline - live`` for metrics where larger is better
(accuracy, F1, ROC-AUC, R²), ``live - baseline`` for errors (log loss, RMSE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from mlship.monitor.traffic import ANSWERED, PREDICTION, Traffic, prediction_dtype
from mlship.train.metrics import compute_metrics, greater_is_better

MIN_LABELS = 1


@dataclass(frozen=True)
class VersionPerformance:
    version: int
    role: str
    predictions: int
    labelled: int
    metrics: dict[str, float]
    degradation: dict[str, float]
    """Positive is worse; only metrics the baseline has."""
    series: list[dict[str, Any]] = field(default_factory=list)
    """One entry per time bucket: ``start``, ``labelled`` and the metrics."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "role": self.role,
            "predictions": self.predictions,
            "labelled": self.labelled,
            "label_share": self.labelled / self.predictions if self.predictions else None,
            "metrics": self.metrics,
            "degradation": self.degradation,
            "series": self.series,
        }


@dataclass(frozen=True)
class Performance:
    versions: tuple[VersionPerformance, ...]
    baseline: dict[str, float]
    primary: int | None

    def of(self, version: int | None, role: str | None = None) -> VersionPerformance | None:
        for entry in self.versions:
            if entry.version == version and (role is None or entry.role == role):
                return entry
        return None

    def metrics(self) -> dict[str, float | None]:
        """``performance.*`` of the primary version's answered traffic."""
        answered = [v for v in self.versions if v.version == self.primary and v.role in ANSWERED]
        labelled = sum(v.labelled for v in answered)
        predictions = sum(v.predictions for v in answered)
        figures: dict[str, float | None] = {
            "performance.labelled": float(labelled),
            "performance.label_share": labelled / predictions if predictions else None,
        }
        main = max(answered, key=lambda v: v.labelled, default=None)
        names = set(self.baseline) | (set(main.metrics) if main else set())
        for name in sorted(names):
            has = main is not None and main.labelled >= MIN_LABELS
            figures[f"performance.{name}"] = main.metrics.get(name) if has and main else None
            figures[f"performance.{name}.drop"] = (
                main.degradation.get(name) if has and main else None
            )
        return figures

    def to_dict(self) -> dict[str, Any]:
        return {
            "primary_version": self.primary,
            "baseline": self.baseline,
            "versions": [v.to_dict() for v in self.versions],
        }


def _arrays(frame: pl.DataFrame, traffic: Traffic) -> tuple[Any, Any, Any]:
    signature = traffic.signature
    y_true = frame.get_column("label").to_numpy()
    y_pred = frame.get_column(PREDICTION).to_numpy()
    proba = None
    names = [f"proba:{c}" for c in signature.classes or []]
    if names and all(name in frame.columns for name in names):
        values = frame.select(names).to_numpy()
        if not np.isnan(values).any():
            proba = values
    return y_true, y_pred, proba


def _scores(frame: pl.DataFrame, traffic: Traffic) -> dict[str, float]:
    if frame.is_empty():
        return {}
    signature = traffic.signature
    y_true, y_pred, proba = _arrays(frame, traffic)
    try:
        return compute_metrics(
            signature.task, y_true, y_pred, proba, signature.classes, signature.target.positive
        )
    except ValueError:  # e.g. one label only: the metrics that can be computed are those above
        return {}


def _degradation(task: str, live: dict[str, float], baseline: dict[str, float]) -> dict[str, float]:
    drops = {}
    for name, value in live.items():
        if name in baseline:
            better_up = greater_is_better(task, name)  # type: ignore[arg-type]
            drops[name] = baseline[name] - value if better_up else value - baseline[name]
    return drops


def performance(
    traffic: Traffic,
    labels: pl.DataFrame,
    baseline: dict[str, float],
    *,
    every: str = "1h",
) -> Performance:
    """Join ``labels`` (see :func:`~mlship.monitor.feedback.read_labels`) to ``traffic`` and
    score each version and role, over the window and per ``every`` bucket."""
    signature = traffic.signature
    decoded = labels.with_columns(
        pl.col("label").str.json_decode(prediction_dtype(signature))
    ).select("request_id", "row", "label")
    joined = traffic.frame.join(decoded, on=["request_id", "row"], how="left")
    results = []
    for (version, role), group in sorted(
        joined.partition_by(["version", "role"], as_dict=True).items()
    ):
        labelled = group.filter(pl.col("label").is_not_null())
        metrics = _scores(labelled, traffic)
        buckets = labelled.with_columns(pl.col("at").dt.truncate(every).alias("_bucket"))
        series = [
            {"start": _iso(start), "labelled": frame.height, **_scores(frame, traffic)}
            for (start,), frame in buckets.partition_by("_bucket", as_dict=True).items()
        ]
        results.append(
            VersionPerformance(
                version=int(version),
                role=str(role),
                predictions=group.height,
                labelled=labelled.height,
                metrics=metrics,
                degradation=_degradation(signature.task, metrics, baseline),
                series=sorted(series, key=lambda s: s["start"]),
            )
        )
    return Performance(
        versions=tuple(results),
        baseline=baseline,
        primary=traffic.primary_version(),
    )


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
