"""Tables shown by several commands."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from mlship.store.tables import Candidate


def fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def leaderboard_table(metric: str, candidates: Sequence[Candidate], title: str) -> Table:
    table = Table(title=title)
    table.add_column("rank", justify="right")
    table.add_column("candidate")
    table.add_column("estimator")
    table.add_column(f"cv {metric}", justify="right")
    table.add_column("± std", justify="right")
    table.add_column("fit s", justify="right")
    for candidate in candidates:
        style = "bold green" if candidate.selected else None
        table.add_row(
            str(candidate.rank),
            candidate.name,
            candidate.estimator.rsplit(".", 1)[-1],
            fmt(candidate.cv_mean),
            fmt(candidate.cv_std),
            fmt(candidate.fit_seconds, 2),
            style=style,
        )
    return table


def metrics_table(title: str, metrics: dict[str, float]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, fmt(value))
    return table
