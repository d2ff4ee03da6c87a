"""The data report: a profile (and a validation result) as JSON for machines and HTML for people.

The HTML is one self-contained file: inline CSS, inline SVG charts, no script, no font or image to
fetch. It has to open years later, offline, from a CI artifact or a mail attachment, and it must not
call home. Every value shown comes from user data (column names, category values, file paths,
check examples) and is escaped.
"""

from __future__ import annotations

import html
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mlship.data import svg
from mlship.data.profile import QUANTILES
from mlship.store.artifacts import atomic_write

_EXAMPLES_SHOWN = 5
_SOURCE_FIRST = ("name", "kind", "path", "rows")

_CSS = """
:root {
  --bg: #f5f6f8; --card: #ffffff; --ink: #1d2127; --muted: #5f6670; --line: #e2e5ea;
  --accent: #4c78a8; --ok: #1f7a3d; --ok-bg: #e3f4e8; --warn: #8a5a00; --warn-bg: #fdf0d5;
  --error: #b3261e; --error-bg: #fbe4e2;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #15181d; --card: #1e232a; --ink: #e6e8eb; --muted: #9aa3ad; --line: #313843;
    --accent: #7aa6d6; --ok: #7fd49b; --ok-bg: #1d3526; --warn: #f0c060; --warn-bg: #3a2f14;
    --error: #ff8a80; --error-bg: #3d1f1d;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", sans-serif;
}
.page { max-width: 1280px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 24px; margin: 0; word-break: break-word; }
h2 { font-size: 17px; margin: 32px 0 12px; }
h3 { font-size: 15px; margin: 0; word-break: break-all; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.muted { color: var(--muted); }
.title-row { display: flex; align-items: center; gap: 14px; flex-wrap: wrap; }
.badge {
  display: inline-block; padding: 3px 12px; border-radius: 999px; font-weight: 700;
  font-size: 13px; letter-spacing: .04em; text-transform: uppercase;
}
.badge.pass { color: var(--ok); background: var(--ok-bg); }
.badge.fail { color: var(--error); background: var(--error-bg); }
.tiles {
  display: grid; gap: 12px; margin-top: 18px;
  grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));
}
.tile {
  background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px;
}
.tile .label {
  color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
}
.tile .big { font-size: 22px; font-weight: 650; margin-top: 2px; }
.tile.wide { grid-column: span 2; }
.meter {
  position: relative; height: 8px; border-radius: 4px; background: var(--line); margin-top: 8px;
}
.meter .fill {
  position: absolute; left: 0; top: 0; bottom: 0; border-radius: 4px; background: var(--ok);
}
.meter.over .fill { background: var(--error); }
.meter .limit { position: absolute; top: -4px; bottom: -4px; width: 2px; background: var(--ink); }
table {
  width: 100%; border-collapse: separate; border-spacing: 0; background: var(--card);
  border: 1px solid var(--line); border-radius: 10px; overflow: hidden;
}
th, td {
  text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top;
}
th { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
tbody tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.path { word-break: break-all; }
tr.clean td { color: var(--muted); }
ul.examples { margin: 0; padding-left: 16px; }
ul.examples li { word-break: break-word; }
.pill {
  display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600;
}
.pill.error { color: var(--error); background: var(--error-bg); }
.pill.warn { color: var(--warn); background: var(--warn-bg); }
.pill.ok { color: var(--ok); background: var(--ok-bg); }
.pill.kind { color: var(--muted); background: var(--bg); border: 1px solid var(--line); }
.grid { display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); }
.card {
  background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 14px 16px;
}
.card header {
  display: flex; align-items: baseline; gap: 8px; flex-wrap: wrap; margin-bottom: 10px;
}
.card .dtype { color: var(--muted); font-size: 12px; }
svg.chart { display: block; width: 100%; height: auto; margin: 4px 0 10px; }
svg.chart .bar { fill: var(--accent); }
svg.chart .axis { stroke: var(--muted); }
svg.chart text { fill: var(--muted); }
svg.chart .value { fill: var(--ink); }
svg.chart .empty { stroke: var(--line); }
dl.stats {
  display: grid; grid-template-columns: auto 1fr auto 1fr; gap: 3px 10px; margin: 0;
  font-size: 13px;
}
dl.stats dt { color: var(--muted); }
dl.stats dd { margin: 0; font-variant-numeric: tabular-nums; word-break: break-word; }
.scroll { overflow-x: auto; margin-top: 10px; }
table.quantiles { font-size: 11px; font-variant-numeric: tabular-nums; }
table.quantiles th, table.quantiles td { padding: 3px 5px; text-align: right; white-space: nowrap; }
details { margin-top: 12px; }
summary { cursor: pointer; color: var(--muted); }
pre {
  background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px;
  overflow-x: auto; font-size: 12px;
}
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""


# -- formatting ------------------------------------------------------------------------------


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt_float(value: float) -> str:
    magnitude = abs(value)
    if magnitude == 0 or not math.isfinite(value):
        return "0" if magnitude == 0 else str(value)
    if magnitude >= 1e12 or magnitude < 1e-4:
        return f"{value:.4g}"
    decimals = min(max(4 - math.floor(math.log10(magnitude)), 0), 6)
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_number(value: Any) -> str:
    """A number as a person reads it: thousands separators, about five significant digits."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return _fmt_float(value)
    return str(value)


def fmt_share(share: Any) -> str:
    """A share as a percentage; a tiny non-zero share is not rounded to a misleading 0%."""
    if not isinstance(share, int | float) or isinstance(share, bool):
        return "\u2014"
    if 0 < share < 0.001:
        return "<0.1%"
    return f"{share * 100:.1f}%"


_TIME_FORMATS = {"day": "%Y-%m-%d", "minute": "%Y-%m-%d %H:%M", "second": "%Y-%m-%d %H:%M:%S"}


def fmt_time(text: str | None, precision: str = "second") -> str:
    """An ISO timestamp shortened for reading (``day``, ``minute`` or ``second``) with its zone."""
    if not text:
        return "\u2014"
    if len(text) == 10:
        return text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    shown = moment.strftime(_TIME_FORMATS[precision])
    zone = moment.tzname()
    return f"{shown} {zone}" if zone and precision != "day" else shown


def _tag(name: str, content: str, css: str | None = None, **attributes: str) -> str:
    attrs = f' class="{_esc(css)}"' if css else ""
    attrs += "".join(f' {key}="{_esc(value)}"' for key, value in attributes.items())
    return f"<{name}{attrs}>{content}</{name}>"


def _table(headers: Sequence[tuple[str, str]], rows: Iterable[str]) -> str:
    head = "".join(_tag("th", _esc(text), css or None) for text, css in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


# -- summary header --------------------------------------------------------------------------


def _tile(label: str, value: str, extra: str = "", css: str = "tile") -> str:
    return _tag(
        "div", _tag("div", _esc(label), "label") + _tag("div", _esc(value), "big") + extra, css
    )


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
    note = _tag(
        "div",
        f"{_esc(fmt_share(share))} of rows \u00b7 limit {_esc(fmt_share(limit))}",
        "muted",
    )
    return _tile("Quarantined", fmt_number(quarantined), note + _meter(share, limit), "tile wide")


def _summary(title: str, profile: dict[str, Any], validation: dict[str, Any] | None) -> str:
    badge = ""
    tiles: list[str] = []
    if validation is not None:
        passed = bool(validation.get("passed"))
        badge = _tag(
            "span", "passed" if passed else "failed", "badge pass" if passed else "badge fail"
        )
        rows = validation.get("rows", {})
        tiles += [_tile("Rows in", fmt_number(rows.get("in"))), _quarantine_tile(validation)]
        tiles += [_tile("Warned", fmt_number(rows.get("warned")))]
        tiles += [_tile("Rows out", fmt_number(rows.get("out")))]
    else:
        tiles.append(_tile("Rows", fmt_number(profile.get("rows"))))
    tiles.append(_tile("Columns", fmt_number(len(profile.get("columns", [])))))
    heading = _tag("div", _tag("h1", _esc(title)) + badge, "title-row")
    path = (validation or {}).get("quarantine_path")
    where = _tag("p", "Quarantined rows: " + _tag("code", _esc(path)), "muted") if path else ""
    return _tag("header", heading + _tag("div", "".join(tiles), "tiles") + where)


# -- checks and sources ----------------------------------------------------------------------


def _severity(check: dict[str, Any]) -> str:
    failed = check.get("failed") or 0
    if not failed:
        return _tag("span", "ok", "pill ok")
    severity = "warn" if check.get("severity") == "warn" else "error"
    return _tag("span", severity, f"pill {severity}")


def _examples(examples: Sequence[Any], failed: int) -> str:
    if not examples:
        return ""
    items = "".join(_tag("li", _esc(example)) for example in examples[:_EXAMPLES_SHOWN])
    hidden = max(failed, len(examples)) - min(len(examples), _EXAMPLES_SHOWN)
    more = _tag("li", f"\u2026 and {hidden:,} more", "muted") if hidden > 0 else ""
    return _tag("ul", items + more, "examples")


def _check_row(check: dict[str, Any]) -> str:
    failed = int(check.get("failed") or 0)
    column = check.get("column")
    cells = [
        _tag("td", _tag("code", _esc(column)) if column is not None else _tag("em", "table")),
        _tag("td", _esc(check.get("check", ""))),
        _tag("td", _severity(check)),
        _tag("td", _esc(fmt_number(failed)), "num"),
        _tag("td", _examples(check.get("examples") or [], failed)),
    ]
    return _tag("tr", "".join(cells), None if failed else "clean")


def _checks_section(validation: dict[str, Any]) -> str:
    checks = validation.get("checks") or []
    if not checks:
        body = _tag("p", "No checks were declared.", "muted")
    else:
        headers = [
            ("Column", ""),
            ("Check", ""),
            ("Result", ""),
            ("Failed", "num"),
            ("Examples", ""),
        ]
        body = _table(headers, (_check_row(check) for check in checks))
    return _tag("section", _tag("h2", "Checks") + body, id="checks")


def _cell(key: str, value: Any) -> str:
    if isinstance(value, dict | list):
        return _tag("td", _tag("code", _esc(json.dumps(value, default=str))))
    if key == "rows" or (isinstance(value, int | float) and not isinstance(value, bool)):
        return _tag("td", _esc(fmt_number(value)), "num")
    return _tag("td", _esc("" if value is None else value), "path" if key == "path" else None)


def _source_keys(sources: Sequence[dict[str, Any]]) -> list[str]:
    present = {key for source in sources for key in source}
    keys = [key for key in _SOURCE_FIRST if key in present]
    for source in sources:
        keys += [key for key in source if key not in keys]
    return keys


def _sources_section(validation: dict[str, Any]) -> str:
    sources = [s for s in validation.get("sources") or [] if isinstance(s, dict)]
    parts = [_tag("h2", "Sources")]
    if sources:
        keys = _source_keys(sources)
        headers = [(key, "num" if key == "rows" else "") for key in keys]
        rows = (_tag("tr", "".join(_cell(k, source.get(k)) for k in keys)) for source in sources)
        parts.append(_table(headers, rows))
    else:
        parts.append(_tag("p", "No sources recorded.", "muted"))
    combine = validation.get("combine")
    if combine:
        text = json.dumps(combine, indent=2, default=str, ensure_ascii=False)
        parts.append(
            _tag("details", _tag("summary", "How sources were combined") + _tag("pre", _esc(text)))
        )
    return _tag("section", "".join(parts), id="sources")


# -- columns ---------------------------------------------------------------------------------


def _anchor(index: int) -> str:
    # Anchors use the column's position: column names are user data and need not be valid ids.
    return f"col-{index}"


def _overview(columns: Sequence[dict[str, Any]]) -> str:
    headers = [("Column", ""), ("Kind", ""), ("Type", ""), ("Missing", "num"), ("Distinct", "num")]
    rows = []
    for index, column in enumerate(columns):
        link = _tag("a", _esc(column["name"]), href=f"#{_anchor(index)}")
        cells = [
            _tag("td", link),
            _tag("td", _esc(column.get("kind", ""))),
            _tag("td", _tag("code", _esc(column.get("dtype", "")))),
            _tag("td", _esc(fmt_share(column.get("missing_share"))), "num"),
            _tag("td", _esc(fmt_number(column.get("distinct"))), "num"),
        ]
        rows.append(_tag("tr", "".join(cells)))
    return _tag("section", _tag("h2", "Columns") + _table(headers, rows), id="overview")


def _is_unit_bins(edges: Sequence[float]) -> bool:
    """Whether the bins are one per integer (edges at half-integers, one apart)."""
    return all(
        abs(high - low - 1.0) < 1e-9 and abs(low - math.floor(low) - 0.5) < 1e-9
        for low, high in itertools.pairwise(edges)
    )


def _numeric_chart(column: dict[str, Any]) -> str:
    edges, counts = column["histogram"]["edges"], column["histogram"]["counts"]
    name = f"histogram of {column['name']}"
    if len(edges) == 2 and edges[0] == edges[1]:
        only = fmt_number(column.get("min"))
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


def _datetime_chart(column: dict[str, Any]) -> str:
    edges, counts = column["histogram"]["edges"], column["histogram"]["counts"]
    shown = [fmt_time(edge, "minute") for edge in edges]
    labels = [fmt_time(edge, "day") for edge in edges] if _spans_days(edges) else shown
    tips = [f"{shown[i]} \u2013 {shown[i + 1]}: {count:,}" for i, count in enumerate(counts)]
    return svg.histogram(
        counts,
        first_label=labels[0],
        last_label=labels[-1],
        tooltips=tips,
        label=f"histogram of {column['name']}",
    )


def _top_chart(column: dict[str, Any]) -> str:
    present = column.get("count") or 0
    top = column.get("top", [])
    if column.get("distinct") == present and present > len(top):
        # An identifier: ten bars of one each would say less than this sentence.
        return svg.placeholder(f"all {fmt_number(present)} values are distinct")
    bars = [
        svg.Bar(
            label=str(item["value"]),
            value=item["count"],
            note=f"{fmt_number(item['count'])} \u00b7 {fmt_share(item['count'] / present)}",
        )
        for item in top
    ]
    return svg.bar_chart(bars, label=f"most frequent values of {column['name']}")


def _boolean_chart(column: dict[str, Any]) -> str:
    present = column.get("count") or 0
    bars = [
        svg.Bar(
            label=label,
            value=count,
            note=f"{fmt_number(count)} \u00b7 {fmt_share(count / present)}",
        )
        for label, count in (("true", column.get("true", 0)), ("false", column.get("false", 0)))
    ]
    return svg.bar_chart(bars, label=f"true and false values of {column['name']}")


def _chart(column: dict[str, Any]) -> str:
    """The one chart of a column card; a placeholder where there is nothing to draw."""
    kind = column.get("kind")
    if not column.get("count"):
        return svg.placeholder("no values")
    if kind == "numeric" and column.get("histogram", {}).get("counts"):
        return _numeric_chart(column)
    if kind == "datetime" and column.get("histogram", {}).get("counts"):
        return _datetime_chart(column)
    if kind == "string":
        return _top_chart(column)
    if kind == "boolean":
        return _boolean_chart(column)
    return svg.placeholder(f"no chart for {column.get('dtype', 'this type')}")


def _stat_pairs(column: dict[str, Any]) -> list[tuple[str, str]]:
    missing = f"{fmt_number(column.get('missing'))} ({fmt_share(column.get('missing_share'))})"
    pairs = [
        ("count", fmt_number(column.get("count"))),
        ("missing", missing),
        ("distinct", fmt_number(column.get("distinct"))),
    ]
    kind = column.get("kind")
    if kind == "numeric":
        pairs += [
            (key, fmt_number(column.get(key))) for key in ("min", "max", "mean", "std", "zeros")
        ]
        if column.get("infinite"):
            pairs.append(("infinite", fmt_number(column["infinite"])))
    elif kind == "string":
        pairs += [
            (f"{key} length", fmt_number(column.get(f"{key}_length")))
            for key in ("min", "max", "mean")
        ]
    elif kind == "boolean":
        pairs += [
            ("true", fmt_number(column.get("true"))),
            ("false", fmt_number(column.get("false"))),
        ]
    elif kind == "datetime":
        pairs += [("min", fmt_time(column.get("min"))), ("max", fmt_time(column.get("max")))]
    return pairs


def _stats(column: dict[str, Any]) -> str:
    items = "".join(
        _tag("dt", _esc(key)) + _tag("dd", _esc(value)) for key, value in _stat_pairs(column)
    )
    block = _tag("dl", items, "stats")
    quantiles = column.get("quantiles")
    if column.get("kind") == "numeric" and quantiles and column.get("count"):
        head = "".join(_tag("th", _esc(label)) for label in QUANTILES)
        body = "".join(_tag("td", _esc(fmt_number(quantiles.get(label)))) for label in QUANTILES)
        table = f'<table class="quantiles"><tr>{head}</tr><tr>{body}</tr></table>'
        block += _tag("div", table, "scroll")
    return block


def _failed_checks(validation: dict[str, Any] | None) -> dict[str, int]:
    failures: dict[str, int] = {}
    for check in (validation or {}).get("checks") or []:
        column = check.get("column")
        if column is not None and check.get("failed"):
            failures[str(column)] = failures.get(str(column), 0) + 1
    return failures


def _card(index: int, column: dict[str, Any], failed_checks: int) -> str:
    header = _tag("h3", _esc(column["name"])) + _tag(
        "span", _esc(column.get("kind", "")), "pill kind"
    )
    header += _tag("code", _esc(column.get("dtype", "")), "dtype")
    if failed_checks:
        label = f"{failed_checks} check{'s' if failed_checks > 1 else ''} failed"
        header += _tag("a", _tag("span", _esc(label), "pill error"), href="#checks")
    body = _tag("header", header) + _chart(column) + _stats(column)
    return _tag("article", body, "card", id=_anchor(index))


def _columns_section(profile: dict[str, Any], validation: dict[str, Any] | None) -> str:
    failures = _failed_checks(validation)
    cards = [
        _card(index, column, failures.get(str(column["name"]), 0))
        for index, column in enumerate(profile.get("columns", []))
    ]
    return _tag(
        "section", _tag("h2", "Column details") + _tag("div", "".join(cards), "grid"), id="columns"
    )


# -- the page --------------------------------------------------------------------------------


def render_html(
    title: str, profile: dict[str, Any], validation: dict[str, Any] | None = None
) -> str:
    """One self-contained HTML page: summary, checks and sources (with a validation), then a
    table of columns and one card per column with its statistics and a chart."""
    sections = [_summary(title, profile, validation)]
    if validation is not None:
        sections += [_checks_section(validation), _sources_section(validation)]
    columns = profile.get("columns", [])
    if columns:
        sections += [_overview(columns), _columns_section(profile, validation)]
    footer = _tag(
        "footer",
        f"mlship data report \u00b7 {_esc(fmt_number(profile.get('rows')))} rows \u00b7 "
        f"{_esc(fmt_number(len(columns)))} columns",
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head>"
        f'<body><div class="page">{"".join(sections)}{footer}</div></body></html>\n'
    )


def _check_name(name: str) -> None:
    """Refuse a name that would put the report anywhere but in the directory asked for."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"a report name must be a plain file name, got {name!r}")


def write_report(
    directory: Path,
    name: str,
    profile: dict[str, Any],
    validation: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``<name>.json`` (profile and validation) and ``<name>.html`` into ``directory``.

    Each file is written atomically (temporary file, fsync, rename), so a reader never sees half a
    report. The JSON refuses NaN and infinity, which are not JSON and which a profile never holds.
    """
    _check_name(name)
    document = {"name": name, "profile": profile, "validation": validation}
    text = json.dumps(document, indent=2, allow_nan=False, ensure_ascii=False, default=str)
    json_path, html_path = directory / f"{name}.json", directory / f"{name}.html"
    atomic_write(json_path, [text.encode("utf-8")])
    atomic_write(html_path, [render_html(name, profile, validation).encode("utf-8")])
    return json_path, html_path
