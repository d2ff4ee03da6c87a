"""The evaluation report as one self-contained HTML page.

Run facts and the selection metric first, then any column suspected of leaking the target (a
"Possible target leakage" panel), every test metric with its interval, the fit verdict beside the
learning curve, the curves (ROC, precision-recall, calibration and the confusion
matrix for a classifier; predicted against actual and residuals for a regressor) and permutation
importance. Class labels and column names are user data and are escaped like everything else.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from mlship.evaluation.cost_quality import cost_quality_section
from mlship.html import svg
from mlship.html.page import document, esc, fmt_number, fmt_share, fmt_time, table, tag
from mlship.train.metrics import metric_label

_PERCENT = frozenset({"mape"})
_UNBOUNDED = frozenset({"rmse", "mae", "median_ae", "mape", "log_loss"})
_FACTS = (
    ("id", "Run"),
    ("pipeline", "Pipeline"),
    ("model", "Model"),
    ("estimator", "Estimator"),
    ("dataset_hash", "Dataset"),
    ("created", "Created"),
)
_BADGES = {
    "a good fit": "pass",
    "overfitting": "fail",
    "underfitting": "warn",
    "drift": "fail",
    "possible leakage": "fail",
}
_IMPORTANCE_SHOWN = 15
SCORED_ONCE = "The test set was scored once, by the selected model, after selection."
_SHIPPED = "shipped"
"""The run fact saying what the registered model was fitted on: a sentence after SCORED_ONCE."""

_CSS = """
.callout.leak { border-left-color: var(--error); }
.callout {
  margin: 12px 0 0; padding: 8px 12px; background: var(--card); border: 1px solid var(--line);
  border-left: 4px solid var(--accent); border-radius: 6px;
}
.tiles { grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); }
.tile .sub { color: var(--muted); font-size: 12px; margin-top: 2px; }
.tile .big.verdict { font-size: 18px; }
.tile .big.pass { color: var(--ok); }
.tile .big.warn { color: var(--warn); }
.tile .big.fail { color: var(--error); }
td.ci svg.chart { width: 160px; margin: 3px 0 0; }
td .code { color: var(--muted); font-size: 12px; }
tr.selected td { background: var(--ok-bg); }
tr.selected td:first-child { box-shadow: inset 3px 0 0 var(--ok); }
.notes { margin: 8px 0 0; padding-left: 18px; color: var(--muted); }
.split { display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); }
.grid.charts { grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); }
.card h3 { word-break: normal; }
h3.sub-heading { margin: 22px 0 10px; }
.card p { margin: 6px 0 0; }
.card .caption { color: var(--muted); font-size: 12px; }
.verdict-line { display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
table.numbers { margin-top: 14px; }
table.numbers td:first-child, table.numbers th:first-child { color: var(--muted); }
dl.numbers {
  display: grid; grid-template-columns: auto 1fr; gap: 4px 14px; margin: 12px 0 0;
  font-size: 13px;
}
dl.numbers dt { color: var(--muted); }
dl.numbers dd { margin: 0; font-variant-numeric: tabular-nums; }
table.heat { width: auto; min-width: 60%; }
table.heat th, table.heat td {
  text-align: center; white-space: nowrap; vertical-align: middle;
}
table.heat th.corner { text-align: left; text-transform: none; letter-spacing: 0; }
table.heat th.row { text-align: right; text-transform: none; letter-spacing: 0; color: var(--ink); }
table.heat td {
  font-variant-numeric: tabular-nums; min-width: 96px; padding: 12px 10px; font-size: 15px;
}
table.heat td .share { display: block; font-size: 11px; }
table.heat td.diag { font-weight: 650; }
#backtest .grid { margin-top: 16px; }
"""


# -- formatting ------------------------------------------------------------------------------


def _label(metric: str) -> str:
    """A metric's name as a table row or axis title starts: capitalised."""
    text = metric_label(metric)
    return text[:1].upper() + text[1:]


def _value(metric: str, value: Any) -> str:
    """A metric value with four significant digits: enough to compare, few enough to read."""
    if value is None:
        return "\u2014"
    if metric in _PERCENT:
        return fmt_share(value)
    number = float(value)
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return "0" if number == 0 else f"{number:.4g}"


def _range(metric: str, low: Any, high: Any) -> str:
    if low is None or high is None:
        return "\u2014"
    return f"{_value(metric, low)} \u2013 {_value(metric, high)}"


def _numbers(entry: dict[str, Any]) -> list[float]:
    return [float(entry[k]) for k in ("value", "low", "high") if entry.get(k) is not None]


def _shared_scale(entries: Iterable[dict[str, Any]]) -> tuple[float, float]:
    """One scale for the scores that stop at 1, from a round tenth below the lowest interval, so
    their rows compare at a glance and a narrow interval is still visible."""
    numbers = [n for entry in entries for n in _numbers(entry)]
    if not numbers:
        return 0.0, 1.0
    return max(min(math.floor(min(numbers) * 10) / 10, 0.9), -1.0), 1.0


def _scale(metric: str, entry: dict[str, Any], shared: tuple[float, float]) -> tuple[float, float]:
    """Errors on a scale of their own from 0; scores on the shared one."""
    if metric not in _UNBOUNDED:
        return shared
    numbers = _numbers(entry)
    return 0.0, (max(numbers) * 1.15 if numbers and max(numbers) > 0 else 1.0)


def _interval_chart(
    metric: str, entry: dict[str, Any], scale: tuple[float, float], what: str
) -> str:
    low, high = scale
    return svg.interval(
        entry.get("value"),
        entry.get("low"),
        entry.get("high"),
        scale=scale,
        label=f"{what}: {_value(metric, entry.get('value'))}, interval "
        f"{_range(metric, entry.get('low'), entry.get('high'))}, drawn on "
        f"{_value(metric, low)} to {_value(metric, high)}",
    )


def _caption(text: str) -> str:
    return tag("p", esc(text), "caption")


def _card(title: str, body: str, caption: str = "", css: str = "card") -> str:
    header = tag("header", tag("h3", esc(title)))
    return tag("article", header + body + (_caption(caption) if caption else ""), css)


# -- header ----------------------------------------------------------------------------------


def _fact(label: str, value: Any, key: str) -> str:
    if value is None or value == "":
        shown = "\u2014"
    elif key == "created":
        shown = esc(fmt_time(str(value)))
    elif key in ("id", "dataset_hash"):
        shown = tag("code", esc(value))
    else:
        shown = esc(value)
    return tag("div", tag("dt", esc(label)) + tag("dd", shown))


def _facts(run: dict[str, Any], evaluation: dict[str, Any]) -> str:
    known = {key for key, _ in _FACTS} | {_SHIPPED}
    items = [_fact(label, run.get(key), key) for key, label in _FACTS]
    items += [_fact(str(key), value, str(key)) for key, value in run.items() if key not in known]
    rows = evaluation.get("rows", {})
    items.append(
        _fact(
            "Rows",
            f"{fmt_number(rows.get('train'))} training \u00b7 {fmt_number(rows.get('test'))} test",
            "rows",
        )
    )
    return tag("dl", "".join(items), "facts")


def _tile(label: str, value: str, sub: str = "", value_css: str = "big") -> str:
    content = tag("div", esc(label), "label") + tag("div", esc(value), value_css)
    return tag("div", content + (tag("div", esc(sub), "sub") if sub else ""), "tile")


def _header(name: str, evaluation: dict[str, Any], run: dict[str, Any]) -> str:
    metric = evaluation.get("metric", "")
    fit = evaluation.get("diagnosis", {}).get("fit", {})
    verdict = fit.get("verdict", "")
    model = run.get("model") or name
    badge = tag("span", esc(verdict), f"badge {_BADGES.get(verdict, 'warn')}") if verdict else ""
    heading = tag("div", tag("h1", esc(f"Evaluation of {model}")) + badge, "title-row")
    subtitle_parts = [str(run.get("pipeline") or name), str(evaluation.get("task", ""))]
    subtitle_parts.append(f"selected by {_label(metric)}")
    subtitle = tag("p", esc(" \u00b7 ".join(p for p in subtitle_parts if p)), "muted subtitle")
    metrics = evaluation.get("metrics", {})
    entry = metrics.get("values", {}).get(metric, {})
    confidence = metrics.get("confidence", 0.95)
    rows = evaluation.get("rows", {})
    tiles = [
        _tile(
            f"Test {_label(metric)}",
            _value(metric, entry.get("value")),
            f"{confidence:.0%} interval {_range(metric, entry.get('low'), entry.get('high'))}",
        ),
        _tile(
            "Validation (CV mean)",
            _value(metric, fit.get("validation")),
            f"training {_value(metric, fit.get('train'))}",
        ),
        _tile(
            "Fit",
            verdict or "\u2014",
            f"baseline {_value(metric, fit.get('baseline'))}",
            f"big verdict {_BADGES.get(verdict, '')}",
        ),
        _tile(
            "Test rows",
            fmt_number(rows.get("test")),
            "the latest rows, scored once" if "backtest" in evaluation else "scored once",
        ),
    ]
    said = evaluation.get("backtest", {}).get("test_set") or SCORED_ONCE
    shipped = run.get(_SHIPPED)
    callout = tag("p", esc(f"{said} {shipped}" if shipped else said), "callout")
    return tag(
        "header",
        heading
        + subtitle
        + _facts(run, evaluation)
        + callout
        + tag("div", "".join(tiles), "tiles"),
    )


# -- leakage ---------------------------------------------------------------------------------


def _leakage_section(evaluation: dict[str, Any]) -> str:
    """The columns suspected of leaking the target, each with the test and figure that found it;
    nothing when none is."""
    found = evaluation.get("leakage") or {}
    suspects = found.get("suspects") or []
    if not suspects:
        return ""
    rows = [
        tag(
            "tr",
            tag("td", tag("code", esc(s.get("column", ""))))
            + tag("td", esc(s.get("test", "")))
            + tag("td", esc(f"{s.get('measure', '')} {fmt_number(s.get('figure'))}"), "num")
            + tag("td", esc(fmt_number(s.get("threshold"))), "num")
            + tag("td", esc(s.get("sentence", ""))),
        )
        for s in suspects
    ]
    headers = [("Column", ""), ("Test", ""), ("Figure", "num"), ("Suspect at", "num"), ("", "")]
    allowed = found.get("allowed") or []
    note = (
        "The scores below cannot be trusted until each suspect column is explained: remove it if "
        "it is not known when a prediction is made, or list it under leakage.allow if it is."
    )
    if allowed:
        note += f" Declared fine and not screened: {', '.join(map(str, allowed))}."
    body = (
        tag("h2", "Possible target leakage")
        + tag("p", esc(note), "callout leak")
        + table(headers, rows)
    )
    return tag("section", body, id="leakage")


# -- metrics ---------------------------------------------------------------------------------


def _metric_row(
    metric: str, entry: dict[str, Any], selected: bool, shared: tuple[float, float]
) -> str:
    title = esc(_label(metric))
    if selected:
        title += " " + tag("span", "selection metric", "pill ok")
    name = tag("div", title) + tag("div", esc(metric), "code")
    chart = _interval_chart(metric, entry, _scale(metric, entry, shared), _label(metric))
    better = "higher" if entry.get("greater_is_better") else "lower"
    cells = [
        tag("td", name),
        tag("td", esc(_value(metric, entry.get("value"))), "num"),
        tag("td", esc(_range(metric, entry.get("low"), entry.get("high"))), "num"),
        tag("td", chart, "ci"),
        tag("td", esc(f"{better} is better"), "muted"),
    ]
    return tag("tr", "".join(cells), "selected" if selected else None)


def _per_class(metrics: dict[str, Any], confidence: float) -> str:
    rows = []
    entries = metrics.get("per_class", {}).get("f1", [])
    shared = _shared_scale(entries)
    for entry in entries:
        chart = _interval_chart("f1", entry, shared, f"F1 of {entry.get('label')}")
        cells = [
            tag("td", tag("code", esc(entry.get("label")))),
            tag("td", esc(fmt_number(entry.get("support"))), "num"),
            tag("td", esc(_value("f1", entry.get("value"))), "num"),
            tag("td", esc(_range("f1", entry.get("low"), entry.get("high"))), "num"),
            tag("td", chart, "ci"),
        ]
        rows.append(tag("tr", "".join(cells)))
    if not rows:
        return ""
    headers = [
        ("Class", ""),
        ("Test rows", "num"),
        ("F1", "num"),
        (f"{confidence:.0%} interval", "num"),
        ("", ""),
    ]
    return tag("h3", "F1 per class", "sub-heading") + table(headers, rows)


def _metrics_section(evaluation: dict[str, Any]) -> str:
    metrics = evaluation.get("metrics", {})
    confidence = float(metrics.get("confidence", 0.95))
    selected = evaluation.get("metric")
    how = (
        f"{confidence:.0%} percentile-bootstrap intervals over the test rows: "
        f"{fmt_number(metrics.get('resamples'))} resamples"
        + (", stratified by class" if metrics.get("stratified") else "")
        + f", seed {fmt_number(metrics.get('seed'))}."
    )
    positive = metrics.get("positive_label")
    if positive is not None:
        how += f" Precision, recall, F1 and PR-AUC are those of the positive class {positive!s}."
    headers = [
        ("Metric", ""),
        ("Test value", "num"),
        (f"{confidence:.0%} interval", "num"),
        ("", ""),
        ("", ""),
    ]
    values = metrics.get("values", {})
    shared = _shared_scale(e for name, e in values.items() if name not in _UNBOUNDED)
    rows = [_metric_row(name, entry, name == selected, shared) for name, entry in values.items()]
    notes = metrics.get("notes") or []
    note_list = tag("ul", "".join(tag("li", esc(n)) for n in notes), "notes") if notes else ""
    per_class = ""
    if evaluation.get("task") == "classification":
        per_class = tag("div", _per_class(metrics, confidence), "per-class")
    body = (
        tag("h2", "Test-set metrics")
        + tag("p", esc(how), "muted")
        + table(headers, rows)
        + note_list
        + per_class
    )
    return tag("section", body, id="metrics")


# -- fit -------------------------------------------------------------------------------------


def _learning_chart(curve: dict[str, Any], baseline: Any, metric: str) -> str:
    sizes = curve.get("train_sizes") or []
    if not sizes:
        return svg.placeholder("no learning curve", width=svg.XY_WIDTH)

    # Scores stop at 1 and errors at 0, so a band of one standard deviation stops there too.
    bounded_above = metric not in _UNBOUNDED

    def band(mean: Sequence[float | None], std: Sequence[float | None], sign: int) -> list[float]:
        edges = [
            (m if m is not None else float("nan")) + sign * (s or 0.0)
            for m, s in zip(mean, std, strict=True)
        ]
        return [min(e, 1.0) if bounded_above else max(e, 0.0) for e in edges]

    def values(items: Sequence[float | None]) -> list[float]:
        return [v if v is not None else float("nan") for v in items]

    series = []
    for key, title in (("train", "training"), ("validation", "validation")):
        mean, std = curve.get(f"{key}_mean") or [], curve.get(f"{key}_std") or []
        series.append(
            svg.Series(
                title,
                sizes,
                values(mean),
                markers=True,
                low=band(mean, std, -1),
                high=band(mean, std, 1),
                tooltips=[
                    f"{title}, {fmt_number(size)} rows: {_value(metric, m)}"
                    for size, m in zip(sizes, mean, strict=True)
                ],
            )
        )
    if baseline is not None:
        series.append(svg.guide("dummy baseline", [sizes[0], sizes[-1]], [baseline, baseline]))
    return svg.line_chart(
        series,
        x=svg.Axis("Training rows"),
        y=svg.Axis(_label(metric), high=1.0 if bounded_above else None),
        label=f"learning curve of {_label(metric)}",
    )


def _gap_rule(fit: dict[str, Any]) -> tuple[str, str]:
    """The gap as measured, and the rule that calls it overfitting, in words."""
    gap, limit = fit.get("gap"), fit.get("gap_limit")
    if fit.get("gap_kind") == "absolute":
        return (
            _value(fit.get("metric", ""), gap),
            f"training \u2212 validation is above {fmt_number(limit)}",
        )
    measured = f"{fmt_share(gap)} of the baseline's error" if gap is not None else "\u2014"
    return measured, (
        f"validation error exceeds training by over {fmt_share(limit)} of the baseline's error"
    )


def _verdict_card(fit: dict[str, Any]) -> str:
    metric = fit.get("metric", "")
    verdict = fit.get("verdict", "")
    line = tag(
        "div",
        tag("span", esc(verdict), f"badge {_BADGES.get(verdict, 'warn')}")
        + tag("strong", esc(f"on {metric_label(metric)}")),
        "verdict-line",
    )
    rows = [
        tag(
            "tr",
            tag("td", esc(label))
            + tag("td", esc(train), "num")
            + tag("td", esc(validation), "num"),
        )
        for label, train, validation in (
            (
                "Score, mean over the folds",
                _value(metric, fit.get("train")),
                _value(metric, fit.get("validation")),
            ),
            (
                "Share of the way from baseline to perfect",
                fmt_share(fit.get("train_skill")),
                fmt_share(fit.get("validation_skill")),
            ),
        )
    ]
    scores = table([("", ""), ("Training", "num"), ("Validation", "num")], rows, "numbers")
    measured, rule = _gap_rule(fit)
    facts = [
        ("Dummy baseline", f"{_value(metric, fit.get('baseline'))} (validation, mean)"),
        ("Gap", measured),
        ("Overfitting when", rule),
        ("Underfitting when", f"both shares are below {fmt_share(fit.get('skill_floor'))}"),
        *_time_rules(fit),
        (
            "Scores from",
            f"{fit.get('source', 'cross-validation')}, {fmt_number(fit.get('folds'))} folds",
        ),
    ]
    details = "".join(tag("dt", esc(key)) + tag("dd", esc(value)) for key, value in facts)
    body = (
        line
        + tag("p", esc(fit.get("reason", "")))
        + tag("p", tag("strong", "Advice: ") + esc(fit.get("advice", "")))
        + scores
        + tag("dl", details, "numbers")
    )
    return tag("article", tag("header", tag("h3", "Verdict")) + body, "card")


def _time_rules(fit: dict[str, Any]) -> list[tuple[str, str]]:
    """The rules a time-ordered run is judged by, beside the gap rule."""
    time = fit.get("time")
    if not time:
        return []
    scores, errors = time.get("scores", {}), time.get("errors", {})
    bias = (
        f"bias {fmt_share(errors.get('bias_share'))} of the squared error on the test set"
        if errors.get("kind") == "residual"
        else f"error rate {fmt_share(errors.get('test_level'))} on the test set"
    )
    return [
        ("Overfitting over time", "the gap rule holds on every fold, every training window"),
        (
            "Drift when",
            "the test set's loss is 20% or more above the folds' mean, most steps in time make "
            "it worse, and the errors shift (bias, or a trend across the test set); or the "
            "residuals lean the same way on the latest fold and the test set",
        ),
        (
            "Over time",
            f"test loss {fmt_share(scores.get('test_loss_rise'))} above the folds' mean; "
            f"{fmt_number(scores.get('worse_steps'))} of {fmt_number(scores.get('steps'))} steps "
            f"worse; {bias}",
        ),
    ]


def _fit_section(evaluation: dict[str, Any]) -> str:
    diagnosis = evaluation.get("diagnosis", {})
    fit = diagnosis.get("fit", {})
    over_time = diagnosis.get("learning_curve", {}).get("kind") == "time folds"
    chart_card = _card(
        "Learning curve",
        _learning_chart(
            diagnosis.get("learning_curve", {}),
            fit.get("baseline"),
            fit.get("metric", evaluation.get("metric", "")),
        ),
        "One point per time fold: its training window, which grows fold after fold; the "
        "dashed line is a model that ignores the inputs."
        if over_time
        else "Mean over the folds with one standard deviation shaded; the dashed line is a model "
        "that ignores the inputs.",
    )
    return tag(
        "section",
        tag("h2", "Fit") + tag("div", _verdict_card(fit) + chart_card, "split"),
        id="fit",
    )


# -- backtest --------------------------------------------------------------------------------


def _signed(value: Any) -> str:
    return "\u2014" if value is None else f"{float(value):+.4g}"


def _span(span: dict[str, Any]) -> str:
    return f"{span.get('from')} \u2013 {span.get('to')}"


def _backtest_chart(backtest: dict[str, Any]) -> str:
    metric = backtest.get("metric", "")
    rows = backtest.get("rows", [])
    steps = list(range(1, len(rows) + 1))

    def value(item: Any) -> float:
        return float(item) if item is not None else float("nan")

    tips = [
        f"{row['label']}, scored on {_span(row['validation'])}: {_value(metric, row['score'])}"
        for row in rows
    ]
    series = [
        svg.Series(
            "validation, then test",
            steps,
            [value(row["score"]) for row in rows],
            markers=True,
            tooltips=tips,
        ),
        svg.Series(
            "training",
            steps[:-1],
            [value(row["train_score"]) for row in rows[:-1]],
            markers=True,
        ),
    ]
    return svg.line_chart(
        series,
        x=svg.Axis("Block in time order (the last is the test set)", 1, max(len(rows), 2)),
        y=svg.Axis(_label(metric), high=1.0 if metric not in _UNBOUNDED else None),
        label=f"{_label(metric)} per time fold, then the test set",
    )


def _backtest_section(backtest: dict[str, Any]) -> str:
    metric = backtest.get("metric", "")
    residual = backtest.get("errors") == "residual"
    headers = [
        ("", ""),
        ("Trained on", ""),
        ("Rows", "num"),
        ("Scored on", ""),
        ("Rows", "num"),
        (_label(metric), "num"),
        ("Training", "num"),
        ("Mean residual" if residual else "Error rate", "num"),
        ("Trend across the block", "num"),
    ]
    body = []
    for row in backtest.get("rows", []):
        errors = row.get("errors", {})
        shown = _signed(errors.get("level")) if residual else fmt_share(errors.get("level"))
        trend = _signed(errors.get("trend")) if residual else fmt_share(errors.get("trend"))
        cells = [
            tag("td", esc(row["label"])),
            tag("td", esc(_span(row["train"]))),
            tag("td", esc(fmt_number(row["train"]["rows"])), "num"),
            tag("td", esc(_span(row["validation"]))),
            tag("td", esc(fmt_number(row["validation"]["rows"])), "num"),
            tag("td", esc(_value(metric, row.get("score"))), "num"),
            tag("td", esc(_value(metric, row.get("train_score"))), "num"),
            tag("td", esc(shown), "num"),
            tag("td", esc(trend), "num"),
        ]
        body.append(tag("tr", "".join(cells), "selected" if row["label"] == "test" else None))
    how = (
        f"Every fold trains on all rows before it in {backtest.get('time')!s} and is scored on the "
        "next block; the last row is the test set. "
        + (
            "The residual is actual \u2212 predicted; its trend is how far a line through the "
            "block's residuals moves from its first row to its last."
            if residual
            else "The trend is how far a line through the block's misses moves across it."
        )
    )
    card = _card(
        "Score over time",
        _backtest_chart(backtest),
        "The selected model's score on each time fold, oldest first, then on the test set.",
    )
    return tag(
        "section",
        tag("h2", "Backtest")
        + tag("p", esc(how), "muted")
        + tag("div", table(headers, body), "scroll")
        + tag("div", card, "grid charts"),
        id="backtest",
    )


# -- curves ----------------------------------------------------------------------------------


def _no_probabilities(title: str) -> str:
    return _card(title, svg.placeholder("the model gives no class probabilities"))


def _roc_card(roc: dict[str, Any] | None) -> str:
    if not roc:
        return _no_probabilities("ROC curve")
    series = [svg.guide("chance", [0, 1], [0, 1])]
    series += [
        svg.Series(f"{s['label']} (AUC {_value('roc_auc', s['auc'])})", s["fpr"], s["tpr"])
        for s in roc.get("series", [])
    ]
    chart = svg.line_chart(
        series,
        x=svg.Axis("False positive rate", 0, 1),
        y=svg.Axis("True positive rate", 0, 1),
        label="ROC curve",
    )
    return _card("ROC curve", chart, "True against false positive rate at every threshold.")


def _pr_card(pr: dict[str, Any] | None) -> str:
    if not pr:
        return _no_probabilities("Precision-recall curve")
    found = pr.get("series", [])
    series = []
    if len(found) == 1 and found[0].get("prevalence") is not None:
        share = found[0]["prevalence"]
        series.append(svg.guide(f"random ({fmt_share(share)} positive)", [0, 1], [share, share]))
    series += [
        svg.Series(
            f"{s['label']} (AP {_value('average_precision', s['average_precision'])})",
            s["recall"],
            s["precision"],
        )
        for s in found
    ]
    chart = svg.line_chart(
        series,
        x=svg.Axis("Recall", 0, 1),
        y=svg.Axis("Precision", 0, 1),
        label="precision-recall curve",
    )
    return _card("Precision-recall curve", chart, "Precision against recall at every threshold.")


def _calibration_card(calibration: dict[str, Any] | None) -> str:
    if not calibration:
        return _no_probabilities("Calibration")
    series = [svg.guide("perfectly calibrated", [0, 1], [0, 1])]
    for s in calibration.get("series", []):
        tips = [
            f"{fmt_number(n)} rows: predicted {fmt_number(p)}, observed {fmt_number(o)}"
            for p, o, n in zip(s["predicted"], s["observed"], s["count"], strict=True)
        ]
        series.append(
            svg.Series(str(s["label"]), s["predicted"], s["observed"], markers=True, tooltips=tips)
        )
    chart = svg.line_chart(
        series,
        x=svg.Axis("Mean predicted probability", 0, 1),
        y=svg.Axis("Observed share", 0, 1),
        label="calibration curve",
    )
    bins = calibration.get("bins")
    return _card(
        "Calibration",
        chart,
        f"{fmt_number(bins)} equal-width bins of the predicted probability; empty bins left out.",
    )


def _heat_cell(count: int, share: float | None, diagonal: bool) -> str:
    # At most half-strength blue, so the page's own ink stays readable on every cell (WCAG AA
    # contrast, light and dark schemes alike).
    alpha = min(max(share or 0.0, 0.0), 1.0)
    style = f"background: rgba(76, 120, 168, {alpha * 0.45:.3f})"
    content = esc(fmt_number(count)) + tag("span", esc(fmt_share(share)), "share")
    css = "diag" if diagonal else None
    attrs = f' class="{css}"' if css else ""
    return f'<td{attrs} style="{style}">{content}</td>'


def _confusion_card(matrix: dict[str, Any] | None) -> str:
    if not matrix:
        return _card("Confusion matrix", svg.placeholder("no predictions"))
    labels = matrix.get("labels", [])
    head = tag("th", esc("true \u2193 predicted \u2192"), "corner") + "".join(
        tag("th", esc(label)) for label in labels
    )
    body = []
    for i, (label, counts, shares) in enumerate(
        zip(labels, matrix.get("counts", []), matrix.get("normalized", []), strict=True)
    ):
        cells = "".join(
            _heat_cell(count, share, i == j)
            for j, (count, share) in enumerate(zip(counts, shares, strict=True))
        )
        body.append(tag("tr", tag("th", esc(label), "row") + cells))
    heat = (
        f'<table class="heat"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )
    return _card(
        "Confusion matrix",
        tag("div", heat, "scroll"),
        "Test rows by true class (rows) and predicted class (columns); the share is of the true "
        "class, so the diagonal is each class's recall.",
    )


def _regression_cards(points: dict[str, Any]) -> list[str]:
    actual, predicted, residual = points["actual"], points["predicted"], points["residual"]
    numbers = [v for v in actual + predicted if v is not None]
    low, high = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
    shown = (
        f"{fmt_number(points.get('shown'))} of {fmt_number(points.get('total'))} test rows"
        if points.get("shown") != points.get("total")
        else f"all {fmt_number(points.get('total'))} test rows"
    )
    scatter = svg.scatter_chart(
        actual,
        predicted,
        x=svg.Axis("Actual"),
        y=svg.Axis("Predicted"),
        guides=[svg.guide("perfect prediction", [low, high], [low, high])],
        points_label="test rows",
        label="predicted against actual values",
    )
    finite = [v for v in predicted if v is not None]
    left, right = (min(finite), max(finite)) if finite else (0.0, 1.0)
    residuals = svg.scatter_chart(
        predicted,
        residual,
        x=svg.Axis("Predicted"),
        y=svg.Axis("Residual (actual \u2212 predicted)"),
        guides=[svg.guide("no error", [left, right], [0, 0])],
        points_label="test rows",
        label="residuals against predicted values",
    )
    spread = (
        f"Residual mean {_value('', points.get('residual_mean'))}, standard deviation "
        f"{_value('', points.get('residual_std'))}; {shown}."
    )
    return [
        _card("Predicted against actual", scatter, f"Points on the diagonal are exact; {shown}."),
        _card("Residuals", residuals, spread),
    ]


def _curves_section(evaluation: dict[str, Any]) -> str:
    found = evaluation.get("curves", {})
    if evaluation.get("task") == "classification":
        cards = [
            _roc_card(found.get("roc")),
            _pr_card(found.get("precision_recall")),
            _calibration_card(found.get("calibration")),
            _confusion_card(found.get("confusion_matrix")),
        ]
    else:
        cards = _regression_cards(found.get("points", {}))
    return tag(
        "section", tag("h2", "Curves") + tag("div", "".join(cards), "grid charts"), id="curves"
    )


# -- importance ------------------------------------------------------------------------------


def _importance_section(evaluation: dict[str, Any]) -> str:
    importance = evaluation.get("importance", {})
    metric = importance.get("metric", "")
    columns = importance.get("columns", [])
    shown = columns[:_IMPORTANCE_SHOWN]
    bars = [
        svg.Bar(
            label=str(c["name"]),
            value=max(c["mean"] or 0.0, 0.0),
            note=f"{_value(metric, c['mean'])} \u00b1 {_value(metric, c['std'])}",
            tooltip=f"{c['name']}: {_value(metric, c['mean'])} \u00b1 {_value(metric, c['std'])}",
        )
        for c in shown
    ]
    chart = svg.bar_chart(
        bars,
        label=f"permutation importance on {_label(metric)}",
        width=1100,
        row_height=24,
        label_width=230,
        note_width=170,
    )
    more = len(columns) - len(shown)
    caption = (
        f"The {importance.get('measure', '')} on the test set, mean \u00b1 standard deviation "
        f"over {fmt_number(importance.get('repeats'))} shuffles. Columns are the raw inputs."
    )
    if more > 0:
        caption += f" {more:,} less important columns not shown."
    card = _card("Permutation importance", chart, caption)
    return tag("section", tag("h2", "Which inputs matter") + card, id="importance")


# -- the page --------------------------------------------------------------------------------


def render_evaluation_html(name: str, evaluation: dict[str, Any], run: dict[str, Any]) -> str:
    """One self-contained HTML page for ``evaluation`` with the facts of ``run``."""
    metrics = evaluation.get("metrics", {})
    sections = [
        _header(name, evaluation, run),
        _leakage_section(evaluation),
        _metrics_section(evaluation),
        _fit_section(evaluation),
        *([_backtest_section(evaluation["backtest"])] if "backtest" in evaluation else []),
        _curves_section(evaluation),
        _importance_section(evaluation),
        cost_quality_section(evaluation),
    ]
    footer = tag(
        "footer",
        esc(
            f"mlship evaluation report \u00b7 {name} \u00b7 "
            f"{fmt_number(metrics.get('resamples'))} bootstrap resamples \u00b7 "
            f"seed {fmt_number(metrics.get('seed'))}"
        ),
    )
    return document(f"Evaluation: {name}", "".join(sections) + footer, _CSS)
