"""Small inline-SVG charts for the self-contained HTML reports.

A report must open offline, from a mail attachment or a CI artifact, so its charts are drawn here
as SVG markup rather than by a plotting library or a script. Each function returns one ``<svg>``
element sized by its ``viewBox`` (it scales to its container) whose parts carry classes
(``bar``, ``axis``, ``grid``, ``tick``, ``value``, ``note``) that the page's stylesheet can
restyle; the presentation attributes written here are the fallback look. Series colours are
attributes only, so a dark page keeps them. Every piece of text is escaped, since labels come from
user data.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 320
BAR_COLOUR = "#4c78a8"
AXIS_COLOUR = "#8a8f98"
GRID_COLOUR = "#e2e5ea"
GUIDE_COLOUR = "#9aa0a8"
TEXT_COLOUR = "#4a4f57"
FONT_SIZE = 10
# Colour-blind-friendly series colours, readable on a light and on a dark page.
PALETTE = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#eeca3b",
    "#9d755d",
    "#ff9da6",
    "#bab0ac",
)
XY_WIDTH = 420
XY_HEIGHT = 290


@dataclass(frozen=True)
class Bar:
    """One bar of a horizontal bar chart: its label, length, the text printed after it and the
    tooltip (defaults to the label and note)."""

    label: str
    value: float
    note: str = ""
    tooltip: str | None = None


def _num(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros, to keep the markup small."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "\u2026"


def _open(width: float, height: float, label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {_num(width)} {_num(height)}" '
        f'width="{_num(width)}" height="{_num(height)}" role="img" aria-label="{_esc(label)}" '
        f'font-size="{FONT_SIZE}" font-family="inherit">'
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", css: str = "tick") -> str:
    return (
        f'<text class="{css}" x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}" '
        f'fill="{TEXT_COLOUR}">{_esc(text)}</text>'
    )


def _rect(x: float, y: float, width: float, height: float, tooltip: str) -> str:
    return (
        f'<rect class="bar" x="{_num(x)}" y="{_num(y)}" width="{_num(width)}" '
        f'height="{_num(height)}" fill="{BAR_COLOUR}"><title>{_esc(tooltip)}</title></rect>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, *, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="3 3"' if dashed else ""
    return (
        f'<line class="axis" x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" '
        f'stroke="{AXIS_COLOUR}" stroke-width="1"{dash}/>'
    )


def histogram(
    counts: Sequence[int],
    *,
    first_label: str,
    last_label: str,
    tooltips: Sequence[str] | None = None,
    label: str = "histogram",
    width: float = WIDTH,
    height: float = 150,
) -> str:
    """Vertical bars of equal width, one per bin, scaled to the largest count.

    The x axis is labelled at its two ends only (``first_label``, ``last_label``), because the
    bins' own ranges are in each bar's tooltip and a row of edge labels would not fit a card.
    A non-empty bin is at least one unit tall, so a rare value stays visible next to a huge bin.
    """
    if not counts:
        return placeholder("no values to chart", width=width)
    left, right, top, bottom = 44.0, 6.0, 10.0, 18.0
    plot_width, plot_height = width - left - right, height - top - bottom
    tallest = max(*counts, 1)
    step = plot_width / len(counts)
    gap = 1.0 if step > 4 else 0.0
    baseline = top + plot_height
    parts = [_open(width, height, label)]
    parts.append(_line(left, top, width - right, top, dashed=True))
    parts.append(_text(left - 4, top + 3.5, f"{tallest:,}", anchor="end"))
    parts.append(_text(left - 4, baseline, "0", anchor="end"))
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        bar_height = max(plot_height * count / tallest, 1.0)
        tooltip = tooltips[index] if tooltips else f"{count:,}"
        x = left + index * step
        parts.append(_rect(x, baseline - bar_height, step - gap, bar_height, tooltip))
    parts.append(_line(left, baseline, width - right, baseline))
    parts.append(_text(left, height - 4, first_label))
    parts.append(_text(width - right, height - 4, last_label, anchor="end"))
    parts.append("</svg>")
    return "".join(parts)


def paired_histogram(
    first: Sequence[float],
    second: Sequence[float],
    *,
    names: tuple[str, str],
    first_label: str,
    last_label: str,
    tooltips: Sequence[str] | None = None,
    label: str = "paired histogram",
    width: float = WIDTH,
    height: float = 160,
) -> str:
    """Two distributions over the same bins, side by side in each bin, as shares of their own
    totals (so a sample of 500 rows and one of 200,000 compare directly), with a two-entry legend.

    Used to show a reference sample against a current one: where the bars of a bin differ in
    height, the data moved. The x axis is labelled at its ends; each bar's tooltip has its bin.
    """
    if not first or len(first) != len(second):
        return placeholder("no values to chart", width=width)
    left, right, top, bottom = 40.0, 6.0, 22.0, 18.0
    plot_width, plot_height = width - left - right, height - top - bottom
    tallest = max(*first, *second, 1e-12)
    step = plot_width / len(first)
    bar = max(step / 2 - (0.5 if step > 6 else 0.0), 0.5)
    baseline = top + plot_height
    colours = (PALETTE[0], PALETTE[1])
    parts = [_open(width, height, label)]
    x = left
    for name, colour in zip(names, colours, strict=True):
        parts.append(
            f'<rect x="{_num(x)}" y="4" width="10" height="10" fill="{colour}"/>'
            + _text(x + 14, 13, name, css="legend")
        )
        x += 24 + len(name) * _char_width()
    parts.append(_line(left, top, width - right, top, dashed=True))
    parts.append(_text(left - 4, top + 3.5, f"{tallest:.0%}", anchor="end"))
    parts.append(_text(left - 4, baseline, "0", anchor="end"))
    for index, pair in enumerate(zip(first, second, strict=True)):
        for offset, (share, colour, name) in enumerate(zip(pair, colours, names, strict=True)):
            if share <= 0:
                continue
            bar_height = max(plot_height * share / tallest, 1.0)
            where = tooltips[index] if tooltips else f"bin {index + 1}"
            parts.append(
                f'<rect class="pair" x="{_num(left + index * step + offset * bar)}" '
                f'y="{_num(baseline - bar_height)}" width="{_num(bar)}" '
                f'height="{_num(bar_height)}" fill="{colour}">'
                f"<title>{_esc(f'{name}, {where}: {share:.1%}')}</title></rect>"
            )
    parts.append(_line(left, baseline, width - right, baseline))
    parts.append(_text(left, height - 4, first_label))
    parts.append(_text(width - right, height - 4, last_label, anchor="end"))
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    bars: Sequence[Bar],
    *,
    label: str = "bar chart",
    width: float = WIDTH,
    row_height: float = 18,
    label_width: float = 116,
    note_width: float = 76,
) -> str:
    """Horizontal bars, one row each, with the label on the left and the note on the right.

    Long labels are shortened with an ellipsis; the full label is in the bar's tooltip.
    """
    if not bars:
        return placeholder("no values to chart", width=width)
    longest = max(*(bar.value for bar in bars), 1e-12)
    plot_width = width - label_width - note_width
    height = row_height * len(bars) + 4
    # About 0.65 em per character keeps a label of wide letters inside its column.
    characters = int((label_width - 8) / (FONT_SIZE * 0.65))
    parts = [_open(width, height, label)]
    for index, bar in enumerate(bars):
        y = 2 + index * row_height
        middle = y + row_height / 2 + FONT_SIZE * 0.35
        length = max(plot_width * bar.value / longest, 1.0) if bar.value > 0 else 0.0
        tooltip = bar.tooltip or f"{bar.label}: {bar.note}"
        parts.append(_text(label_width - 6, middle, _truncate(bar.label, characters), anchor="end"))
        parts.append(_rect(label_width, y + 3, length, row_height - 6, tooltip))
        parts.append(_text(label_width + length + 4, middle, bar.note, css="value"))
    parts.append(_line(label_width, 2, label_width, height - 2))
    parts.append("</svg>")
    return "".join(parts)


def placeholder(message: str, *, width: float = WIDTH, height: float = 48) -> str:
    """A chart-sized box that says why there is no chart, so every card keeps the same shape."""
    return "".join(
        [
            _open(width, height, message),
            f'<rect class="empty" x="0.5" y="0.5" width="{_num(width - 1)}" '
            f'height="{_num(height - 1)}" rx="6" fill="none" stroke="{AXIS_COLOUR}" '
            'stroke-dasharray="4 4"/>',
            _text(width / 2, height / 2 + 3.5, message, anchor="middle", css="note"),
            "</svg>",
        ]
    )


# -- x-y charts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One line (or set of points) of an x-y chart.

    ``low``/``high`` draw a shaded band around the line (a spread across folds, say); ``dashed``
    lines are guides such as a chance diagonal. ``tooltips`` label each marker. A point with a
    non-finite coordinate is left out rather than drawn at a made-up place.
    """

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    colour: str | None = None
    line: bool = True
    markers: bool = False
    dashed: bool = False
    low: Sequence[float] | None = None
    high: Sequence[float] | None = None
    tooltips: Sequence[str] | None = None


@dataclass(frozen=True)
class Axis:
    """An axis title and its range; a bound left ``None`` is taken from the data, rounded out to
    a tick."""

    label: str
    low: float | None = None
    high: float | None = None


def guide(label: str, xs: Sequence[float], ys: Sequence[float]) -> Series:
    """A grey dashed reference line: chance, perfect calibration, a baseline score."""
    return Series(label, xs, ys, colour=GUIDE_COLOUR, dashed=True)


def _step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= multiple * magnitude * (1 + 1e-9):
            return multiple * magnitude
    return 10.0 * magnitude


def nice_range(
    low: float, high: float, *, fixed_low: bool = False, fixed_high: bool = False, count: int = 5
) -> tuple[float, float, list[float]]:
    """An axis range covering ``low..high`` and about ``count`` round tick values inside it.

    A bound that is not fixed is moved out to the next tick, so the data never touches the frame
    at an odd value; an empty range is widened so there is something to draw.
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = 0.0, 1.0
    if high < low:
        low, high = high, low
    if high - low < 1e-12:
        pad = abs(low) * 0.1 or 0.5
        low, high = (low if fixed_low else low - pad), (high if fixed_high else high + pad)
    # A little room, so a line at the data's edge (a baseline, say) is not hidden by the frame.
    pad = (high - low) * 0.02
    low, high = (low if fixed_low else low - pad), (high if fixed_high else high + pad)
    step = _step(high - low, count)
    if not fixed_low:
        low = math.floor(low / step + 1e-9) * step
    if not fixed_high:
        high = math.ceil(high / step - 1e-9) * step
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-6:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value = first + len(ticks) * step
    return low, high, ticks


def tick_label(value: float, ticks: Sequence[float]) -> str:
    """A tick value with as many decimals as the spacing of ``ticks`` needs, no more."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(value) or 1.0
    if max(abs(t) for t in ticks) >= 1e7:
        return f"{value:.3g}"
    decimals = 0
    while decimals < 8 and abs(round(step * 10**decimals) - step * 10**decimals) > 1e-6:
        decimals += 1
    return f"{value:,.{decimals}f}"


def _finite_points(series: Series) -> list[tuple[float, float, int]]:
    return [
        (float(x), float(y), index)
        for index, (x, y) in enumerate(zip(series.xs, series.ys, strict=True))
        if math.isfinite(float(x)) and math.isfinite(float(y))
    ]


def _bounds(series: Sequence[Series], axis: int) -> tuple[float, float]:
    values: list[float] = []
    for item in series:
        for x, y, index in _finite_points(item):
            values.append(x if axis == 0 else y)
            if axis == 1:
                values += [
                    float(band[index])
                    for band in (item.low, item.high)
                    if band is not None and math.isfinite(float(band[index]))
                ]
    return (min(values), max(values)) if values else (0.0, 1.0)


def _char_width() -> float:
    return FONT_SIZE * 0.6


def _legend(series: Sequence[Series], colours: Sequence[str], x0: float, width: float) -> str:
    parts: list[str] = []
    x, y = x0, 10.0
    for item, colour in zip(series, colours, strict=True):
        text = _truncate(item.label, 40)
        item_width = 22 + len(text) * _char_width() + 14
        if x > x0 and x + item_width > width:
            x, y = x0, y + 15
        if item.line:
            dash = ' stroke-dasharray="4 3"' if item.dashed else ""
            parts.append(
                f'<line x1="{_num(x)}" y1="{_num(y - 3.5)}" x2="{_num(x + 16)}" '
                f'y2="{_num(y - 3.5)}" stroke="{colour}" stroke-width="2"{dash}/>'
            )
        if item.markers or not item.line:
            parts.append(f'<circle cx="{_num(x + 8)}" cy="{_num(y - 3.5)}" r="3" fill="{colour}"/>')
        parts.append(_text(x + 21, y, text, css="legend"))
        x += item_width
    return "".join(parts)


def _legend_height(series: Sequence[Series], x0: float, width: float) -> float:
    rows, x = 1, x0
    for item in series:
        item_width = 22 + len(_truncate(item.label, 40)) * _char_width() + 14
        if x > x0 and x + item_width > width:
            rows, x = rows + 1, x0
        x += item_width
    return rows * 15.0


def _xy_chart(
    series: Sequence[Series],
    *,
    x: Axis,
    y: Axis,
    label: str,
    width: float,
    height: float,
    legend: bool,
    marker_radius: float = 3.0,
    marker_opacity: float = 1.0,
) -> str:
    if not any(_finite_points(item) for item in series):
        return placeholder("no values to chart", width=width)
    x_low, x_high = _bounds(series, 0)
    y_low, y_high = _bounds(series, 1)
    x_low, x_high, x_ticks = nice_range(
        x.low if x.low is not None else x_low,
        x.high if x.high is not None else x_high,
        fixed_low=x.low is not None,
        fixed_high=x.high is not None,
    )
    y_low, y_high, y_ticks = nice_range(
        y.low if y.low is not None else y_low,
        y.high if y.high is not None else y_high,
        fixed_low=y.low is not None,
        fixed_high=y.high is not None,
    )
    y_labels = [tick_label(value, y_ticks) for value in y_ticks]
    left = 18 + max(len(text) for text in y_labels) * _char_width() + 8
    right, bottom = 12.0, 36.0
    top = (_legend_height(series, left, width - right) if legend else 0) + 10
    plot_width, plot_height = width - left - right, height - top - bottom

    def px(value: float) -> float:
        share = (value - x_low) / (x_high - x_low)
        return left + min(max(share, 0.0), 1.0) * plot_width

    def py(value: float) -> float:
        share = (value - y_low) / (y_high - y_low)
        return top + plot_height - min(max(share, 0.0), 1.0) * plot_height

    parts = [_open(width, height, label)]
    for value, text in zip(y_ticks, y_labels, strict=True):
        parts.append(_grid(left, py(value), width - right, py(value)))
        parts.append(_text(left - 5, py(value) + 3.5, text, anchor="end"))
    for value in x_ticks:
        parts.append(_grid(px(value), top, px(value), top + plot_height))
        parts.append(
            _text(px(value), top + plot_height + 13, tick_label(value, x_ticks), anchor="middle")
        )
    parts.append(_line(left, top + plot_height, width - right, top + plot_height))
    parts.append(_line(left, top, left, top + plot_height))
    parts.append(_text(left + plot_width / 2, height - 5, x.label, anchor="middle", css="title"))
    middle = top + plot_height / 2
    parts.append(
        f'<text class="title" x="10" y="{_num(middle)}" text-anchor="middle" '
        f'transform="rotate(-90 10 {_num(middle)})" fill="{TEXT_COLOUR}">{_esc(y.label)}</text>'
    )
    # Guides and other series with a colour of their own do not use up a palette colour.
    colours, used = [], 0
    for item in series:
        colours.append(item.colour or PALETTE[used % len(PALETTE)])
        used += item.colour is None
    for item, colour in zip(series, colours, strict=True):
        points = _finite_points(item)
        group = [f'<g class="series"><title>{_esc(item.label)}</title>']
        if item.low is not None and item.high is not None and len(points) > 1:
            upper = [f"{_num(px(x))},{_num(py(float(item.high[i])))}" for x, _, i in points]
            lower = [f"{_num(px(x))},{_num(py(float(item.low[i])))}" for x, _, i in points]
            group.append(
                f'<polygon class="band" points="{" ".join(upper + lower[::-1])}" '
                f'fill="{colour}" fill-opacity="0.16" stroke="none"/>'
            )
        if item.line and len(points) > 1:
            dash = ' stroke-dasharray="5 4"' if item.dashed else ""
            thickness = 1.25 if item.dashed else 2
            coordinates = " ".join(f"{_num(px(x))},{_num(py(y))}" for x, y, _ in points)
            group.append(
                f'<polyline points="{coordinates}" fill="none" stroke="{colour}" '
                f'stroke-width="{thickness}" stroke-linejoin="round"{dash}/>'
            )
        if item.markers or not item.line:
            opacity = f' fill-opacity="{marker_opacity}"' if marker_opacity < 1 else ""
            for x_value, y_value, index in points:
                tip = item.tooltips[index] if item.tooltips else ""
                tip_markup = f"<title>{_esc(tip)}</title>" if tip else ""
                group.append(
                    f'<circle cx="{_num(px(x_value))}" cy="{_num(py(y_value))}" '
                    f'r="{_num(marker_radius)}" fill="{colour}"{opacity}>{tip_markup}</circle>'
                )
        group.append("</g>")
        parts.append("".join(group))
    if legend:
        parts.append(_legend(series, colours, left, width - right))
    parts.append("</svg>")
    return "".join(parts)


def _grid(x1: float, y1: float, x2: float, y2: float) -> str:
    return (
        f'<line class="grid" x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" '
        f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
    )


def line_chart(
    series: Sequence[Series],
    *,
    x: Axis,
    y: Axis,
    label: str = "line chart",
    width: float = XY_WIDTH,
    height: float = XY_HEIGHT,
    legend: bool = True,
) -> str:
    """Lines on shared axes with ticks, grid and a legend above the plot.

    Bounds given on an axis are kept (a curve in the unit square stays there); the others come from
    the data, bands included. Each line's label is its tooltip.
    """
    return _xy_chart(series, x=x, y=y, label=label, width=width, height=height, legend=legend)


def scatter_chart(
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    x: Axis,
    y: Axis,
    guides: Sequence[Series] = (),
    label: str = "scatter chart",
    points_label: str = "points",
    width: float = XY_WIDTH,
    height: float = XY_HEIGHT,
) -> str:
    """Points (half transparent, so dense regions read darker) over optional guide lines."""
    points = Series(points_label, xs, ys, colour=BAR_COLOUR, line=False)
    return _xy_chart(
        [*guides, points],
        x=x,
        y=y,
        label=label,
        width=width,
        height=height,
        legend=bool(guides),
        marker_radius=2.2,
        marker_opacity=0.45,
    )


def interval(
    value: float | None,
    low: float | None,
    high: float | None,
    *,
    scale: tuple[float, float],
    label: str = "interval",
    width: float = 150,
    height: float = 16,
) -> str:
    """A point estimate and its interval on a track spanning ``scale`` (one table row's chart)."""
    lo, hi = scale
    span = (hi - lo) or 1.0

    def px(number: float) -> float:
        return 4 + min(max((number - lo) / span, 0.0), 1.0) * (width - 8)

    middle = height / 2
    parts = [_open(width, height, label), f"<title>{_esc(label)}</title>"]
    parts.append(_grid(4, middle, width - 4, middle))
    if low is not None and high is not None:
        parts.append(
            f'<rect class="range" x="{_num(px(low))}" y="{_num(middle - 4)}" '
            f'width="{_num(max(px(high) - px(low), 1.5))}" height="8" rx="3" '
            f'fill="{BAR_COLOUR}" fill-opacity="0.3"/>'
        )
    if value is not None:
        parts.append(
            f'<circle class="point" cx="{_num(px(value))}" cy="{_num(middle)}" r="3.5" '
            f'fill="{BAR_COLOUR}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)
