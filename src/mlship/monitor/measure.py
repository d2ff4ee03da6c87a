"""One monitoring pass over a model: its traffic in a window against its reference.

:class:`Monitor` reads the window's traffic from the prediction logs, picks the version to judge
(the one that answered most of the window: with a canary, the stable version; after a swap, the
new one), loads that version's reference once per process, and computes drift, live data quality,
performance against delayed labels and operational health. :meth:`MonitorResult.metrics` flattens
the figures into the names alert rules use (``drift.share``, ``quality.missing_rate``,
``performance.accuracy.drop``, ``health.latency_p99_ms``, ...); a figure that cannot be computed
(no traffic, no labels yet) is None, which rules read as "no data" rather than as zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from mlship.costs.ledger import UsageRecord
from mlship.costs.measured import measured_record
from mlship.monitor.drift import DatasetDrift, Method, dataset_drift
from mlship.monitor.feedback import feedback_log, read_labels
from mlship.monitor.health import (
    METRICS,
    REQUEST_ROLES,
    flag_anomalies,
    health_series,
    health_summary,
)
from mlship.monitor.performance import Performance, performance
from mlship.monitor.quality import Quality, live_quality
from mlship.monitor.reference import Reference, load_reference
from mlship.monitor.traffic import PREDICTION, Traffic, read_request_log, read_traffic
from mlship.monitor.window import Window
from mlship.store.context import (
    HasArtifacts,
    HasCatalogue,
    HasDatasets,
    HasLogs,
    HasRegistry,
    HasRuns,
    HasSealing,
)
from mlship.store.parts import Sealing
from mlship.train.cost import measure as measure_usage
from mlship.train.model_io import LoadsModels
from mlship.train.signature import Signature

if TYPE_CHECKING:
    from mlship.store.logstore import LogStore


class MeasureStores(
    HasCatalogue,
    HasRegistry,
    HasLogs,
    HasSealing,
    HasDatasets,
    HasRuns,
    HasArtifacts,
    LoadsModels,
    Protocol,
):
    """What a monitoring pass reads: the versions, their stages, the prediction logs and labels,
    and what the reference is made of (:class:`~mlship.monitor.reference.ReferenceStores`)."""


MIN_DRIFT_ROWS = 30
"""Fewer live rows than this say too little about a distribution to call drift either way."""


@dataclass(frozen=True)
class MonitorResult:
    model: str
    version: int
    window: Window
    at: datetime
    rows: int
    requests: int
    reference: Reference
    drift: DatasetDrift | None
    prediction_drift: Any | None
    quality: Quality
    performance: Performance
    traffic: Traffic
    health: dict[str, Any] | None = None
    """``summary`` (the ``health.*`` figures), ``series`` per version and time bucket, and
    ``anomalies``; None without served requests."""

    def metrics(self) -> dict[str, float | None]:
        """Every figure under the name alert rules use (None: not computable in this window)."""
        figures: dict[str, float | None] = {"traffic.rows": float(self.rows)}
        if self.drift is None:
            figures |= {"drift.share": None, "drift.drifted_columns": None, "drift.dataset": None}
        else:
            figures |= {
                "drift.share": self.drift.share,
                "drift.drifted_columns": float(len(self.drift.drifted_columns)),
                "drift.dataset": float(self.drift.drifted),
            }
            for column in self.drift.columns:
                figures[f"drift.column.{column.column}"] = float(column.drifted)
        figures["drift.prediction"] = (
            None if self.prediction_drift is None else float(self.prediction_drift.drifted)
        )
        figures |= self.quality.metrics()
        figures |= self.performance.metrics()
        figures |= (self.health or {}).get("summary") or dict.fromkeys(HEALTH_KEYS)
        return figures

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "window": self.window.label,
            "at": self.at.isoformat(),
            "rows": self.rows,
            "requests": self.requests,
            "reference": {
                "version": self.reference.version,
                "dataset": self.reference.dataset_hash,
                "rows": self.reference.rows,
                "compared_rows": self.reference.frame.height,
            },
            "drift": None if self.drift is None else self.drift.to_dict(),
            "prediction_drift": (
                None if self.prediction_drift is None else self.prediction_drift.to_dict()
            ),
            "quality": self.quality.to_dict(),
            "performance": self.performance.to_dict(),
            "metrics": self.metrics(),
        }


HEALTH_KEYS = tuple(f"health.{name}" for name in (*METRICS, "anomalies"))

HISTORY_BUCKETS = 30
"""Buckets of history before the window that the anomaly detector learns its level from."""


def _window_start(traffic: Traffic, window: Window, now: datetime) -> datetime | None:
    """Where the window begins in time: its duration back from now, or its oldest row."""
    if window.seconds is not None:
        return now - timedelta(seconds=window.seconds)
    if traffic.frame.is_empty():
        return None
    oldest: datetime = traffic.frame.get_column("at").min()  # type: ignore[assignment]
    return oldest


def _bucket_seconds(every: str) -> float:
    return dict(BUCKETS).get(every, 60)


def _history_start(traffic: Traffic, window: Window, now: datetime, every: str) -> datetime | None:
    start = _window_start(traffic, window, now)
    if start is None:
        return None
    return start - timedelta(seconds=HISTORY_BUCKETS * _bucket_seconds(every))


def _refused(log: pl.DataFrame, traffic: Traffic, window: Window, now: datetime) -> int:
    """Requests refused for invalid input (4xx) in the window."""
    start = _window_start(traffic, window, now)
    if start is None:
        return 0
    refused = log.filter(
        (pl.col("role") == "error") & (pl.col("status") < 500) & (pl.col("at") >= start)
    )
    return refused.select("request_id").n_unique()


def _health(
    log: pl.DataFrame, model: str, window: Window, traffic: Traffic, now: datetime, every: str
) -> dict[str, Any] | None:
    """The ``health.*`` figures of the window, and its series per version with anomalies."""
    start = _window_start(traffic, window, now)
    if start is None or log.filter(pl.col("role").is_in(REQUEST_ROLES)).is_empty():
        return None
    summary = health_summary(log, model, now - start, now=now, every=every)
    # Up to the newest request: the last bucket may still be filling (anomalies are judged by
    # health_summary on finished buckets only).
    series = flag_anomalies(health_series(log, model=model, every=every))
    flags = [column for column in series.columns if column.endswith("_anomaly")]
    rows = []
    found = []
    for row in series.filter(
        pl.col("at") >= start - timedelta(seconds=_bucket_seconds(every))
    ).iter_rows(named=True):
        entry = {key: value for key, value in row.items() if key not in ("model", "at")}
        entry["start"] = row["at"].isoformat()
        rows.append(entry)
        for flag in flags:
            if row[flag]:
                metric = flag.removesuffix("_anomaly")
                found.append(
                    {"start": entry["start"], "version": row["version"], "metric": metric,
                     "value": row[metric]}
                )  # fmt: skip
    return {"summary": summary, "every": every, "series": rows, "anomalies": found}


BUCKETS = (
    ("10s", 10), ("30s", 30), ("1m", 60), ("5m", 300), ("15m", 900), ("30m", 1800),
    ("1h", 3600), ("3h", 10800), ("6h", 21600), ("12h", 43200), ("1d", 86400),
)  # fmt: skip


def bucket_size(times: pl.Series, buckets: int = 12) -> str:
    """The shortest of :data:`BUCKETS` that splits the span of ``times`` into at most about
    ``buckets`` points: series over minutes get 10-second points, over weeks daily ones."""
    if times.len() < 2:
        return "1m"
    span = (times.max() - times.min()).total_seconds()  # type: ignore[operator, union-attr]
    for name, seconds in BUCKETS:
        if span / seconds <= buckets:
            return name
    return BUCKETS[-1][0]


class Monitor:
    """Monitoring passes over a workspace's models; references are loaded once and kept."""

    def __init__(
        self,
        workspace: MeasureStores,
        *,
        methods: Mapping[str, Method] | None = None,
        thresholds: Mapping[str, float] | None = None,
        drift_share: float = 0.5,
        every: str | None = None,
        reference: str | None = None,
    ) -> None:
        self.workspace = workspace
        self.methods = dict(methods or {})
        self.thresholds = dict(thresholds or {})
        self.drift_share = drift_share
        self.every = every
        self.reference_dataset = reference
        """A dataset reference (hash prefix, ``PIPELINE~N``) to compare with instead of each
        version's training data."""
        self._references: dict[tuple[str, int], Reference] = {}
        self.used: list[UsageRecord] = []
        """What each :meth:`measure` used, for the usage ledger; the caller writes and clears
        it (a pass writes one part, not one per model)."""

    @property
    def logs(self) -> LogStore:
        """Where the prediction logs and labels of every replica are (``store/logstore.py``)."""
        return self.workspace.logs

    @property
    def sealing(self) -> Sealing:
        """How the logs in :attr:`logs` are encrypted (see ``store/parts.py``)."""
        return self.workspace.sealing

    def reference(self, model: str, version: int) -> Reference:
        key = (model, version)
        if key not in self._references:
            found = self.workspace.catalogue.get_version(model, version)
            self._references[key] = load_reference(
                self.workspace, found, dataset=self.reference_dataset
            )
        return self._references[key]

    def _judged(self, model: str, window: Window, now: datetime) -> tuple[int, Traffic]:
        """The version answering most of the window (else production, else the newest) and the
        window's traffic decoded with its signature.

        The window is read with the newest version's signature first (from the registry: no
        reference is loaded for it); it is read again only when another version with other
        inputs turns out to be the judged one.
        """
        from mlship.errors import NotFoundError

        newest = self.workspace.catalogue.get_version(model)
        traffic = read_traffic(self.logs, model, Signature.from_dict(newest.signature),
                               window=window, now=now, sealing=self.sealing)  # fmt: skip
        version = traffic.primary_version()
        if version is None:
            try:
                version = self.workspace.registry.in_stage(model, "production").version
            except NotFoundError:
                version = newest.version
        if version != newest.version:
            judged = self.workspace.catalogue.get_version(model, version)
            if judged.signature != newest.signature:
                signature = Signature.from_dict(judged.signature)
                traffic = read_traffic(
                    self.logs, model, signature, window=window, now=now, sealing=self.sealing
                )
        return version, traffic

    def measure(self, model: str, window: Window, *, now: datetime | None = None) -> MonitorResult:
        """Drift, quality, performance and health of ``model``'s traffic in ``window``; what
        it took is added to :attr:`used`."""
        began = datetime.now(UTC)
        with measure_usage() as used:
            result = self._measure(model, window, now)
        ended = datetime.now(UTC)
        stage = self.workspace.catalogue.get_version(model, result.version).stage
        record = measured_record(
            "monitoring", used.usage, began, ended, model=model, version=result.version, stage=stage
        )
        self.used.append(record)
        return result

    def _measure(self, model: str, window: Window, now: datetime | None) -> MonitorResult:
        at = now or datetime.now(UTC)
        version, traffic = self._judged(model, window, at)
        reference = self.reference(model, version)
        live = traffic.inputs
        requests = traffic.answered.select("request_id").n_unique()
        drift = prediction = None
        if live.height >= MIN_DRIFT_ROWS:
            # A column no live record has a value for (clients that never send an optional
            # one) has nothing to compare: the quality section flags it as missing, and the
            # drift of the others is still judged.
            features = [
                c.name
                for c in reference.signature.inputs
                if c.type != "datetime"
                and c.name in reference.frame.columns
                and c.name in live.columns
                and live.get_column(c.name).drop_nulls().len() > 0
            ]
            drift = dataset_drift(
                reference.frame,
                live,
                columns=features,
                methods={k: v for k, v in self.methods.items() if k in features},
                thresholds={k: v for k, v in self.thresholds.items() if k in features},
                drift_share=self.drift_share,
            )
            if live.get_column(PREDICTION).drop_nulls().len():
                prediction = dataset_drift(
                    reference.frame.select(PREDICTION),
                    live.select(PREDICTION),
                    columns=[PREDICTION],
                ).columns[0]
        labels = read_labels(feedback_log(self.logs), self.sealing)
        every = self.every or bucket_size(traffic.frame.get_column("at"))
        requests_log = read_request_log(
            self.logs, model, since=_history_start(traffic, window, at, every), sealing=self.sealing
        )
        health = _health(requests_log, model, window, traffic, at, every)
        refused = _refused(requests_log, traffic, window, at)
        return MonitorResult(
            model=model,
            version=version,
            window=window,
            at=at,
            rows=live.height,
            requests=requests,
            reference=reference,
            drift=drift,
            prediction_drift=prediction,
            quality=live_quality(live, reference, requests=requests, refused=refused),
            performance=performance(traffic, labels, reference.baseline, every=every),
            traffic=traffic,
            health=health,
        )
