"""A run comparison as one self-contained HTML page: the table with one column per run (rows that
differ highlighted, the best value of each metric starred) and a bar chart per metric."""

from __future__ import annotations

import json
from pathlib import Path

from mlship.evaluation.compare import METRIC_SECTIONS, SECTIONS, Row, RunComparison
from mlship.html import svg
from mlship.html.page import document, esc, fmt_number, table, tag, write_report_pair
from mlship.train.metrics import metric_label

_CSS = """
.subtitle { margin: 6px 0 0; }
tr.differs td:first-child { box-shadow: inset 3px 0 0 var(--warn); }
tr.differs td.value { background: var(--warn-bg); }
td.best { font-weight: 700; color: var(--ok); }
td.best::after { content: " \\2605"; }
tr.section th { background: var(--bg); color: var(--ink); }
.legend { margin: 10px 0 0; }
.legend span { margin-right: 18px; }
.grid.charts { grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); }
"""

_TITLES = {
    "run": "Run",
    "params": "Parameters of the selected candidate",
    "holdout": "Test-set metrics",
    "cv": "Cross-validated metrics of the selected candidate",
    "resources": "Time, memory and cost (smaller is better)",
}


def _cell(value: object) -> str:
    if value is None:
        return "\u2014"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return fmt_number(value)


def _row(row: Row) -> str:
    name = metric_label(row.name) if row.section in METRIC_SECTIONS else row.name
    if row.greater_is_better is not None and row.section in METRIC_SECTIONS:
        name += " (higher is better)" if row.greater_is_better else " (lower is better)"
    cells = [tag("td", esc(name))]
    for index, value in enumerate(row.values):
        best = bool(row.best) and row.best[index]
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        css = " ".join(c for c in ("value", "num" if numeric else "", "best" if best else "") if c)
        cells.append(tag("td", esc(_cell(value)), css))
    return tag("tr", "".join(cells), "differs" if row.differs else None)


def _table(comparison: RunComparison) -> str:
    width = len(comparison.labels) + 1
    body: list[str] = []
    for section in SECTIONS:
        rows = comparison.section(section)
        if not rows:
            continue
        body.append(tag("tr", tag("th", esc(_TITLES[section]), colspan=str(width)), "section"))
        body.extend(_row(row) for row in rows)
    headers = [("field", ""), *((label, "num") for label in comparison.labels)]
    return table(headers, body, "compare")


def _charts(comparison: RunComparison) -> str:
    cards = []
    for section in METRIC_SECTIONS:
        for row in comparison.section(section):
            bars = [
                svg.Bar(label, float(value), fmt_number(value))
                for label, value in zip(comparison.labels, row.values, strict=True)
                if isinstance(value, int | float) and not isinstance(value, bool)
            ]
            title = f"{metric_label(row.name)} ({'test set' if section == 'holdout' else 'CV'})"
            chart = svg.bar_chart(bars, label=f"{title} by run", label_width=80)
            direction = ""
            if row.greater_is_better is not None:
                direction = "higher is better" if row.greater_is_better else "lower is better"
            cards.append(
                tag(
                    "div", tag("h3", esc(title)) + chart + tag("p", esc(direction), "muted"), "card"
                )
            )
    if not cards:
        return tag("p", "No run has metrics to chart.", "muted")
    return tag("div", "".join(cards), "grid charts")


def render_comparison_html(comparison: RunComparison) -> str:
    """The page: a header naming the runs, the table, the charts."""
    title = "Runs " + " vs ".join(comparison.labels)
    header = tag("h1", esc(title)) + tag(
        "p",
        esc(f"{len(comparison.runs)} runs: " + ", ".join(comparison.runs)),
        "subtitle muted",
    )
    legend = tag(
        "p",
        tag("span", "Highlighted rows differ between runs.")
        + tag("span", "\u2605 marks the best value of a row."),
        "legend muted",
    )
    body = (
        header
        + legend
        + tag("section", tag("h2", "Side by side") + _table(comparison), id="table")
        + tag("section", tag("h2", "Metrics") + _charts(comparison), id="charts")
    )
    return document(title, body, _CSS)


def write_comparison(directory: Path, comparison: RunComparison) -> tuple[Path, Path]:
    """Write ``compare-<ids>.json`` and ``.html`` into ``directory``; return both paths."""
    name = "compare-" + "-".join(comparison.labels)
    return write_report_pair(
        directory, name, comparison.as_dict(), render_comparison_html(comparison)
    )
