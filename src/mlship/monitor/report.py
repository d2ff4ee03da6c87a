"""``mlship monitor report MODEL``: one self-contained HTML page (and its JSON) about a model in
production: drift per feature with the reference and current distributions side by side, the
quality of live inputs, performance over time against the test set, operational health with its
anomalies, and the alert history.

Like every mlship report it is a single file with inline CSS and SVG, no script and nothing to
fetch, so it opens offline from a CI artifact or a mail attachment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mlship.html.page import (
    document,
    esc,
    fmt_number,
    fmt_share,
    fmt_time,
    table,
    tag,
    write_report_pair,
)
from mlship.html.svg import Axis, Series, guide, line_chart, paired_histogram, placeholder
from mlship.monitor.history import deliveries_text
from mlship.monitor.measure import MonitorResult
from mlship.monitor.traffic import PREDICTION

BINS = 20
TOP_CATEGORIES = 12


# -- distributions ---------------------------------------------------------------------------


def _numeric_distribution(reference: pl.Series, current: pl.Series) -> dict[str, Any]:
    ref = reference.cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
    cur = current.cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if not ref.size or not cur.size:
        return {"kind": "numeric", "bins": [], "reference": [], "current": []}
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=BINS)
    ref_counts = np.histogram(ref, edges)[0]
    cur_counts = np.histogram(cur, edges)[0]
    labels = [f"{fmt_number(float(a))} to {fmt_number(float(b))}" for a, b in pairwise(edges)]
    return {
        "kind": "numeric",
        "bins": labels,
        "edges": [float(e) for e in edges],
        "reference": (ref_counts / ref.size).tolist(),
        "current": (cur_counts / cur.size).tolist(),
    }


def _categorical_distribution(reference: pl.Series, current: pl.Series) -> dict[str, Any]:
    ref = reference.cast(pl.String).drop_nulls()
    cur = current.cast(pl.String).drop_nulls()
    ref_counts = dict(ref.value_counts().iter_rows())
    cur_counts = dict(cur.value_counts().iter_rows())
    # The reference's most common categories in order, then categories only current traffic has.
    ordered = sorted(ref_counts, key=lambda k: (-ref_counts[k], k))
    ordered += sorted(k for k in cur_counts if k not in ref_counts)
    shown = ordered[:TOP_CATEGORIES]
    rest = ordered[TOP_CATEGORIES:]

    def shares(counts: dict[str, int], total: int) -> list[float]:
        values = [counts.get(k, 0) / total if total else 0.0 for k in shown]
        if rest:
            values.append(sum(counts.get(k, 0) for k in rest) / total if total else 0.0)
        return values

    return {
        "kind": "categorical",
        "bins": shown + ([f"({len(rest)} others)"] if rest else []),
        "reference": shares(ref_counts, ref.len()),
        "current": shares(cur_counts, cur.len()),
    }


def distribution(reference: pl.Series, current: pl.Series) -> dict[str, Any]:
    """Reference and current shares over the same bins (numbers) or categories."""
    if reference.dtype.is_numeric() and reference.dtype != pl.Boolean:
        return _numeric_distribution(reference, current)
    return _categorical_distribution(reference, current)


def distributions(result: MonitorResult) -> dict[str, dict[str, Any]]:
    columns = [c.column for c in result.drift.columns] if result.drift else []
    if result.prediction_drift is not None:
        columns.append(PREDICTION)
    live = result.traffic.inputs
    reference = result.reference.frame
    return {
        name: distribution(reference.get_column(name), live.get_column(name)) for name in columns
    }


# -- sections --------------------------------------------------------------------------------


def _tile(label: str, value: str, css: str = "tile") -> str:
    return tag("div", tag("div", esc(label), "label") + tag("div", esc(value), "big"), css)


def _pill(text: str, kind: str) -> str:
    return tag("span", esc(text), f"pill {kind}")


def _main_metric(result: MonitorResult) -> str | None:
    metric = result.reference.metric
    if metric is not None and metric in result.reference.baseline:
        return metric
    return next(iter(result.reference.baseline), None)


def _header(result: MonitorResult, health: dict[str, Any] | None, fired: int) -> str:
    drift = result.drift
    problems = (drift is not None and drift.drifted) or fired > 0
    warnings = bool(drift and drift.drifted_columns) or any(
        c.issues for c in result.quality.columns
    )
    badge = "fail" if problems else "warn" if warnings else "pass"
    word = {"fail": "attention", "warn": "watch", "pass": "healthy"}[badge]
    figures = result.metrics()
    main = _main_metric(result)
    tiles = [
        _tile("rows judged", fmt_number(result.rows)),
        _tile("requests", fmt_number(result.requests)),
        _tile(
            "drifted columns",
            "\u2014" if drift is None else f"{len(drift.drifted_columns)} of {len(drift.columns)}",
        ),
        _tile(
            "prediction drift",
            "\u2014"
            if result.prediction_drift is None
            else ("yes" if result.prediction_drift.drifted else "no"),
        ),
        _tile("refused requests", fmt_share(figures.get("quality.schema_violation_rate"))),
        _tile("labelled", fmt_share(figures.get("performance.label_share"))),
    ]
    if main is not None:
        live = figures.get(f"performance.{main}")
        tiles.append(
            _tile(
                f"{main}: live / test",
                f"{fmt_number(live)} / {fmt_number(result.reference.baseline[main])}",
                "tile wide",
            )
        )
    if health:
        tiles.append(_tile("latency p99", f"{fmt_number(health.get('health.latency_p99_ms'))} ms"))
        tiles.append(_tile("error rate", fmt_share(health.get("health.error_rate"))))
    title = tag(
        "div",
        tag("h1", esc(f"Monitoring: {result.model}:{result.version}"))
        + tag("span", esc(word), f"badge {badge}"),
        "title-row",
    )
    facts = (
        f"{esc(result.window.label)} of live traffic up to {esc(fmt_time(result.at.isoformat()))}, "
        f"against training dataset <code>{esc(result.reference.dataset_hash[:12])}</code> "
        f"({fmt_number(result.reference.rows)} rows)"
    )
    return title + tag("p", facts, "muted") + tag("div", "".join(tiles), "tiles")


def _drift_section(result: MonitorResult, dists: dict[str, dict[str, Any]]) -> str:
    if result.drift is None:
        return tag("h2", "Drift") + tag(
            "p", esc("Too few rows in this window to judge drift."), "muted"
        )
    drift = result.drift
    columns = list(drift.columns) + (
        [result.prediction_drift] if result.prediction_drift is not None else []
    )
    rows = []
    for column in columns:
        verdict = _pill("drift", "error") if column.drifted else _pill("stable", "ok")
        rows.append(
            "<tr>"
            + tag("td", esc(column.column))
            + tag("td", _pill(column.kind, "kind"))
            + tag("td", esc(column.method))
            + tag("td", esc(fmt_number(column.statistic)), "num")
            + tag("td", esc(fmt_number(column.threshold)), "num")
            + tag("td", esc(fmt_number(column.p_value)), "num")
            + tag(
                "td",
                esc(f"{fmt_share(column.reference_nulls)} / {fmt_share(column.current_nulls)}"),
                "num",
            )
            + tag("td", verdict)
            + "</tr>"
        )
    headers = [
        ("column", ""),
        ("kind", ""),
        ("method", ""),
        ("statistic", "num"),
        ("threshold", "num"),
        ("p-value", "num"),
        ("missing ref / live", "num"),
        ("verdict", ""),
    ]
    summary = (
        f"{len(drift.drifted_columns)} of {len(drift.columns)} features drifted "
        f"({fmt_share(drift.share)}; the dataset counts as drifted from "
        f"{fmt_share(drift.threshold)})."
    )
    ordered = sorted(columns, key=lambda c: (not c.drifted, c.column))
    cards = []
    for column in ordered:
        dist = dists.get(column.column)
        if dist is None:
            continue
        chart = (
            paired_histogram(
                dist["reference"],
                dist["current"],
                names=("reference", "live"),
                first_label=dist["bins"][0] if dist["kind"] == "categorical" else _edge(dist, 0),
                last_label=dist["bins"][-1] if dist["kind"] == "categorical" else _edge(dist, -1),
                tooltips=dist["bins"],
                label=f"{column.column}: reference and live distributions",
            )
            if dist["bins"]
            else placeholder("no values to chart")
        )
        verdict = _pill("drift", "error") if column.drifted else _pill("stable", "ok")
        head = tag(
            "header",
            tag("h3", esc(column.column))
            + verdict
            + tag("span", esc(f"{column.method} {fmt_number(column.statistic)}"), "muted"),
        )
        cards.append(tag("div", head + chart, "card drift-card", id=f"drift-{column.column}"))
    return (
        tag("h2", "Drift per feature")
        + tag("p", esc(summary), "muted")
        + table(headers, rows)
        + tag("div", "".join(cards), "grid")
    )


def _edge(dist: dict[str, Any], index: int) -> str:
    return fmt_number(dist["edges"][index])


def _quality_section(result: MonitorResult) -> str:
    quality = result.quality
    rows = []
    for column in quality.columns:
        issues = "; ".join(column.issues)
        rows.append(
            "<tr>"
            + tag("td", esc(column.column))
            + tag("td", esc(column.type))
            + tag("td", esc(fmt_share(column.missing)), "num")
            + tag("td", esc(fmt_share(column.training_missing)), "num")
            + tag("td", esc(fmt_share(column.out_of_range)), "num")
            + tag("td", esc(fmt_share(column.unseen)), "num")
            + tag("td", _pill(issues, "warn") if issues else _pill("ok", "ok"))
            + "</tr>"
        )
    headers = [
        ("column", ""),
        ("type", ""),
        ("missing", "num"),
        ("training missing", "num"),
        ("out of range", "num"),
        ("unseen categories", "num"),
        ("issues", ""),
    ]
    refused = (
        f"{fmt_number(quality.refused)} requests refused for invalid input "
        f"({fmt_share(quality.schema_violation_rate)} of requests)."
    )
    return tag("h2", "Live data quality") + tag("p", esc(refused), "muted") + table(headers, rows)


def _minutes(starts: Sequence[str], origin: datetime) -> list[float]:
    return [(datetime.fromisoformat(s) - origin).total_seconds() / 60 for s in starts]


def _performance_section(result: MonitorResult) -> str:
    performance = result.performance
    baseline = result.reference.baseline
    names = list(baseline) or sorted({n for v in performance.versions for n in v.metrics})
    rows = []
    for entry in performance.versions:
        cells = "".join(
            tag(
                "td",
                esc(fmt_number(entry.metrics.get(name)))
                + (
                    tag("span", esc(f" ({entry.degradation[name]:+.3f})"), "muted")
                    if name in entry.degradation
                    else ""
                ),
                "num",
            )
            for name in names
        )
        rows.append(
            "<tr>"
            + tag("td", esc(f"{result.model}:{entry.version}"))
            + tag("td", esc(entry.role))
            + tag("td", esc(fmt_number(entry.predictions)), "num")
            + tag("td", esc(fmt_number(entry.labelled)), "num")
            + cells
            + "</tr>"
        )
    rows.append(
        "<tr>"
        + tag("td", esc("test set"))
        + tag("td", esc("baseline"))
        + tag("td", "")
        + tag("td", "")
        + "".join(tag("td", esc(fmt_number(baseline.get(n))), "num") for n in names)
        + "</tr>"
    )
    headers = [("version", ""), ("role", ""), ("predictions", "num"), ("labelled", "num")]
    headers += [(name, "num") for name in names]
    main = _main_metric(result) or (names[0] if names else None)
    chart = placeholder("no labelled traffic yet", width=640)
    series_all = [entry for entry in performance.versions if entry.series]
    if main is not None and series_all:
        starts = [b["start"] for entry in series_all for b in entry.series]
        origin = min(datetime.fromisoformat(s) for s in starts)
        lines = [
            Series(
                f"{result.model}:{entry.version} ({entry.role})",
                _minutes([b["start"] for b in entry.series], origin),
                [float(b.get(main, float("nan"))) for b in entry.series],
                markers=True,
                tooltips=[
                    f"{fmt_time(b['start'], 'minute')}: {main} {fmt_number(b.get(main))}, "
                    f"{b['labelled']} labels"
                    for b in entry.series
                ],
            )
            for entry in series_all
        ]
        xs = [x for line in lines for x in line.xs]
        low, high = min(xs), max(xs)
        if high - low < 1:  # one bucket: give the axis a minute either side
            low, high = low - 1, high + 1
        if main in baseline:
            lines.append(guide(f"test set {main}", [low, high], [baseline[main]] * 2))
        chart = line_chart(
            lines,
            x=Axis(f"minutes since {fmt_time(origin.isoformat(), 'minute')}", low, high),
            y=Axis(main),
            label=f"{main} over time",
            width=640,
            height=260,
        )
    note = "Numbers in brackets: change against the test set, positive is worse."
    return (
        tag("h2", "Performance on labelled traffic")
        + tag("p", esc(note), "muted")
        + tag("div", table(headers, rows), "scroll")
        + tag("div", chart, "card")
    )


def _health_section(health: dict[str, Any] | None) -> str:
    if not health or not health.get("series"):
        return tag("h2", "Operational health") + tag(
            "p", esc("No served requests in this window."), "muted"
        )
    series = health["series"]
    origin = min(datetime.fromisoformat(row["start"]) for row in series)
    versions = sorted({row["version"] for row in series})
    charts = []
    for metric, title in (
        ("latency_p99_ms", "latency p99 (ms)"),
        ("error_rate", "error rate"),
        ("throughput_rps", "requests per second"),
    ):
        lines = []
        for version in versions:
            rows = [r for r in series if r["version"] == version and r.get(metric) is not None]
            lines.append(
                Series(
                    f"version {version}",
                    _minutes([r["start"] for r in rows], origin),
                    [float(r[metric]) for r in rows],
                    markers=True,
                    tooltips=[
                        f"{fmt_time(r['start'], 'minute')}: {fmt_number(r[metric])}"
                        + (" (anomaly)" if r.get(f"{metric}_anomaly") else "")
                        for r in rows
                    ],
                )
            )
        charts.append(
            tag(
                "div",
                tag("header", tag("h3", esc(title)))
                + line_chart(
                    lines,
                    x=Axis(f"minutes since {fmt_time(origin.isoformat(), 'minute')}"),
                    y=Axis(title, low=0.0),
                    label=title,
                ),
                "card",
            )
        )
    anomalies = health.get("anomalies", [])
    rows = [
        "<tr>"
        + tag("td", esc(fmt_time(a.get("start"), "minute")))
        + tag("td", esc(str(a.get("version"))))
        + tag("td", esc(a.get("metric")))
        + tag("td", esc(fmt_number(a.get("value"))), "num")
        + tag("td", esc(fmt_number(a.get("expected"))), "num")
        + tag("td", esc(fmt_number(a.get("z"))), "num")
        + "</tr>"
        for a in anomalies
    ]
    listing = (
        table(
            [
                ("bucket", ""),
                ("version", ""),
                ("metric", ""),
                ("value", "num"),
                ("expected", "num"),
                ("z", "num"),
            ],
            rows,
        )
        if rows
        else tag("p", esc("No anomalies in these series."), "muted")
    )
    return (
        tag("h2", "Operational health")
        + tag("div", "".join(charts), "grid")
        + tag("h3", esc("Anomalies (EWMA z-score)"))
        + listing
    )


def _alerts_section(alerts: Sequence[dict[str, Any]]) -> str:
    if not alerts:
        return tag("h2", "Alerts") + tag("p", esc("No alert has fired for this model."), "muted")
    rows = []
    for alert in alerts:
        kind = {"critical": "error", "warning": "warn"}.get(alert["severity"], "kind")
        deliveries = deliveries_text(alert.get("deliveries", []))
        rows.append(
            "<tr>"
            + tag("td", esc(fmt_time(alert["at"])))
            + tag("td", esc(alert["rule"]))
            + tag("td", esc(alert["metric"]))
            + tag("td", esc(fmt_number(alert["value"])), "num")
            + tag("td", esc(alert["condition"]))
            + tag("td", _pill(alert["severity"], kind))
            + tag("td", esc(alert["status"]))
            + tag("td", esc(deliveries or "\u2014"))
            + "</tr>"
        )
    headers = [
        ("at", ""),
        ("rule", ""),
        ("metric", ""),
        ("value", "num"),
        ("condition", ""),
        ("severity", ""),
        ("status", ""),
        ("deliveries", ""),
    ]
    return tag("h2", "Alerts") + table(headers, rows)


# -- the report ------------------------------------------------------------------------------


def report_document(
    result: MonitorResult,
    health: dict[str, Any] | None,
    alerts: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """Everything the page shows, as JSON."""
    return {
        "kind": "mlship-monitoring-report",
        **result.to_dict(),
        "distributions": distributions(result),
        "health": health,
        "alerts": list(alerts),
    }


def render_report(content: dict[str, Any], result: MonitorResult) -> str:
    fired = sum(1 for a in content["alerts"] if a["status"] == "fired")
    body = (
        _header(result, (content["health"] or {}).get("summary"), fired)
        + _drift_section(result, content["distributions"])
        + _quality_section(result)
        + _performance_section(result)
        + _health_section(content["health"])
        + _alerts_section(content["alerts"])
        + tag("footer", esc(f"mlship monitoring report, generated {result.at.isoformat()}"))
    )
    return document(f"Monitoring {result.model}:{result.version}", body)


def write_monitor_report(
    result: MonitorResult,
    directory: Path,
    *,
    health: dict[str, Any] | None = None,
    alerts: Sequence[dict[str, Any]] = (),
    name: str | None = None,
) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.html`` (default ``<model>-monitoring``) atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    content = report_document(result, health, alerts)
    page = render_report(content, result)
    return write_report_pair(directory, name or f"{result.model}-monitoring", content, page)
