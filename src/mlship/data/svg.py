"""Small inline-SVG charts for the self-contained HTML report.

The report must open offline, from a mail attachment or a CI artifact, so its charts are drawn here
as SVG markup rather than by a plotting library or a script. Each function returns one ``<svg>``
element sized by its ``viewBox`` (it scales to its container) whose parts carry classes
(``bar``, ``axis``, ``tick``, ``value``, ``note``) that the page's stylesheet can restyle; the
presentation attributes written here are the fallback look. Every piece of text is escaped, since
labels come from user data.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 320
BAR_COLOUR = "#4c78a8"
AXIS_COLOUR = "#8a8f98"
TEXT_COLOUR = "#4a4f57"
FONT_SIZE = 10


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
