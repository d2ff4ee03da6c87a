"""``mlship compress RUN``: a run's models made smaller, and what that gives up and saves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mlship.cli.console import out
from mlship.cli.render import byte_size, fmt, name_column
from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.train.compress import Compression


def compress(
    run_id: Annotated[
        str,
        typer.Argument(help="Run id (or a unique prefix), or a pipeline name for its newest run."),
    ],
    candidate: Annotated[
        str | None,
        typer.Option(
            help="The tree ensemble to prune (random_forest, extra_trees, gradient_boosting, "
            "hist_gradient_boosting, xgboost); the run's selected candidate by default."
        ),
    ] = None,
    trees: Annotated[
        str,
        typer.Option(help="Comma-separated numbers of trees (boosting rounds) to keep."),
    ] = "10,25,50",
) -> None:
    """Compare a run's distilled students with their teachers, and its tree ensemble cut to
    fewer trees: score, size, latency and the cost of 1,000 predictions, before -> after."""
    from mlship.train.compress import compress as compress_run
    from mlship.workspace import Workspace

    counts = parse_trees(trees)
    workspace = Workspace.open()
    try:
        found = compress_run(workspace, run_id, candidate, counts)
    finally:
        workspace.close()
    out.print(compression_table(found))


def parse_trees(text: str) -> list[int]:
    """``10,25,50`` as numbers of trees; anything else is an error naming the option."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise MlshipError(
            f"--trees: expected comma-separated whole numbers such as 10,25,50, got {text!r}"
        ) from None
    if not counts or any(k < 1 for k in counts):
        raise MlshipError(f"--trees: expected whole numbers of 1 or more, got {text!r}")
    return counts


def compression_table(found: Compression) -> Table:
    """One row per compressed model: each figure as before -> after."""
    table = Table(title=f"Compression of run {found.run_id[:8]} (score: CV {found.metric})")
    name_column(table, "model")
    for header in ("score", "size", "p50 ms", f"{found.currency}/1k predictions"):
        table.add_column(header, justify="right", overflow="fold")
    for row in found.rows:
        before, after = row.before, row.after
        table.add_row(
            row.model,
            f"{fmt(before.score)} -> {fmt(after.score)}",
            f"{_size(before.model_bytes)} -> {_size(after.model_bytes)}",
            f"{fmt(before.p50_ms, 2)} -> {fmt(after.p50_ms, 2)}",
            f"{fmt(before.per_1k, 6)} -> {fmt(after.per_1k, 6)}",
        )
    if not found.rows:
        table.caption = "nothing to compare: no distilled candidate, and nothing pruned"
    return table


def _size(count: int | None) -> str:
    return "-" if count is None else byte_size(count)
