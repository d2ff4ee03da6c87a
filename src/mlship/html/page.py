"""What every mlship HTML report shares: the stylesheet, escaping, number formatting, the page
shell, and writing a report's JSON and HTML atomically side by side.

A report is one self-contained file: inline CSS, inline SVG charts, no script, no font or image to
fetch. It has to open years later, offline, from a CI artifact or a mail attachment, and it must not
call home. Most of what a report shows comes from user data (column names, class labels, file
paths), so every piece of text goes through :func:`esc`.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mlship.store.artifacts import atomic_write

BASE_CSS = """
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
.badge.warn { color: var(--warn); background: var(--warn-bg); }
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
svg.chart { display: block; width: 100%; height: auto; margin: 4px 0 10px; }
svg.chart .bar { fill: var(--accent); }
svg.chart .axis { stroke: var(--muted); }
svg.chart .grid { stroke: var(--line); }
svg.chart text { fill: var(--muted); }
svg.chart .value { fill: var(--ink); }
svg.chart .empty { stroke: var(--line); }
.scroll { overflow-x: auto; margin-top: 10px; }
details { margin-top: 12px; }
summary { cursor: pointer; color: var(--muted); }
pre {
  background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px;
  overflow-x: auto; font-size: 12px;
}
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
/* a title's subtitle, and a grid of key facts (a model's, a card's) */
.subtitle { margin: 6px 0 0; }
dl.facts {
  display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 10px 20px;
  margin: 18px 0 0; padding: 12px 16px; background: var(--card); border: 1px solid var(--line);
  border-radius: 10px;
}
dl.facts div { min-width: 0; }
dl.facts dt {
  color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
}
dl.facts dd { margin: 2px 0 0; word-break: break-all; }
"""


# -- escaping and markup ---------------------------------------------------------------------


def esc(value: Any) -> str:
    """``value`` as text that is safe inside an element and inside a quoted attribute."""
    return html.escape(str(value), quote=True)


def tag(name: str, content: str, css: str | None = None, **attributes: str) -> str:
    """One element around ``content`` (already markup); class and attribute values are escaped."""
    attrs = f' class="{esc(css)}"' if css else ""
    attrs += "".join(f' {key}="{esc(value)}"' for key, value in attributes.items())
    return f"<{name}{attrs}>{content}</{name}>"


def table(headers: Sequence[tuple[str, str]], rows: Iterable[str], css: str | None = None) -> str:
    """A table with one header row of ``(text, class)`` pairs and body rows given as markup."""
    head = "".join(tag("th", esc(text), cell or None) for text, cell in headers)
    attrs = f' class="{esc(css)}"' if css else ""
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def document(title: str, body: str, css: str = "") -> str:
    """A whole page: the shared stylesheet (then ``css``), ``title`` and ``body`` (markup)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{BASE_CSS}{css}</style></head>"
        f'<body><div class="page">{body}</div></body></html>\n'
    )


# -- numbers and times -----------------------------------------------------------------------


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


# -- writing ---------------------------------------------------------------------------------


def check_report_name(name: str) -> None:
    """Refuse a name that would put a report anywhere but in the directory asked for."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"a report name must be a plain file name, got {name!r}")


def write_report_pair(
    directory: Path, name: str, document_json: dict[str, Any], page: str
) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.html`` into ``directory``; return both paths.

    Each file is written atomically (temporary file, fsync, rename), so a reader never sees half a
    report. The JSON refuses NaN and infinity, which are not JSON: a report turns an undefined
    number into ``null`` before it gets here.
    """
    check_report_name(name)
    text = json.dumps(document_json, indent=2, allow_nan=False, ensure_ascii=False, default=str)
    json_path, html_path = directory / f"{name}.json", directory / f"{name}.html"
    atomic_write(json_path, [text.encode("utf-8")])
    atomic_write(html_path, [page.encode("utf-8")])
    return json_path, html_path
