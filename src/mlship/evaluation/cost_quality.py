"""The report's "cost against quality" section: one scatter of CV score against each cost, with
the Pareto front drawn through the candidates nothing beats, and the distilled students beside
their teachers.

The run hands the section its leaderboard as plain values (``cost_quality`` of the stored
evaluation), so ``mlship runs report`` draws it again from the store alone.
"""

from __future__ import annotations

import math
from typing import Any

from mlship.html import svg
from mlship.html.page import esc, fmt_number, table, tag

KINDS = (
    ("training", "training cost", "what fitting it cost ({currency})"),
    ("serving", "serving cost", "{currency} per 1,000 predictions"),
    ("latency", "latency", "median ms per single-row prediction"),
)
FRONT_COLOUR = "#e45756"
SELECTED_COLOUR = "#54a24b"


def staircase(points: list[tuple[float, float]], bigger: bool) -> tuple[list[float], list[float]]:
    """The front's points joined as steps, cheapest first: from each point the line runs at its
    score to the next one's cost, then to the next one's score, so the region the front
    dominates lies below and to the right of it (above, for a metric where smaller is better)."""
    ordered = sorted(points, key=lambda p: (p[0], -p[1] if bigger else p[1]))
    xs: list[float] = []
    ys: list[float] = []
    for index, (cost, score) in enumerate(ordered):
        if index:
            xs.append(cost)
            ys.append(ys[-1])
        xs.append(cost)
        ys.append(score)
    return xs, ys


def scale(values: list[float]) -> int:
    """The power of ten that brings the largest finite ``values`` to 1 or more (0 when it already
    is): a training cost of a few millionths of a dollar reads as 3 (axis x1e-6), not 0."""
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0]
    if not finite or max(finite) >= 1:
        return 0
    return math.floor(math.log10(max(finite)))


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.nan


def _chart(facts: dict[str, Any], kind: str, title: str, unit: str) -> str:
    candidates = facts.get("candidates", [])
    bigger = bool(facts.get("bigger", True))
    xs = [_number(c.get(kind)) for c in candidates]
    ys = [_number(c.get("score")) for c in candidates]
    names = [str(c.get("name", "")) for c in candidates]
    tips = [
        f"{n}: score {fmt_number(y)}, {title} {fmt_number(x)}"
        for n, x, y in zip(names, xs, ys, strict=True)
    ]
    on = [i for i, c in enumerate(candidates) if kind in c.get("fronts", [])]
    front_xs, front_ys = staircase([(xs[i], ys[i]) for i in on], bigger)
    selected = [i for i, n in enumerate(names) if n == facts.get("selected")]
    series = [
        svg.Series("front", front_xs, front_ys, colour=FRONT_COLOUR),
        svg.Series("candidates", xs, ys, line=False, markers=True, tooltips=tips),
        svg.Series(
            "selected",
            [xs[i] for i in selected],
            [ys[i] for i in selected],
            colour=SELECTED_COLOUR,
            line=False,
            markers=True,
            tooltips=[tips[i] for i in selected],
        ),
    ]
    metric = str(facts.get("metric", "score"))
    currency = str(facts.get("currency", ""))
    axis = unit.format(currency=currency)
    power = scale(xs)
    if power:
        factor = 10.0**-power
        series = [
            svg.Series(
                s.label,
                [x * factor for x in s.xs],
                s.ys,
                colour=s.colour,
                line=s.line,
                markers=s.markers,
                tooltips=s.tooltips,
            )
            for s in series
        ]
        axis += f", \u00d71e{power}"
    chart = svg.line_chart(
        series,
        x=svg.Axis(axis),
        y=svg.Axis(f"CV {metric}"),
        label=f"CV {metric} against {title}",
        width=440,
        height=300,
    )
    members = ", ".join(names[i] for i in on) or "none"
    caption = tag("p", esc(f"On the front: {members}."), "caption")
    return tag("div", tag("h3", esc(f"Score against {title}")) + chart + caption, "card")


def _compression(facts: dict[str, Any]) -> str:
    by_name = {str(c.get("name")): c for c in facts.get("candidates", [])}
    rows = []
    for name, candidate in by_name.items():
        teacher = by_name.get(str(candidate.get("distilled_from")))
        if teacher is None:
            continue
        cells = [esc(f"{name}, distilled from {teacher.get('name')}")]
        for key in ("score", "model_bytes", "latency", "serving"):
            before, after = teacher.get(key), candidate.get(key)
            cells.append(esc(f"{fmt_number(before)} \u2192 {fmt_number(after)}"))
        rows.append(tag("tr", "".join(tag("td", cell) for cell in cells)))
    if not rows:
        return ""
    currency = str(facts.get("currency", ""))
    headers = [
        ("model", ""),
        (f"CV {facts.get('metric', 'score')}", "num"),
        ("size (bytes)", "num"),
        ("p50 ms", "num"),
        (f"{currency} / 1k predictions", "num"),
    ]
    return tag("div", tag("h3", "Compression") + table(headers, rows), "card")


def cost_quality_section(evaluation: dict[str, Any]) -> str:
    """The section, or nothing for a run from before cost against quality was recorded."""
    facts = evaluation.get("cost_quality")
    if not isinstance(facts, dict) or not facts.get("candidates"):
        return ""
    charts = "".join(_chart(facts, kind, title, unit) for kind, title, unit in KINDS)
    reason = facts.get("selection")
    said = tag("p", esc(f"Selected by {reason}.")) if reason else ""
    body = said + tag("div", charts, "grid charts") + _compression(facts)
    return tag("section", tag("h2", "Cost against quality") + body, id="cost-quality")


__all__ = ["cost_quality_section", "scale", "staircase"]
