"""What the monitoring pages read: the models that served traffic in a window with their health
and open alerts, and one model's monitoring pass (drift, live quality, performance with delayed
labels, health, alerts, a canary's comparison and a rollout's state).

The figures are the monitor's own (:class:`~mlship.monitor.measure.Monitor`,
:func:`~mlship.monitor.abtest.compare_variants`, :func:`~mlship.monitor.rollout.judge`), so a
page says what ``mlship monitor status``, ``monitor ab`` and ``rollout status`` say. Nothing here
writes: a rollout is judged, never moved, and no alert is evaluated.

The windows are a fixed choice (an hour, a day, a week): a page asked for another gets a 400
naming the ones it takes, not a monitoring pass over an arbitrary span of the logs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from mlship.errors import MlshipError
from mlship.monitor import predlog
from mlship.monitor.abtest import VARIANT_ROLES, AbResult, compare_variants
from mlship.monitor.health import REQUEST_ROLES, health_summary
from mlship.monitor.measure import Monitor, MonitorResult
from mlship.monitor.rollout import Judgement, judge
from mlship.monitor.traffic import log_sources, scan_log
from mlship.monitor.window import Window
from mlship.store.entities import Alert
from mlship.ui.charts import Chart
from mlship.workspace import Workspace

WINDOWS: dict[str, str] = {"1h": "the last hour", "1d": "the last day", "7d": "the last 7 days"}
DEFAULT_WINDOW = "1d"
PAGE_SIZE = 50
ALERTS_SHOWN = 100
"""The newest alerts a model's page lists (older ones: ``mlship monitor alerts``)."""

_LOG_COLUMNS = ["request_id", "at", "model", "version", "role", "latency_ms", "status"]


def parse_window(raw: str | None) -> str:
    """The window a page's ``window`` parameter names; anything else is a clear error."""
    window = raw or DEFAULT_WINDOW
    if window not in WINDOWS:
        raise MlshipError(f"window: expected one of {', '.join(WINDOWS)}, got {window[:40]!r}")
    return window


def parse_page(raw: str | None) -> int:
    text = raw or "1"
    if not text.isdigit() or len(text) > 9 or int(text) < 1:
        raise MlshipError(f"page: expected a page number from 1, got {text[:40]!r}")
    return int(text)


# -- the overview ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelHealth:
    """One line of the overview: a model that served requests in the window."""

    model: str
    versions: tuple[int, ...]
    requests: int
    error_rate: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    open_alerts: tuple[Alert, ...]
    """The newest alert of each rule that held in the window (fired or held back)."""

    @property
    def worst(self) -> str | None:
        """The highest severity among the open alerts."""
        ranks = {"info": 0, "warning": 1, "critical": 2}
        found = [alert.severity for alert in self.open_alerts]
        return max(found, key=lambda s: ranks.get(s, 0)) if found else None


@dataclass(frozen=True)
class Overview:
    window: str
    since: datetime
    rows: list[ModelHealth]
    total: int
    page: int
    pages: int
    quiet: list[str]
    """Registered models that served nothing in the window."""


def request_log(workspace: Workspace, since: datetime) -> pl.DataFrame:
    """One row per logged answer, refusal or failure of every model since ``since``: the
    columns health reads, read once for the whole page (each part opened once)."""
    sources = log_sources(workspace.logs, workspace.sealing, since)
    if not sources:
        return pl.DataFrame(
            schema={
                "request_id": pl.String(),
                "at": pl.Datetime("us", "UTC"),
                "model": pl.String(),
                "version": pl.Int64(),
                "role": pl.String(),
                "latency_ms": pl.Float64(),
                "status": pl.Int16(),
            }
        )
    lazy = scan_log(sources, workspace.sealing).select(["deployment", *_LOG_COLUMNS])
    lazy = lazy.filter(pl.col("at") >= since).filter(predlog.counted_once()).select(_LOG_COLUMNS)
    return lazy.with_columns(pl.col("status").fill_null(200).cast(pl.Int16)).collect()


def _open_alerts(alerts: list[Alert]) -> dict[str, tuple[Alert, ...]]:
    """Per model, the newest alert of each of its rules (``alerts`` come newest first)."""
    newest: dict[tuple[str, str], Alert] = {}
    for alert in alerts:
        newest.setdefault((alert.model, alert.rule), alert)
    by_model: dict[str, list[Alert]] = {}
    for (model, _rule), alert in newest.items():
        by_model.setdefault(model, []).append(alert)
    return {model: tuple(found) for model, found in by_model.items()}


def overview(workspace: Workspace, window: str, page: int, now: datetime | None = None) -> Overview:
    """The models that served requests in ``window`` (a key of :data:`WINDOWS`), one page."""
    at = now or datetime.now(UTC)
    span = timedelta(seconds=Window.parse(window).seconds or 0)
    since = at - span
    log = request_log(workspace, since)
    served = log.filter(pl.col("role").is_in(REQUEST_ROLES))
    names = sorted(served.get_column("model").unique().to_list())
    alerts = _open_alerts(workspace.alert_history.list(since=since, limit=10_000))
    pages = max(1, math.ceil(len(names) / PAGE_SIZE))
    shown = min(page, pages)
    rows = []
    for name in names[(shown - 1) * PAGE_SIZE : shown * PAGE_SIZE]:
        figures = health_summary(log, name, span, now=at)
        versions = served.filter(pl.col("model") == name).get_column("version").unique()
        rows.append(
            ModelHealth(
                model=name,
                versions=tuple(sorted(int(v) for v in versions)),
                requests=int(figures["health.requests"] or 0),
                error_rate=figures["health.error_rate"],
                latency_p50_ms=figures["health.latency_p50_ms"],
                latency_p99_ms=figures["health.latency_p99_ms"],
                open_alerts=alerts.get(name, ()),
            )
        )
    registered = [model.name for model in workspace.catalogue.list_models()]
    quiet = sorted(set(registered) - set(names))
    return Overview(window, since, rows, len(names), shown, pages, quiet)


# -- one model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelMonitoring:
    """Everything a model's monitoring page shows."""

    model: str
    window: str
    result: MonitorResult
    alerts: list[Alert]
    ab: AbResult | None
    ab_note: str | None
    """Why there is no comparison (one version answered, or what the comparison refused)."""
    rollout: Judgement | None
    rollout_note: str | None
    charts: dict[str, list[Chart]]
    """The charts of each section (``drift``, ``performance``, ``health``)."""

    @property
    def chart_options(self) -> list[dict[str, Any]]:
        """Every chart's options, in the order :attr:`numbered` numbers them."""
        return [chart.options for group in self.charts.values() for chart in group]

    @property
    def numbered(self) -> dict[str, list[tuple[int, Chart]]]:
        """Each section's charts with their index in :attr:`chart_options`."""
        found: dict[str, list[tuple[int, Chart]]] = {}
        index = 0
        for section, group in self.charts.items():
            found[section] = []
            for chart in group:
                found[section].append((index, chart))
                index += 1
        return found

    @property
    def main_metric(self) -> str | None:
        baseline = self.result.reference.baseline
        metric = self.result.reference.metric
        if metric is not None and metric in baseline:
            return metric
        return next(iter(baseline), None)

    @property
    def metric_names(self) -> list[str]:
        baseline = self.result.reference.baseline
        versions = self.result.performance.versions
        return list(baseline) or sorted({n for v in versions for n in v.metrics})


def model_monitoring(
    workspace: Workspace, model: str, window: str, now: datetime | None = None
) -> ModelMonitoring:
    """The monitoring pass of ``model`` over ``window`` and what goes with it."""
    at = now or datetime.now(UTC)
    span = Window.parse(window)
    result = Monitor(workspace).measure(model, span, now=at)
    since = at - timedelta(seconds=span.seconds or 0)
    alerts = workspace.alert_history.list(model=model, since=since, limit=ALERTS_SHOWN)
    ab, ab_note = _comparison(workspace, result, span, at)
    rollout, rollout_note = _rollout(workspace, model, at)
    return ModelMonitoring(
        model=model,
        window=window,
        result=result,
        alerts=alerts,
        ab=ab,
        ab_note=ab_note,
        rollout=rollout,
        rollout_note=rollout_note,
        charts=monitoring_charts(result),
    )


def _comparison(
    workspace: Workspace, result: MonitorResult, window: Window, at: datetime
) -> tuple[AbResult | None, str | None]:
    answered = result.traffic.frame.filter(pl.col("role").is_in(VARIANT_ROLES))
    versions = answered.get_column("version").unique().to_list()
    if len(versions) < 2:
        answered_by = "No version" if not versions else "Only one version"
        return None, f"{answered_by} answered in this window: there is no canary to compare."
    try:
        return compare_variants(workspace, result.model, window, now=at), None
    except MlshipError as exc:
        return None, f"The versions cannot be compared: {exc}"


def _rollout(workspace: Workspace, model: str, at: datetime) -> tuple[Judgement | None, str | None]:
    found = workspace.rollouts.current(model)
    if found is None:
        return None, None
    try:
        return judge(workspace, found, at), None
    except MlshipError as exc:
        return None, f"Rollout of {model}:{found.candidate} ({found.status}): {exc}"


# -- charts ----------------------------------------------------------------------------------

_DRIFTED, _STABLE = "#c0392b", "#3e6a99"


def _time_chart(series: list[dict[str, Any]], y: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "type": "scroll"},
        "grid": {"left": 64, "right": 64, "top": 48, "bottom": 40},
        "xAxis": {"type": "time"},
        "yAxis": y,
        "series": series,
    }


def drift_chart(result: MonitorResult) -> Chart | None:
    """The drift statistic of each feature (and of the predictions), drifted ones in red."""
    if result.drift is None:
        return None
    columns = list(result.drift.columns)
    if result.prediction_drift is not None:
        columns.append(result.prediction_drift)
    data = [
        {
            "value": column.statistic if math.isfinite(column.statistic) else None,
            "itemStyle": {"color": _DRIFTED if column.drifted else _STABLE},
        }
        for column in columns
    ]
    options = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 64, "right": 24, "top": 24, "bottom": 80},
        "xAxis": {
            "type": "category",
            "data": [f"{c.column} ({c.method})" for c in columns],
            "axisLabel": {"rotate": 30},
        },
        "yAxis": {"type": "value", "name": "statistic"},
        "series": [{"type": "bar", "name": "statistic", "data": data}],
    }
    drifted = sum(c.drifted for c in columns)
    return Chart(
        "Drift statistic per feature",
        f"{drifted} of {len(columns)} columns drifted (red); each column's method and threshold "
        "are in the table",
        options,
    )


def performance_chart(result: MonitorResult, metric: str | None) -> Chart | None:
    """The main metric per version over time (lines), and the labels that came back (bars)."""
    entries = [entry for entry in result.performance.versions if entry.series]
    if metric is None or not entries:
        return None
    series: list[dict[str, Any]] = []
    for entry in entries:
        name = f"{result.model}:{entry.version} ({entry.role})"
        series.append(
            {
                "name": f"{name} {metric}",
                "type": "line",
                "symbolSize": 7,
                "data": [[b["start"], _finite(b.get(metric))] for b in entry.series],
            }
        )
        series.append(
            {
                "name": f"{name} labels",
                "type": "bar",
                "yAxisIndex": 1,
                "barMaxWidth": 18,
                "itemStyle": {"opacity": 0.35},
                "data": [[b["start"], b["labelled"]] for b in entry.series],
            }
        )
    baseline = result.reference.baseline.get(metric)
    if baseline is not None and series:
        series[0]["markLine"] = {
            "symbol": "none",
            "label": {"formatter": f"test set {baseline:.4g}"},
            "data": [{"yAxis": baseline}],
        }
    y: list[dict[str, Any]] = [
        {"type": "value", "name": metric, "scale": True},
        {"type": "value", "name": "labels", "splitLine": {"show": False}},
    ]
    labelled = sum(entry.labelled for entry in result.performance.versions)
    answered = sum(entry.predictions for entry in result.performance.versions)
    return Chart(
        f"{metric} on labelled traffic over time",
        f"one line per version, the labels received per bucket as bars ({labelled} of "
        f"{answered} predictions labelled)",
        _time_chart(series, y),
    )


def health_charts(result: MonitorResult) -> list[Chart]:
    """Latency percentiles, and requests with the error rate, per version over time."""
    rows = (result.health or {}).get("series") or []
    if not rows:
        return []
    versions = sorted({row["version"] for row in rows})
    latency: list[dict[str, Any]] = []
    traffic: list[dict[str, Any]] = []
    for version in versions:
        mine = [row for row in rows if row["version"] == version]
        for key, label in (("latency_p50_ms", "p50"), ("latency_p99_ms", "p99")):
            latency.append(
                {
                    "name": f"version {version} {label}",
                    "type": "line",
                    "symbolSize": 6,
                    "data": [[r["start"], _finite(r.get(key))] for r in mine],
                }
            )
        traffic.append(
            {
                "name": f"version {version} requests",
                "type": "bar",
                "barMaxWidth": 18,
                "data": [[r["start"], r.get("requests")] for r in mine],
            }
        )
        traffic.append(
            {
                "name": f"version {version} error rate",
                "type": "line",
                "yAxisIndex": 1,
                "symbolSize": 6,
                "data": [[r["start"], _finite(r.get("error_rate"))] for r in mine],
            }
        )
    every = (result.health or {}).get("every", "1m")
    return [
        Chart(
            "Latency p50 and p99 (ms)",
            f"per version, in buckets of {every}, over successful requests",
            _time_chart(latency, [{"type": "value", "name": "ms", "min": 0}]),
        ),
        Chart(
            "Requests and error rate",
            f"requests per bucket of {every} (bars) and the share refused or failed (lines)",
            _time_chart(
                traffic,
                [
                    {"type": "value", "name": "requests", "min": 0},
                    {"type": "value", "name": "error rate", "min": 0, "max": 1},
                ],
            ),
        ),
    ]


def monitoring_charts(result: MonitorResult) -> dict[str, list[Chart]]:
    metric = result.reference.metric
    if metric is None or metric not in result.reference.baseline:
        metric = next(iter(result.reference.baseline), None)
    drift, performance = drift_chart(result), performance_chart(result, metric)
    return {
        "drift": [drift] if drift is not None else [],
        "performance": [performance] if performance is not None else [],
        "health": health_charts(result),
    }


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
