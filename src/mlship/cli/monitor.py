"""``mlship monitor``: drift, live data quality, performance with delayed labels, alerts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mlship.cli.console import out
from mlship.cli.render import fmt
from mlship.errors import MlshipError
from mlship.workspace import Workspace

if TYPE_CHECKING:
    from mlship.monitor.measure import MonitorResult
    from mlship.monitor.window import Window

app = typer.Typer(
    help="Watch served models: drift, data quality, performance, health, alerts.",
    no_args_is_help=True,
)

WindowOption = Annotated[
    str, typer.Option("--window", "-w", help="Live rows to judge: '500 rows' or a duration (1h).")
]


def parse_window(text: str) -> Window:
    from mlship.monitor.window import Window

    try:
        return Window.parse(text)
    except ValueError as exc:
        raise MlshipError(f"--window: {exc}") from None


def _drift_table(result: MonitorResult) -> Table:
    table = Table(title=f"Drift of {result.model} ({result.window.label}, {result.rows} rows)")
    for name in ("column", "kind", "method", "statistic", "threshold", "p-value", "drift"):
        table.add_column(name)
    columns = list(result.drift.columns) if result.drift else []
    if result.prediction_drift is not None:
        columns.append(result.prediction_drift)
    for column in columns:
        table.add_row(
            column.column,
            column.kind,
            column.method,
            fmt(column.statistic),
            fmt(column.threshold),
            "-" if column.p_value is None else fmt(column.p_value),
            "[bold red]drift[/]" if column.drifted else "no",
        )
    return table


def _quality_table(result: MonitorResult) -> Table:
    table = Table(title="Live data quality against training")
    for name in ("column", "missing", "training missing", "out of range", "unseen", "issues"):
        table.add_column(name)
    for column in result.quality.columns:
        table.add_row(
            column.column,
            f"{column.missing:.1%}",
            f"{column.training_missing:.1%}",
            "-" if column.out_of_range is None else f"{column.out_of_range:.1%}",
            "-" if column.unseen is None else f"{column.unseen:.1%}",
            "; ".join(column.issues) or "-",
        )
    return table


def _performance_table(result: MonitorResult) -> Table:
    performance = result.performance
    names = sorted(performance.baseline) or sorted(
        {name for v in performance.versions for name in v.metrics}
    )
    table = Table(title="Performance on labelled traffic (drop: positive is worse than test)")
    for name in ("version", "role", "predictions", "labelled", *names):
        table.add_column(name)
    for entry in performance.versions:
        cells = []
        for name in names:
            value = entry.metrics.get(name)
            drop = entry.degradation.get(name)
            cells.append(
                "-" if value is None else fmt(value) + ("" if drop is None else f" ({drop:+.3f})")
            )
        table.add_row(
            str(entry.version), entry.role, str(entry.predictions), str(entry.labelled), *cells
        )
    return table


@app.command("status")
def status(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    window: WindowOption = "1h",
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Drift, quality and performance of a model's live traffic in one window."""
    from mlship.monitor.measure import Monitor

    workspace = Workspace.open()
    try:
        result = Monitor(workspace).measure(model, parse_window(window))
    finally:
        workspace.close()
    if as_json:
        out.print_json(json.dumps(result.to_dict(), default=str))
        return
    out.print(
        f"{result.model}: version {result.version} judged on {result.rows} rows "
        f"({result.requests} requests, {result.window.label}) against dataset "
        f"{result.reference.dataset_hash[:12]} ({result.reference.rows} rows)"
    )
    if result.drift is None:
        out.print("Drift: too few rows in this window to judge")
    else:
        out.print(_drift_table(result))
        verdict = "drifted" if result.drift.drifted else "not drifted"
        out.print(
            f"Dataset {verdict}: {len(result.drift.drifted_columns)} of "
            f"{len(result.drift.columns)} columns ({result.drift.share:.0%}; threshold "
            f"{result.drift.threshold:.0%})"
        )
    out.print(_quality_table(result))
    out.print(_performance_table(result))


@app.command("feedback")
def feedback(
    path: Annotated[
        Path, typer.Argument(help="CSV, Parquet or JSON Lines: request_id, label[, row].")
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Check labels against this model (default: the model "
            "that answered each request, from the prediction logs).",
        ),
    ] = None,
) -> None:
    """Store true labels of earlier answers, for performance monitoring."""
    from mlship.monitor.feedback import FeedbackStore, feedback_directory
    from mlship.monitor.labels_file import read_labels_file
    from mlship.registry.signature import Signature

    workspace = Workspace.open()
    try:
        home = workspace.settings.home_resolved

        def signature_of(name: str) -> Signature:
            return Signature.from_dict(workspace.metadata.get_version(name).signature)

        grouped = read_labels_file(path, home, signature_of, model)
    finally:
        workspace.close()
    store = FeedbackStore(feedback_directory(home))
    labels = [label for items in grouped.values() for label in items]
    stored = store.append(labels, f"file:{path.name}")
    per_model = ", ".join(f"{name} {len(items)}" for name, items in sorted(grouped.items()))
    out.print(f"Stored {stored} labels from {path} ({per_model}) in {store.directory}")
