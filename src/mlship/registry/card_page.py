"""A model card as Markdown (for a repository or a wiki) and as a self-contained HTML page.

Both carry the same sections in the same order: intended use, limitations (declared, then
measured), data lineage, metrics, fairness slices, notes. Descriptions, limitations and notes are
people's words and are shown as text: in the HTML page they are escaped and keep their line breaks
(a note's markdown is not turned into markup there, so nothing in a note can add a link, an image
or a script to the page).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlship.evaluation.slices import SMALL_SLICE, WORSE_BY, Slice, SliceReport
from mlship.html import svg
from mlship.html.page import check_report_name, document, esc, fmt_number, fmt_time, table, tag
from mlship.registry.card import ModelCard
from mlship.store.artifacts import atomic_write
from mlship.train.metrics import metric_label

_CSS = """
.prose { white-space: pre-wrap; margin: 0; }
ul.limits li { margin: 4px 0; }
td.flag, tr.flagged td:first-child { color: var(--warn); }
tr.flagged td { background: var(--warn-bg); }
td.worse { color: var(--error); font-weight: 700; }
.note { margin: 12px 0 0; }
.note header { color: var(--muted); font-size: 12px; }
.card.slice-chart { margin-top: 12px; }
.card.slice-chart svg.chart { max-width: 640px; }
"""

_NONE = "\u2014"


def card_name(card: ModelCard) -> str:
    """The files' common name: ``<model>-<version>-card``."""
    return f"{card.model}-{card.version}-card"


# -- markdown --------------------------------------------------------------------------------


def _md(value: Any) -> str:
    """A value for a Markdown table cell: pipes escaped, no line breaks."""
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        value = f"{value:.4f}"
    elif isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values()):
        value = ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "-"
    elif isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines.extend("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows)
    return [*lines, ""]


def _slice_flags(piece: Slice) -> str:
    flags = []
    if piece.worse:
        flags.append("worse: " + ", ".join(metric_label(m) for m in piece.worse))
    if piece.small:
        flags.append(f"fewer than {SMALL_SLICE} rows")
    return "; ".join(flags)


def render_card_markdown(card: ModelCard) -> str:
    """The card as a Markdown document."""
    lines = [f"# Model card: {card.ref}", ""]
    lines += [
        f"{card.task}, selected on {metric_label(card.metric)}. Generated {card.generated_at}."
    ]
    lines += [""]
    lines += _md_table(["field", "value"], [[k, v] for k, v in card.facts.items()])
    lines += ["## Intended use", "", card.intended_use or "Not stated in the spec.", ""]
    for title, text in (("Model", card.model_description), ("Version", card.version_description)):
        if text:
            lines += [f"**{title} description:** {text}", ""]
    lines += ["## Limitations", ""]
    if card.limitations:
        lines += ["Declared:", "", *(f"- {item}" for item in card.limitations), ""]
    if card.measured:
        lines += ["Measured:", "", *(f"- {item}" for item in card.measured), ""]
    if not card.limitations and not card.measured:
        lines += ["None declared, and none found in the measurements.", ""]
    lines += ["## Data lineage", ""]
    lineage = {k: v for k, v in card.lineage.items() if k != "sources"}
    lines += _md_table(["field", "value"], [[k, v] for k, v in lineage.items()])
    sources = card.lineage.get("sources") or []
    if sources:
        lines += _md_table(
            ["source", "kind", "where", "rows", "sha256"],
            [
                [s.get("name"), s.get("kind"), s.get("path") or s.get("url"), s.get("rows"),
                 s.get("sha256")]
                for s in sources
            ],
        )  # fmt: skip
    lines += ["## Metrics", ""]
    names = sorted({name for values in card.metrics.values() for name in values})
    splits = [split for split in ("cv", "holdout") if split in card.metrics]
    headers = ["metric", *("cross-validated" if s == "cv" else "test set" for s in splits)]
    lines += _md_table(
        headers, [[metric_label(n), *(card.metrics[s].get(n) for s in splits)] for n in names]
    )
    lines += _markdown_slices(card)
    if card.notes:
        lines += ["## Notes", ""]
        for note in card.notes:
            lines += [f"### {note.author}, {note.created_at}", "", note.body, ""]
    return "\n".join(lines).rstrip() + "\n"


def _markdown_slices(card: ModelCard) -> list[str]:
    lines = ["## Fairness slices", ""]
    report = card.slices
    if report is None:
        return [*lines, "No sensitive columns are declared (`card: {sensitive: [...]}`).", ""]
    lines += [_slices_intro(report), ""]
    headers = ["value", "rows", *(metric_label(m) for m in report.metrics), "flags"]
    for column in report.columns:
        rows: list[list[Any]] = [
            ["(all test rows)", report.rows, *(report.overall[m] for m in report.metrics), ""]
        ]
        rows += [
            [p.value, p.rows, *(p.metrics[m] for m in report.metrics), _slice_flags(p)]
            for p in report.of(column)
        ]
        lines += [f"### {column}", "", *_md_table(headers, rows)]
    return lines


def _slices_intro(report: SliceReport) -> str:
    return (
        f"Test-set metrics per value of each sensitive column ({report.rows} test rows). A slice "
        f"is flagged when a metric is more than {WORSE_BY} worse than overall (5% for errors in "
        f"the target's units) or when it has fewer than {SMALL_SLICE} rows."
    )


# -- HTML ------------------------------------------------------------------------------------


def _value(value: Any) -> str:
    if value is None or value == "":
        return _NONE
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or _NONE
    if isinstance(value, list):
        return json.dumps(value)
    return fmt_number(value)


def _facts(items: dict[str, Any]) -> str:
    cells = "".join(
        tag("div", tag("dt", esc(k)) + tag("dd", esc(_value(v)))) for k, v in items.items()
    )
    return tag("dl", cells, "facts")


def _prose(text: str) -> str:
    return tag("p", esc(text), "prose")


def _limitations(card: ModelCard) -> str:
    parts = []
    if card.limitations:
        items = "".join(tag("li", esc(item)) for item in card.limitations)
        parts.append(tag("h3", "Declared") + tag("ul", items, "limits"))
    if card.measured:
        items = "".join(tag("li", esc(item)) for item in card.measured)
        parts.append(tag("h3", "Measured") + tag("ul", items, "limits"))
    if not parts:
        parts.append(tag("p", "None declared, and none found in the measurements.", "muted"))
    return "".join(parts)


def _lineage(card: ModelCard) -> str:
    lineage = {k: v for k, v in card.lineage.items() if k != "sources"}
    html = _facts(lineage)
    sources = card.lineage.get("sources") or []
    if sources:
        rows = [
            tag("tr", "".join([
                tag("td", esc(_value(s.get("name")))),
                tag("td", esc(_value(s.get("kind")))),
                tag("td", esc(_value(s.get("path") or s.get("url"))), "path"),
                tag("td", esc(_value(s.get("rows"))), "num"),
                tag("td", esc(_value(s.get("sha256"))), "path"),
            ]))
            for s in sources
        ]  # fmt: skip
        headers = [("source", ""), ("kind", ""), ("where", ""), ("rows", "num"), ("sha256", "")]
        html += tag("h3", "Sources") + table(headers, rows)
    return html


def _metrics(card: ModelCard) -> str:
    names = sorted({name for values in card.metrics.values() for name in values})
    splits = [split for split in ("cv", "holdout") if split in card.metrics]
    headers = [
        ("metric", ""),
        *(("cross-validated" if s == "cv" else "test set", "num") for s in splits),
    ]
    rows = [
        tag("tr", tag("td", esc(metric_label(n))) + "".join(
            tag("td", esc(_value(card.metrics[s].get(n))), "num") for s in splits
        ))
        for n in names
    ]  # fmt: skip
    return table(headers, rows)


def _slice_table(report: SliceReport, column: str) -> str:
    headers = [("value", ""), ("rows", "num"), *((metric_label(m), "num") for m in report.metrics)]
    headers.append(("flags", ""))
    overall = tag(
        "tr",
        tag("td", "(all test rows)")
        + tag("td", esc(fmt_number(report.rows)), "num")
        + "".join(tag("td", esc(_value(report.overall[m])), "num") for m in report.metrics)
        + tag("td", ""),
    )
    rows = [overall]
    for piece in report.of(column):
        cells = tag("td", esc(piece.value)) + tag("td", esc(fmt_number(piece.rows)), "num")
        for metric in report.metrics:
            css = "num worse" if metric in piece.worse else "num"
            cells += tag("td", esc(_value(piece.metrics[metric])), css)
        cells += tag("td", esc(_slice_flags(piece)), "flag")
        rows.append(tag("tr", cells, "flagged" if piece.flagged else None))
    return table(headers, rows, "slices")


def _slice_chart(report: SliceReport, column: str) -> str:
    bars = [
        svg.Bar(p.value, p.metrics[report.metric] or 0.0, _value(p.metrics[report.metric]),
                tooltip=f"{column} = {p.value}: {p.rows} rows")
        for p in report.of(column)
    ]  # fmt: skip
    label = f"{metric_label(report.metric)} by {column}"
    return svg.bar_chart(bars, label=label, width=420, label_width=140)


def _fairness(card: ModelCard) -> str:
    report = card.slices
    if report is None:
        return tag(
            "p",
            "No sensitive columns are declared; add <code>card: {sensitive: [...]}</code> to the "
            "spec for metrics per group.",
            "muted",
        )
    parts = [tag("p", esc(_slices_intro(report)), "muted")]
    for column in report.columns:
        parts.append(tag("h3", esc(column)))
        parts.append(_slice_table(report, column))
        overall = _value(report.overall[report.metric])
        caption = f"overall {metric_label(report.metric)}: {overall}"
        parts.append(
            tag(
                "div",
                _slice_chart(report, column) + tag("p", esc(caption), "muted"),
                "card slice-chart",
            )
        )
    return "".join(parts)


def _notes(card: ModelCard) -> str:
    if not card.notes:
        return tag("p", "No notes on this version.", "muted")
    return "".join(
        tag("div", tag("header", esc(f"{n.author}, {fmt_time(n.created_at)}")) + _prose(n.body),
            "card note")
        for n in card.notes
    )  # fmt: skip


def render_card_html(card: ModelCard) -> str:
    """The card as one self-contained HTML page."""
    title = f"Model card: {card.ref}"
    subtitle = (
        f"{card.task}, selected on {metric_label(card.metric)}; generated "
        f"{fmt_time(card.generated_at)} from the registry, the run and its dataset."
    )
    intended = (
        _prose(card.intended_use)
        if card.intended_use
        else tag("p", "Not stated in the spec (<code>card: {intended_use: ...}</code>).", "muted")
    )
    for label, text in (("Model", card.model_description), ("Version", card.version_description)):
        if text:
            intended += tag("h3", f"{label} description") + _prose(text)
    sections = [
        ("use", "Intended use", intended),
        ("limitations", "Limitations", _limitations(card)),
        ("lineage", "Data lineage", _lineage(card)),
        ("metrics", "Metrics", _metrics(card)),
        ("fairness", "Fairness slices", _fairness(card)),
        ("notes", "Notes", _notes(card)),
    ]
    body = tag("h1", esc(title)) + tag("p", esc(subtitle), "subtitle muted") + _facts(card.facts)
    body += "".join(tag("section", tag("h2", esc(h)) + html, id=key) for key, h, html in sections)
    return document(title, body, _CSS)


def write_card(directory: Path, card: ModelCard) -> tuple[Path, Path]:
    """Write ``<model>-<version>-card.md`` and ``.html`` into ``directory``, each atomically."""
    name = card_name(card)
    check_report_name(name)
    md_path, html_path = directory / f"{name}.md", directory / f"{name}.html"
    atomic_write(md_path, [render_card_markdown(card).encode("utf-8")])
    atomic_write(html_path, [render_card_html(card).encode("utf-8")])
    return md_path, html_path
