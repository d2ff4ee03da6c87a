"""The compare page's charts, as ECharts options built here: the page's script only hands them
to ECharts, so what a chart shows is decided (and tested) in Python.

Two kinds: the selected model's metrics of each run, side by side (the holdout figures when a run
has them, else the cross-validated ones), and, for every tuning search of the chosen runs, a
parallel-coordinates view of its trials (one axis per parameter, the last one the score).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlship.store.entities import Run
from mlship.ui.runs import Trials


@dataclass(frozen=True)
class Chart:
    """One chart: its title (also its accessible name), a short description and its options."""

    title: str
    description: str
    options: dict[str, Any]


def _label(run: Run) -> str:
    return f"{run.pipeline} {run.id[:8]}"


def run_metrics(run: Run) -> dict[str, float]:
    """The selected model's figures of ``run``, by metric name: holdout when there are any."""
    chosen = [m for m in run.metrics if m.candidate in (None, run.best_candidate)]
    for split in ("holdout", "test", "cv"):
        figures = {m.name: m.value for m in chosen if m.split == split}
        if figures:
            return figures
    return {}


def metric_chart(runs: list[Run]) -> Chart | None:
    by_run = {_label(run): run_metrics(run) for run in runs}
    names = sorted({name for figures in by_run.values() for name in figures})
    if not names:
        return None
    series = [
        {
            "name": label,
            "type": "line",
            "symbolSize": 8,
            "data": [figures.get(name) for name in names],
        }
        for label, figures in by_run.items()
    ]
    options = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 56, "right": 24, "top": 48, "bottom": 64},
        "xAxis": {"type": "category", "data": names, "axisLabel": {"rotate": 30}},
        "yAxis": {"type": "value", "scale": True},
        "series": series,
    }
    return Chart(
        "Metrics of the selected models",
        f"{len(names)} metrics of {len(runs)} runs, one line per run",
        options,
    )


def trials_chart(trials: Trials) -> Chart:
    axes: list[dict[str, Any]] = []
    for index, name in enumerate([*trials.params, "score"]):
        column = [row[index] for row in trials.values]
        axis: dict[str, Any] = {"dim": index, "name": name}
        if any(isinstance(v, str) for v in column):
            axis.update(type="category", data=sorted({str(v) for v in column}))
        elif name != "score" and all(isinstance(v, int | float) and v > 0 for v in column):
            spread = max(column) / min(column) if column else 1
            if spread >= 100:
                axis["type"] = "log"
        axes.append(axis)
    options = {
        "animation": False,
        "parallelAxis": axes,
        "parallel": {"left": 64, "right": 96, "top": 48, "bottom": 32},
        "series": [
            {
                "type": "parallel",
                "lineStyle": {"width": 1, "opacity": 0.5},
                "data": trials.values,
            }
        ],
    }
    title = f"Tuning trials of {trials.candidate} ({trials.run_id[:8]})"
    description = f"{len(trials.values)} trials over {len(trials.params)} parameters and the score"
    return Chart(title, description, options)


def compare_charts(runs: list[Run], trials: list[list[Trials]]) -> list[Chart]:
    """The charts of the compare page for ``runs`` and the tuning trials of each."""
    charts = [chart for chart in [metric_chart(runs)] if chart is not None]
    charts += [trials_chart(found) for per_run in trials for found in per_run if found.values]
    return charts
