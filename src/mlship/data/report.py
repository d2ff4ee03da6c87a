"""The data report: a profile (and a validation result) as JSON for machines and HTML for people.

The HTML is one self-contained file: inline CSS, inline SVG charts, no script, no font or image to
fetch. It has to open years later, offline, from a CI artifact or a mail attachment, and it must not
call home. Every value shown comes from user data (column names, category values, file paths,
check examples) and is escaped.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mlship.data.dataset_profile import ColumnProfile, DatasetProfile, Histogram
from mlship.data.profile import QUANTILES
from mlship.html import svg
from mlship.html.page import (
    check_report_name,
    document,
    esc,
    fmt_number,
    fmt_share,
    fmt_time,
    table,
    tag,
    write_report_pair,
)

__all__ = ["fmt_number", "fmt_share", "fmt_time", "render_html", "write_report"]

_EXAMPLES_SHOWN = 5
_SOURCE_FIRST = ("name", "kind", "path", "rows")

_CSS = """
.meter {
  position: relative; height: 8px; border-radius: 4px; background: var(--line); margin-top: 8px;
}
.meter .fill {
  position: absolute; left: 0; top: 0; bottom: 0; border-radius: 4px; background: var(--ok);
}
.meter.over .fill { background: var(--error); }
.meter .limit { position: absolute; top: -4px; bottom: -4px; width: 2px; background: var(--ink); }
tr.clean td { color: var(--muted); }
ul.examples { margin: 0; padding-left: 16px; }
ul.examples li { word-break: break-word; }
.card .dtype { color: var(--muted); font-size: 12px; }
dl.stats {
  display: grid; grid-template-columns: auto 1fr auto 1fr; gap: 3px 10px; margin: 0;
  font-size: 13px;
}
dl.stats dt { color: var(--muted); }
dl.stats dd { margin: 0; font-variant-numeric: tabular-nums; word-break: break-word; }
table.quantiles { font-size: 11px; font-variant-numeric: tabular-nums; }
table.quantiles th, table.quantiles td { padding: 3px 5px; text-align: right; white-space: nowrap; }
"""


# -- summary header --------------------------------------------------------------------------


def _tile(label: str, value: str, extra: str = "", css: str = "tile") -> str:
    return tag("div", tag("div", esc(label), "label") + tag("div", esc(value), "big") + extra, css)


def _meter(share: float, limit: float) -> str:
    scale = max(share, limit, 1e-9) * 1.25
    fill = min(share / scale, 1.0) * 100
    mark = min(limit / scale, 1.0) * 100
    css = "meter over" if share > limit else "meter"
    return (
        f'<div class="{css}"><div class="fill" style="width: {fill:.1f}%"></div>'
        f'<div class="limit" style="left: {mark:.1f}%" title="limit"></div></div>'
    )


def _quarantine_tile(validation: dict[str, Any]) -> str:
    rows = validation.get("rows", {})
    rows_in, quarantined = rows.get("in") or 0, rows.get("quarantined") or 0
    share = quarantined / rows_in if rows_in else 0.0
    limit = float(validation.get("max_quarantine") or 0.0)
    note = tag(
        "div",
        f"{esc(fmt_share(share))} of rows \u00b7 limit {esc(fmt_share(limit))}",
        "muted",
    )
    return _tile("Quarantined", fmt_number(quarantined), note + _meter(share, limit), "tile wide")


def _summary(title: str, profile: DatasetProfile, validation: dict[str, Any] | None) -> str:
    badge = ""
    tiles: list[str] = []
    if validation is not None:
        passed = bool(validation.get("passed"))
        badge = tag(
            "span", "passed" if passed else "failed", "badge pass" if passed else "badge fail"
        )
        rows = validation.get("rows", {})
        tiles += [_tile("Rows in", fmt_number(rows.get("in"))), _quarantine_tile(validation)]
        tiles += [_tile("Warned", fmt_number(rows.get("warned")))]
        tiles += [_tile("Rows out", fmt_number(rows.get("out")))]
    else:
        tiles.append(_tile("Rows", fmt_number(profile.rows)))
    tiles.append(_tile("Columns", fmt_number(len(profile.columns))))
    heading = tag("div", tag("h1", esc(title)) + badge, "title-row")
    path = (validation or {}).get("quarantine_path")
    where = tag("p", "Quarantined rows: " + tag("code", esc(path)), "muted") if path else ""
    return tag("header", heading + tag("div", "".join(tiles), "tiles") + where)


# -- checks and sources ----------------------------------------------------------------------


def _severity(check: dict[str, Any]) -> str:
    failed = check.get("failed") or 0
    if not failed:
        return tag("span", "ok", "pill ok")
    severity = "warn" if check.get("severity") == "warn" else "error"
    return tag("span", severity, f"pill {severity}")


def _examples(examples: Sequence[Any], failed: int) -> str:
    if not examples:
        return ""
    items = "".join(tag("li", esc(example)) for example in examples[:_EXAMPLES_SHOWN])
    hidden = max(failed, len(examples)) - min(len(examples), _EXAMPLES_SHOWN)
    more = tag("li", f"\u2026 and {hidden:,} more", "muted") if hidden > 0 else ""
    return tag("ul", items + more, "examples")


def _check_row(check: dict[str, Any]) -> str:
    failed = int(check.get("failed") or 0)
    column = check.get("column")
    cells = [
        tag("td", tag("code", esc(column)) if column is not None else tag("em", "table")),
        tag("td", esc(check.get("check", ""))),
        tag("td", _severity(check)),
        tag("td", esc(fmt_number(failed)), "num"),
        tag("td", _examples(check.get("examples") or [], failed)),
    ]
    return tag("tr", "".join(cells), None if failed else "clean")


def _declared_row(check: dict[str, Any], examples: Sequence[Any]) -> str:
    failed = int(check.get("failed") or 0)
    passed = bool(check.get("passed"))
    column = check.get("column")
    if passed:
        result = tag("span", "passed", "pill ok")
    else:
        severity = "warn" if check.get("severity") == "warn" else "error"
        result = tag("span", "failed" if severity == "error" else "warn", f"pill {severity}")
    detail = tag("div", esc(check.get("detail") or ""), "muted") if check.get("detail") else ""
    cells = [
        tag("td", tag("code", esc(column)) if column is not None else tag("em", "table")),
        tag("td", esc(check.get("check", ""))),
        tag("td", result),
        tag("td", esc(fmt_number(check.get("tested"))), "num"),
        tag("td", esc(fmt_number(failed)), "num"),
        tag("td", detail + _examples(examples, failed)),
    ]
    return tag("tr", "".join(cells), "clean" if passed and not failed else None)


def _checks_section(validation: dict[str, Any]) -> str:
    """Every declared check with the rows it tested and failed, then what else was found
    (values of the wrong type, duplicate keys) that no declared check accounts for."""
    checks = validation.get("checks") or []
    declared = validation.get("declared") or []
    parts = [tag("h2", "Checks")]
    if declared:
        found = {(c.get("column"), c.get("check")): c for c in checks}
        headers = [
            ("Column", ""),
            ("Check", ""),
            ("Result", ""),
            ("Tested", "num"),
            ("Failed", "num"),
            ("Details", ""),
        ]
        rows = (
            _declared_row(c, found.get((c.get("column"), c.get("check")), {}).get("examples", []))
            for c in declared
        )
        parts.append(table(headers, rows))
        listed = {(c.get("column"), c.get("check")) for c in declared}
        checks = [c for c in checks if (c.get("column"), c.get("check")) not in listed]
    if checks:
        headers = [
            ("Column", ""),
            ("Check", ""),
            ("Result", ""),
            ("Failed", "num"),
            ("Examples", ""),
        ]
        if declared:
            parts.append(tag("h3", "Other problems found"))
        parts.append(table(headers, (_check_row(check) for check in checks)))
    if not declared and not checks:
        parts.append(tag("p", "No checks were declared.", "muted"))
    parts.append(_duplicates_part(validation.get("duplicates") or []))
    return tag("section", "".join(parts), id="checks")


def _duplicates_part(duplicates: Sequence[dict[str, Any]]) -> str:
    """Per source with a key: exact copies collapsed, conflicting keys and what became of them."""
    if not duplicates:
        return ""
    headers = [
        ("Source", ""),
        ("Key", ""),
        ("on_duplicate", ""),
        ("Rows", "num"),
        ("Exact copies collapsed", "num"),
        ("Conflicting keys", "num"),
        ("Outcome", ""),
        ("Rows quarantined", "num"),
        ("Rows dropped", "num"),
    ]
    rows = (
        tag(
            "tr",
            "".join(
                [
                    tag("td", esc(d.get("source", ""))),
                    tag("td", tag("code", esc(", ".join(d.get("key") or [])))),
                    tag("td", esc(d.get("policy", ""))),
                    tag("td", esc(fmt_number(d.get("rows"))), "num"),
                    tag("td", esc(fmt_number(d.get("exact_copies"))), "num"),
                    tag("td", esc(fmt_number(d.get("conflicting_keys"))), "num"),
                    tag("td", esc(d.get("outcome", "") if d.get("conflicting_keys") else "-")),
                    tag("td", esc(fmt_number(d.get("quarantined_rows"))), "num"),
                    tag("td", esc(fmt_number(d.get("dropped_rows"))), "num"),
                ]
            ),
        )
        for d in duplicates
    )
    return tag("h3", "Duplicate keys") + table(headers, rows)


def _cell(key: str, value: Any) -> str:
    if isinstance(value, dict | list):
        return tag("td", tag("code", esc(json.dumps(value, default=str))))
    if key == "rows" or (isinstance(value, int | float) and not isinstance(value, bool)):
        return tag("td", esc(fmt_number(value)), "num")
    return tag("td", esc("" if value is None else value), "path" if key == "path" else None)


def _source_keys(sources: Sequence[dict[str, Any]]) -> list[str]:
    present = {key for source in sources for key in source}
    keys = [key for key in _SOURCE_FIRST if key in present]
    for source in sources:
        keys += [key for key in source if key not in keys]
    return keys


def _sources_section(validation: dict[str, Any]) -> str:
    sources = [s for s in validation.get("sources") or [] if isinstance(s, dict)]
    parts = [tag("h2", "Sources")]
    if sources:
        keys = _source_keys(sources)
        headers = [(key, "num" if key == "rows" else "") for key in keys]
        rows = (tag("tr", "".join(_cell(k, source.get(k)) for k in keys)) for source in sources)
        parts.append(table(headers, rows))
    else:
        parts.append(tag("p", "No sources recorded.", "muted"))
    combine = validation.get("combine")
    if combine:
        text = json.dumps(combine, indent=2, default=str, ensure_ascii=False)
        parts.append(
            tag("details", tag("summary", "How sources were combined") + tag("pre", esc(text)))
        )
    parts.append(_undeclared_part(validation.get("undeclared") or {}))
    return tag("section", "".join(parts), id="sources")


def _undeclared_part(undeclared: dict[str, Any]) -> str:
    """The sources' columns the spec does not declare: which were left out, which inferred."""
    from mlship.data.undeclared import left_out_message

    parts = []
    if undeclared.get("left_out"):
        parts.append(tag("p", esc(left_out_message(undeclared["left_out"])), "warn"))
    inferred = undeclared.get("inferred") or []
    if inferred:
        parts.append(tag("h3", "Columns inferred from the data (columns: infer: true)"))
        rows = (
            tag(
                "tr",
                tag("td", esc(c["name"])) + tag("td", esc(c["type"])) + tag("td", esc(c["role"])),
            )
            for c in inferred
        )
        parts.append(table([("Column", ""), ("Type", ""), ("Role", "")], rows))
    return "".join(parts)


# -- columns ---------------------------------------------------------------------------------


def _anchor(index: int) -> str:
    # Anchors use the column's position: column names are user data and need not be valid ids.
    return f"col-{index}"


def _overview(columns: Sequence[ColumnProfile]) -> str:
    headers = [("Column", ""), ("Kind", ""), ("Type", ""), ("Missing", "num"), ("Distinct", "num")]
    rows = []
    for index, column in enumerate(columns):
        link = tag("a", esc(column.name), href=f"#{_anchor(index)}")
        cells = [
            tag("td", link),
            tag("td", esc(column.kind)),
            tag("td", tag("code", esc(column.dtype))),
            tag("td", esc(fmt_share(column.missing_share)), "num"),
            tag("td", esc(fmt_number(column.distinct)), "num"),
        ]
        rows.append(tag("tr", "".join(cells)))
    return tag("section", tag("h2", "Columns") + table(headers, rows), id="overview")


def _is_unit_bins(edges: Sequence[float]) -> bool:
    """Whether the bins are one per integer (edges at half-integers, one apart)."""
    return all(
        abs(high - low - 1.0) < 1e-9 and abs(low - math.floor(low) - 0.5) < 1e-9
        for low, high in itertools.pairwise(edges)
    )


def _numeric_chart(column: ColumnProfile, histogram: Histogram) -> str:
    edges = [float(edge) for edge in histogram.edges]
    counts = list(histogram.counts)
    name = f"histogram of {column.name}"
    if len(edges) == 2 and edges[0] == edges[1]:
        only = fmt_number(column.min)
        return svg.histogram(
            counts,
            first_label=only,
            last_label=only,
            label=name,
            tooltips=[f"{only}: {counts[0]:,}"],
        )
    if _is_unit_bins(edges):
        values = [fmt_number(round(low + 0.5)) for low in edges[:-1]]
        tips = [f"{value}: {count:,}" for value, count in zip(values, counts, strict=True)]
        return svg.histogram(
            counts, first_label=values[0], last_label=values[-1], tooltips=tips, label=name
        )
    tips = [
        f"{'[' if i == 0 else '('}{fmt_number(low)}, {fmt_number(high)}]: {count:,}"
        for i, (low, high, count) in enumerate(zip(edges, edges[1:], counts, strict=False))
    ]
    return svg.histogram(
        counts,
        first_label=fmt_number(edges[0]),
        last_label=fmt_number(edges[-1]),
        tooltips=tips,
        label=name,
    )


def _spans_days(edges: Sequence[str]) -> bool:
    try:
        first, last = datetime.fromisoformat(edges[0]), datetime.fromisoformat(edges[-1])
    except ValueError:
        return True
    return (last - first).total_seconds() >= 3 * 86400


def _datetime_chart(column: ColumnProfile, histogram: Histogram) -> str:
    edges, counts = [str(edge) for edge in histogram.edges], list(histogram.counts)
    shown = [fmt_time(edge, "minute") for edge in edges]
    labels = [fmt_time(edge, "day") for edge in edges] if _spans_days(edges) else shown
    tips = [f"{shown[i]} \u2013 {shown[i + 1]}: {count:,}" for i, count in enumerate(counts)]
    return svg.histogram(
        counts,
        first_label=labels[0],
        last_label=labels[-1],
        tooltips=tips,
        label=f"histogram of {column.name}",
    )


def _top_chart(column: ColumnProfile) -> str:
    present = column.count
    top = column.top
    if column.distinct == present and present > len(top):
        # An identifier: ten bars of one each would say less than this sentence.
        return svg.placeholder(f"all {fmt_number(present)} values are distinct")
    bars = [
        svg.Bar(
            label=item.value,
            value=item.count,
            note=f"{fmt_number(item.count)} \u00b7 {fmt_share(item.count / present)}",
        )
        for item in top
    ]
    return svg.bar_chart(bars, label=f"most frequent values of {column.name}")


def _boolean_chart(column: ColumnProfile) -> str:
    present = column.count
    bars = [
        svg.Bar(
            label=label,
            value=count,
            note=f"{fmt_number(count)} \u00b7 {fmt_share(count / present)}",
        )
        for label, count in (("true", column.true_count), ("false", column.false_count))
    ]
    return svg.bar_chart(bars, label=f"true and false values of {column.name}")


def _chart(column: ColumnProfile) -> str:
    """The one chart of a column card; a placeholder where there is nothing to draw."""
    kind = column.kind
    histogram = column.histogram
    if not column.count:
        return svg.placeholder("no values")
    if kind == "numeric" and histogram is not None and histogram.counts:
        return _numeric_chart(column, histogram)
    if kind == "datetime" and histogram is not None and histogram.counts:
        return _datetime_chart(column, histogram)
    if kind == "string":
        return _top_chart(column)
    if kind == "boolean":
        return _boolean_chart(column)
    return svg.placeholder(f"no chart for {column.dtype or 'this type'}")


def _stat_pairs(column: ColumnProfile) -> list[tuple[str, str]]:
    missing = f"{fmt_number(column.missing)} ({fmt_share(column.missing_share)})"
    pairs = [
        ("count", fmt_number(column.count)),
        ("missing", missing),
        ("distinct", fmt_number(column.distinct)),
    ]
    kind = column.kind
    if kind == "numeric":
        pairs += [
            ("min", fmt_number(column.min)),
            ("max", fmt_number(column.max)),
            ("mean", fmt_number(column.mean)),
            ("std", fmt_number(column.std)),
            ("zeros", fmt_number(column.zeros)),
        ]
        if column.infinite:
            pairs.append(("infinite", fmt_number(column.infinite)))
    elif kind == "string":
        pairs += [
            ("min length", fmt_number(column.min_length)),
            ("max length", fmt_number(column.max_length)),
            ("mean length", fmt_number(column.mean_length)),
        ]
    elif kind == "boolean":
        pairs += [
            ("true", fmt_number(column.true_count)),
            ("false", fmt_number(column.false_count)),
        ]
    elif kind == "datetime":
        pairs += [("min", fmt_time(_iso(column.min))), ("max", fmt_time(_iso(column.max)))]
    return pairs


def _iso(value: object) -> str | None:
    """A datetime column's bound as stored (ISO 8601 text)."""
    return None if value is None else str(value)


def _stats(column: ColumnProfile) -> str:
    items = "".join(
        tag("dt", esc(key)) + tag("dd", esc(value)) for key, value in _stat_pairs(column)
    )
    block = tag("dl", items, "stats")
    quantiles = column.quantiles
    if column.kind == "numeric" and quantiles and column.count:
        head = "".join(tag("th", esc(label)) for label in QUANTILES)
        body = "".join(tag("td", esc(fmt_number(quantiles.get(label)))) for label in QUANTILES)
        quantiles_table = f'<table class="quantiles"><tr>{head}</tr><tr>{body}</tr></table>'
        block += tag("div", quantiles_table, "scroll")
    return block


def _failed_checks(validation: dict[str, Any] | None) -> dict[str, int]:
    failures: dict[str, int] = {}
    for check in (validation or {}).get("checks") or []:
        column = check.get("column")
        if column is not None and check.get("failed"):
            failures[str(column)] = failures.get(str(column), 0) + 1
    return failures


def _card(index: int, column: ColumnProfile, failed_checks: int) -> str:
    header = tag("h3", esc(column.name)) + tag("span", esc(column.kind), "pill kind")
    header += tag("code", esc(column.dtype), "dtype")
    if failed_checks:
        label = f"{failed_checks} check{'s' if failed_checks > 1 else ''} failed"
        header += tag("a", tag("span", esc(label), "pill error"), href="#checks")
    body = tag("header", header) + _chart(column) + _stats(column)
    return tag("article", body, "card", id=_anchor(index))


def _columns_section(profile: DatasetProfile, validation: dict[str, Any] | None) -> str:
    failures = _failed_checks(validation)
    cards = [
        _card(index, column, failures.get(column.name, 0))
        for index, column in enumerate(profile.columns)
    ]
    return tag(
        "section", tag("h2", "Column details") + tag("div", "".join(cards), "grid"), id="columns"
    )


# -- the page --------------------------------------------------------------------------------


def render_html(
    title: str, profile: DatasetProfile, validation: dict[str, Any] | None = None
) -> str:
    """One self-contained HTML page: summary, checks and sources (with a validation), then a
    table of columns and one card per column with its statistics and a chart."""
    sections = [_summary(title, profile, validation)]
    if validation is not None:
        sections += [_checks_section(validation), _sources_section(validation)]
    columns = profile.columns
    if columns:
        sections += [_overview(columns), _columns_section(profile, validation)]
    footer = tag(
        "footer",
        f"mlship data report \u00b7 {esc(fmt_number(profile.rows))} rows \u00b7 "
        f"{esc(fmt_number(len(columns)))} columns",
    )
    return document(title, "".join(sections) + footer, _CSS)


def write_report(
    directory: Path,
    name: str,
    profile: DatasetProfile,
    validation: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``<name>.json`` (profile and validation) and ``<name>.html`` into ``directory``.

    Each file is written atomically (temporary file, fsync, rename), so a reader never sees half a
    report. The JSON refuses NaN and infinity, which are not JSON and which a profile never holds.
    """
    check_report_name(name)
    content = {"name": name, "profile": profile.to_json(), "validation": validation}
    return write_report_pair(directory, name, content, render_html(name, profile, validation))
