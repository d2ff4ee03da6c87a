"""``mlship runs list|show|report|reproduce``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mlship.cli.console import out
from mlship.cli.options import OutputDir
from mlship.cli.render import fmt, leaderboard_table, metrics_table, trials_table
from mlship.errors import MlshipError
from mlship.workspace import Workspace

if TYPE_CHECKING:
    from mlship.train.tuning import TrialRecord

app = typer.Typer(help="Look at recorded runs.", no_args_is_help=True)


@app.command("list")
def list_runs(
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first.")] = 50,
) -> None:
    """List runs, newest first."""
    workspace = Workspace.open()
    try:
        runs = workspace.metadata.list_runs(limit)
    finally:
        workspace.close()
    table = Table(title="Runs")
    for name in ("run", "pipeline", "status", "started (UTC)", "wall s", "best", "cv score"):
        table.add_column(name, justify="right" if name in ("wall s", "cv score") else "left")
    for run in runs:
        best = next((c for c in run.candidates if c.selected), None)
        table.add_row(
            run.id[:8],
            run.pipeline,
            run.status,
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            fmt(run.wall_seconds, 1),
            run.best_candidate or "-",
            f"{run.metric} {fmt(best.cv_mean)}" if best else "-",
        )
    out.print(table)


@app.command("show")
def show(
    run_id: Annotated[
        str,
        typer.Argument(help="Run id (or a unique prefix), or a pipeline name for its newest run."),
    ],
    trials: Annotated[
        bool, typer.Option("--trials", help="Also list every trial of every search.")
    ] = False,
) -> None:
    """Everything recorded about one run."""
    workspace = Workspace.open()
    try:
        run = workspace.metadata.get_run(run_id)
        searches = _searches(workspace, run.id) if trials else {}
    finally:
        workspace.close()
    facts = Table(title=f"Run {run.id}", show_header=False)
    facts.add_column("field")
    facts.add_column("value")
    dataset = run.dataset
    rows = [
        ("pipeline", run.pipeline),
        ("status", run.status),
        ("user", run.user),
        ("task / metric", f"{run.task} / {run.metric}"),
        ("spec", run.spec_path),
        ("spec sha256", run.spec_hash),
        ("dataset sha256", dataset.data_hash if dataset else "-"),
        ("dataset rows", str(dataset.n_rows) if dataset else "-"),
        ("started (UTC)", run.started_at.isoformat(timespec="seconds")),
        ("wall seconds", fmt(run.wall_seconds, 2)),
        ("CPU seconds", fmt(run.cpu_seconds, 2)),
        ("peak memory MiB", fmt((run.peak_memory_bytes or 0) / 2**20, 0)),
        ("cost", fmt(run.cost, 4)),
        ("executor", run.executor or "-"),
        ("attempts", str(run.attempts)),
        ("git commit", run.git_commit or "-"),
        ("python", str(run.environment.get("python", "-"))),
        ("packages", json.dumps(run.environment.get("packages", {}))),
    ]
    if run.error:
        rows.append(("error", run.error))
    for key, value in rows:
        facts.add_row(key, value)
    out.print(facts)
    if run.candidates:
        out.print(leaderboard_table(run.metric, run.candidates, "Candidates"))
        for candidate in run.candidates:
            if candidate.selected:
                out.print(f"Selected params: {json.dumps(candidate.params, sort_keys=True)}")
    _print_details(run.details or {})
    holdout = {m.name: m.value for m in run.metrics if m.split == "holdout"}
    if holdout:
        out.print(metrics_table(f"Holdout metrics of {run.best_candidate}", holdout))
    for study, found in searches.items():
        out.print(trials_table(f"Trials of {study}", run.metric, found))
    if trials and not searches:
        out.print("No search was run: every candidate had fixed parameters.")


def _searches(workspace: Workspace, run_id: str) -> dict[str, list[TrialRecord]]:
    from mlship.train.tuning import trials_of

    return trials_of(workspace.tuning_storage(run_id), run_id)


def _print_details(details: dict[str, Any]) -> None:
    """How the run split its data, what the threshold and nested CV found."""
    split = details.get("split") or {}
    if split:
        out.print(
            f"Split: {split['train_rows']} training rows in {split['folds']} folds, "
            f"{split['test_rows']} test rows scored {split['test_scored']}"
        )
    found = details.get("threshold")
    if found:
        out.print(
            f"Decision threshold tuned for {found['metric']}: {found['threshold']:.4f} "
            f"(CV {found['cv_score_at_0.5']:.4f} at 0.5 -> {found['cv_score_tuned']:.4f})"
        )
    nested = details.get("nested")
    if nested:
        table = Table(title=f"Nested cross-validation ({split.get('outer_folds')} outer folds)")
        for name in ("candidate", "mean", "std", "outer scores", "tuned"):
            table.add_column(name, justify="right" if name in ("mean", "std") else "left")
        for name, estimate in nested.items():
            table.add_row(
                name,
                fmt(estimate["mean"]),
                fmt(estimate["std"], 3),
                " ".join(f"{s:.3f}" for s in estimate["scores"]),
                "yes" if estimate["tuned"] else "no",
            )
        out.print(table)


@app.command("report")
def report(
    run_id: Annotated[
        str,
        typer.Argument(help="Run id (or a unique prefix), or a pipeline name for its newest run."),
    ],
    output: OutputDir = None,
) -> None:
    """Write a run's evaluation report (JSON and self-contained HTML) from the store."""
    from mlship.evaluation import write_evaluation_report

    workspace = Workspace.open()
    try:
        run = workspace.metadata.get_run(run_id)
        if not run.report_sha256:
            raise MlshipError(f"run {run.id[:8]} has no evaluation report (status: {run.status})")
        stored = json.loads(workspace.artifacts.get_bytes(run.report_sha256))
        directory = output or workspace.settings.home_resolved / "reports"
    finally:
        workspace.close()
    name = f"{run.pipeline}-run-{run.id[:8]}"
    json_path, html_path = write_evaluation_report(
        directory, name, stored["evaluation"], stored["run"]
    )
    fit = stored["evaluation"].get("diagnosis", {}).get("fit") or {}
    if fit:
        out.print(f"Fit: {fit['verdict']}. {fit['reason']} {fit['advice']}")
    out.print(f"HTML: {html_path}\nJSON: {json_path}")


@app.command("reproduce")
def reproduce_command(
    run_id: Annotated[
        str,
        typer.Argument(help="Run id (or a unique prefix), or a pipeline name for its newest run."),
    ],
    tolerance: Annotated[
        float, typer.Option(help="Largest difference of any metric that still counts as equal.")
    ] = 1e-9,
) -> None:
    """Re-run a run from its record and compare every metric; exit 1 when any differs."""
    from mlship.cli.progress import progress_observer
    from mlship.train.reproduce import reproduce

    workspace = Workspace.open()
    try:
        with progress_observer() as observer:
            found = reproduce(workspace, run_id, observer)
    finally:
        workspace.close()
    table = Table(title=f"Run {found.original[:8]} reproduced as {found.reproduced[:8]}")
    for name in ("split", "candidate", "metric", "recorded", "reproduced", "difference"):
        table.add_column(
            name, justify="right" if name in ("recorded", "reproduced", "difference") else "left"
        )
    for item in found.compared:
        style = None if item.difference <= tolerance else "bold red"
        table.add_row(
            item.split,
            item.candidate or "-",
            item.name,
            fmt(item.recorded, 6),
            fmt(item.reproduced, 6),
            f"{item.difference:.2g}",
            style=style,
        )
    out.print(table)
    out.print("Same data (content hash): " + ("yes" if found.same_data else "no"))
    for package, (before, after) in found.changed_packages.items():
        out.print(f"Package {package}: {before or '-'} -> {after or '-'}")
    if found.matches(tolerance):
        out.print(f"Reproduced: every metric within {tolerance:g}.")
        return
    out.print(f"[bold red]Not reproduced:[/] metrics differ by more than {tolerance:g}.")
    raise typer.Exit(1)
