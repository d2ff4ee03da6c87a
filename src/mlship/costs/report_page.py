"""``mlship cost report --html``: the cost report as one self-contained page.

Like every mlship report it is a single file with inline CSS and SVG charts, no script and
nothing to fetch, so it can be mailed or kept as a CI artifact and still open years later: the
cost per group, the cost per day of each kind, the storage per class, the month's forecast and
the table the terminal shows.
"""

from __future__ import annotations

import math
from datetime import UTC, timedelta
from pathlib import Path

from mlship.costs.items import RATE_DAYS, month_end
from mlship.costs.report import CostReport
from mlship.html.page import document, esc, fmt_number, fmt_share, fmt_time, table, tag
from mlship.html.svg import PALETTE, Axis, Bar, Series, bar_chart, line_chart, placeholder
from mlship.prices import GB
from mlship.store.artifacts import atomic_write


def amount(value: float) -> str:
    """An amount as the report prints it: four decimals, since a small workspace's costs are
    fractions of a cent a day; below a cent, three significant digits, so the cost of 1,000
    predictions (often a few thousandths of a cent) does not print as zero."""
    if value == 0 or abs(value) >= 0.01 or not math.isfinite(value):
        return f"{value:,.4f}"
    if abs(value) < 1e-6:  # a few bytes kept for an hour: no row of zeros
        return f"{value:.2e}"
    return f"{value:.{2 - math.floor(math.log10(abs(value)))}f}"


def money(value: float, currency: str) -> str:
    return f"{amount(value)} {currency}"


def forecast_text(report: CostReport) -> str:
    """The forecast sentence the terminal and the page share."""
    forecast = report.forecast
    ends = (month_end(report.end) - timedelta(seconds=1)).date().isoformat()
    days = (report.end - forecast.rate_since).total_seconds() / 86400
    if days >= RATE_DAYS - 1e-6:
        rate = f"at the last {RATE_DAYS:g} days' rate"
    else:  # the workspace's costs began less than a week ago
        rate = f"at the rate since the first cost at {forecast.rate_since:%Y-%m-%d %H:%M} UTC"
    return (
        f"This month so far {money(forecast.month_to_date, report.currency)}; "
        f"{rate} ({money(forecast.rate_per_day, report.currency)} a day) "
        f"{money(forecast.forecast, report.currency)} by {ends}."
    )


def _tile(label: str, value: str) -> str:
    return tag("div", tag("div", esc(label), "label") + tag("div", esc(value), "big"), "tile")


def _groups_chart(report: CostReport) -> str:
    bars = [
        Bar(
            group.group,
            group.cost,
            money(group.cost, report.currency),
            f"{group.group}: {money(group.cost, report.currency)} "
            f"({fmt_share(report.share(group))})",
        )
        for group in report.groups
    ]
    return bar_chart(bars, label=f"cost per {report.by}", width=560, label_width=160,
                     note_width=120)  # fmt: skip


def _daily_chart(report: CostReport) -> str:
    if not report.daily:
        return placeholder("nothing cost anything in this window", width=560)
    origin = report.start.astimezone(UTC).date()
    last = report.end.astimezone(UTC).date()
    days = [origin + timedelta(days=n) for n in range((last - origin).days + 1)]
    series = []
    for index, kind in enumerate(report.kinds):
        cost = {d.day: d.cost for d in report.daily if d.kind == kind}
        series.append(
            Series(
                kind,
                [float((day - origin).days) for day in days],
                [cost.get(day, 0.0) for day in days],
                colour=PALETTE[index % len(PALETTE)],
                markers=True,
                tooltips=[
                    f"{kind} {day.isoformat()}: {money(cost.get(day, 0.0), report.currency)}"
                    for day in days
                ],
            )
        )
    return line_chart(
        series,
        x=Axis(f"days since {origin.isoformat()}", low=0.0),
        y=Axis(f"{report.currency} per day", low=0.0),
        label="cost per day by kind",
        width=560,
    )


def _storage_chart(report: CostReport) -> str:
    if not report.storage:
        return placeholder("nothing measured in storage", width=560)
    bars = [
        Bar(
            use.storage_class,
            use.stored_bytes / GB,
            f"{fmt_number(use.stored_bytes / GB)} GB",
            f"{use.storage_class}: {fmt_number(use.stored_bytes / GB)} GB, "
            f"{money(use.cost, report.currency)} over the window",
        )
        for use in report.storage
    ]
    return bar_chart(bars, label="storage by class", width=560, label_width=160,
                     note_width=120)  # fmt: skip


def _table(report: CostReport) -> str:
    headers = [
        (report.by, ""),
        ("cost", "num"),
        ("share", "num"),
        ("CPU-hours", "num"),
        ("memory GB-hours", "num"),
        ("predictions", "num"),
        ("per 1,000 predictions", "num"),
        ("stored GB", "num"),
    ]

    rows = []
    for group in [*report.groups, report.total]:
        per_thousand = group.per_thousand_predictions
        cells = [
            tag("td", esc(group.group)),
            tag("td", esc(money(group.cost, report.currency)), "num"),
            tag("td", esc(fmt_share(report.share(group))), "num"),
            tag("td", esc(fmt_number(group.cpu_seconds / 3600)), "num"),
            tag("td", esc(fmt_number(group.memory_gb_hours)), "num"),
            tag("td", esc(fmt_number(group.predictions)), "num"),
            tag(
                "td",
                esc("\u2014" if per_thousand is None else money(per_thousand, report.currency)),
                "num",
            ),
            tag("td", esc(fmt_number(group.stored_bytes / GB)), "num"),
        ]
        rows.append(tag("tr", "".join(cells)))
    return tag("div", table(headers, rows), "scroll")


def render(report: CostReport) -> str:
    """The whole page."""
    start = fmt_time(report.start.isoformat(), "minute")
    span = f"{start} to {fmt_time(report.end.isoformat(), 'minute')}"
    tiles = [
        _tile("total", money(report.total.cost, report.currency)),
        _tile("this month so far", money(report.forecast.month_to_date, report.currency)),
        _tile("forecast for the month", money(report.forecast.forecast, report.currency)),
        _tile("predictions", fmt_number(report.total.predictions)),
        _tile("stored GB", fmt_number(report.total.stored_bytes / GB)),
    ]
    cards = [
        tag("div", tag("header", esc(f"Cost per {report.by}")) + _groups_chart(report), "card"),
        tag("div", tag("header", "Cost per day by kind") + _daily_chart(report), "card"),
        tag("div", tag("header", "Storage by class") + _storage_chart(report), "card"),
    ]
    notes = "".join(tag("li", esc(note)) for note in report.notes)
    body = (
        tag("div", tag("h1", esc(f"Costs by {report.by}")), "title-row")
        + tag("p", esc(span), "muted")
        + tag("div", "".join(tiles), "tiles")
        + tag("p", esc(forecast_text(report)), "forecast")
        + tag("div", "".join(cards), "grid")
        + tag("h2", "Allocation")
        + _table(report)
        + (tag("ul", notes, "muted") if notes else "")
    )
    return document(f"Costs by {report.by}", body)


def write_page(report: CostReport, path: Path) -> Path:
    """Write the page to ``path`` whole or not at all (temporary file, fsync, rename)."""
    atomic_write(path, [render(report).encode("utf-8")])
    return path
