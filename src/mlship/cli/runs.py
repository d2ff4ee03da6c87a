"""``mlship runs list|show|abandon|report|reproduce|compare|tag|owner|note``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlship.cli.annotate import (
    NoteFile,
    OwnerFilter,
    TagFilter,
    note_text,
    parse_pairs,
    print_notes,
    show_tags,
)
from mlship.cli.console import out
from mlship.cli.options import OutputDir
from mlship.cli.render import (
    backtest_table,
    comparison_table,
    fmt,
    fronts_table,
    leaderboard_table,
    metrics_table,
    name_column,
    number_column,
    print_fit_warnings,
    print_undeclared,
    trials_table,
)
from mlship.errors import MlshipError
from mlship.store.run_search import Condition, RunQuery
from mlship.train.details import LeakageRecord, RunDetails, UndeclaredRecord
from mlship.workspace import Workspace

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mlship.store.entities import Candidate
    from mlship.train.tuning import TrialRecord

app = typer.Typer(help="Look at recorded runs, compare and annotate them.", no_args_is_help=True)

RunRef = Annotated[
    str,
    typer.Argument(help="Run id (or a unique prefix), or a pipeline name for its newest run."),
]


@app.command("list")
def list_runs(
    limit: Annotated[
        int, typer.Option("--limit", help="Runs per page (at most 1000).", min=1)
    ] = 50,
    owner: OwnerFilter = None,
    tag: TagFilter = None,
    filter: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help='Only runs where every condition holds, e.g. "metric.roc_auc > 0.8 and '
            'param.model = gbm and tag.team = growth" (also status, owner, user, pipeline, '
            "duration, cost).",
        ),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            "--sort",
            help="KEY[:asc|desc]: started (the default), duration, cost, pipeline, status, "
            "owner, metric.NAME or param.NAME; descending unless :asc.",
        ),
    ] = None,
    page: Annotated[int, typer.Option("--page", help="Which page of --limit runs.", min=1)] = 1,
    search: Annotated[
        str | None,
        typer.Option(
            "--search",
            help="Only runs whose id starts with TEXT, or whose pipeline, owner, selected "
            "candidate or notes contain it (any case).",
        ),
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option("--column", help="Also show metric.NAME or param.NAME (repeat for several)."),
    ] = None,
) -> None:
    """List runs, newest first: filtered, sorted and paginated by the store."""
    query = RunQuery.of(
        filter or "", sort=sort, text=search, page=page, page_size=limit, columns=column or ()
    )
    extra = [Condition(field="owner", op="=", value=owner)] if owner is not None else []
    extra += [
        Condition(field=f"tag.{key}", op="=", value=value)
        for key, value in parse_pairs(tag or []).items()
    ]
    query = replace(query, conditions=(*query.conditions, *extra))
    workspace = Workspace.open()
    try:
        found = workspace.runs.search_runs(query)
    finally:
        workspace.close()
    table = Table(title="Runs")
    table.add_column("run", no_wrap=True)
    name_column(table, "pipeline")
    for name in ("status", "owner", "tags", "started (UTC)"):
        table.add_column(name, overflow="fold")
    number_column(table, "wall s")
    name_column(table, "best")
    table.add_column("metric", overflow="fold")
    number_column(table, "cv")
    for name in query.shown:  # params may be text: their column reads left to right
        (number_column if name.startswith("metric.") else name_column)(table, name)
    for run in found.rows:
        table.add_row(
            run.id[:8],
            run.pipeline,
            run.status,
            run.owner,
            show_tags(run.tags),
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            fmt(run.wall_seconds, 1),
            run.best_candidate or "-",
            run.metric,
            fmt(run.best_cv),
            *(_value(run.values.get(name)) for name in query.shown),
        )
    out.print(table)
    if found.total > len(found.rows) or found.page > 1:
        more = f"; the next: --page {found.next_page}" if found.next_page else ""
        out.print(
            f"page {found.page} of {found.pages} ({found.total} runs, {found.page_size} a page)"
            f"{more}"
        )


def _value(value: float | str | None) -> str:
    """A named value in a list: numbers as given (no trailing .0 on whole ones)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    return escape(value)


@app.command("show")
def show(
    run_id: RunRef,
    trials: Annotated[
        bool, typer.Option("--trials", help="Also list every trial of every search.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run's record as one JSON object.")
    ] = False,
) -> None:
    """Everything recorded about one run."""

    workspace = Workspace.open()
    try:
        run = workspace.runs.get_run(run_id)
        notes = workspace.runs.notes("run", run.id)
        searches = _searches(workspace, run.id) if trials else {}
    finally:
        workspace.close()
    details = RunDetails.from_json(run.details)  # a damaged record stops here, before any output
    if as_json:
        from mlship.cli.run_record import run_record

        out.print_json(json.dumps(run_record(run, notes, searches), default=str))
        return
    facts = Table(title=f"Run {run.id}", show_header=False)
    facts.add_column("field")
    facts.add_column("value", overflow="fold")
    dataset = run.dataset
    rows = [
        ("pipeline", run.pipeline),
        ("status", run.status),
        ("user", run.user),
        ("owner", run.owner),
        ("tags", show_tags(run.tags)),
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
        ("process", f"pid {run.pid} on {run.host}" if run.pid is not None else "-"),
        (
            "heartbeat (UTC)",
            run.heartbeat_at.isoformat(timespec="seconds") if run.heartbeat_at else "-",
        ),
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
        _print_candidates(run.metric, run.candidates, details)
    _print_details(details)
    holdout = {m.name: m.value for m in run.metrics if m.split == "holdout"}
    if holdout:
        out.print(metrics_table(f"Holdout metrics of {run.best_candidate}", holdout))
    for study, found in searches.items():
        out.print(trials_table(f"Trials of {study}", run.metric, found))
    if trials and not searches:
        out.print("No search was run: every candidate had fixed parameters.")
    print_notes(notes)


def _print_candidates(metric: str, candidates: Sequence[Candidate], details: RunDetails) -> None:
    """The leaderboard, the fronts, the selected params and any sample-first tuning."""
    out.print(leaderboard_table(metric, candidates, "Candidates", details.costs))
    if details.costs:
        out.print(fronts_table(candidates, details.costs))
    for candidate in candidates:
        if candidate.selected:
            out.print(f"Selected params: {json.dumps(candidate.params, sort_keys=True)}")
    for candidate in candidates:
        stages = (candidate.tuning or {}).get("sample_first")
        if stages:
            out.print(f"Sample-first tuning of {candidate.name}: {_stages_line(stages)}")


def _stages_line(stages: list[dict[str, int]]) -> str:
    """``48 points on 600 rows, 16 on 1800, 6 confirmed on all 2400``: the last is the full CV."""
    *screens, final = stages
    said = [
        f"{stage['candidates']} {'points ' if i == 0 else ''}on {stage['rows']} rows"
        for i, stage in enumerate(screens)
    ]
    said.append(f"{final['candidates']} confirmed by cross-validation on all {final['rows']}")
    return ", ".join(said)


@app.command("abandon")
def abandon(
    run_id: RunRef,
    reason: Annotated[
        str, typer.Option(help="Why, for the record (by default: what shows the process is gone).")
    ] = "",
    force: Annotated[
        bool,
        typer.Option("--force", help="Close the record even though the run's process looks alive."),
    ] = False,
) -> None:
    """Close a run whose process is gone (killed, its machine lost): it is marked abandoned."""
    workspace = Workspace.open()
    try:
        run = workspace.runs.abandon_run(run_id, reason=reason, force=force)
    finally:
        workspace.close()
    out.print(f"Run {run.id[:8]} is abandoned ({run.error})")


def _searches(workspace: Workspace, run_id: str) -> dict[str, list[TrialRecord]]:
    from mlship.train.tuning import trials_of

    return trials_of(workspace.tuning_storage(run_id), run_id)


def _print_details(details: RunDetails) -> None:
    """How the run split its data, its backtest over time, what the threshold and nested CV
    found, and what became of the columns the spec does not declare."""
    print_undeclared(details.undeclared or UndeclaredRecord())
    selection = details.selection
    if selection is not None and selection.rule == "cheapest_within" and selection.reason:
        out.print(f"Selected by {escape(selection.reason)}")
    split = details.split
    if split is not None and split.strategy is not None:
        out.print(escape(split.strategy.text), soft_wrap=True)
        out.print(f"The {split.test_rows} test rows were scored {split.test_scored}")
    elif split is not None:
        out.print(
            f"Split: {split.train_rows} training rows in {split.folds} folds, "
            f"{split.test_rows} test rows scored {split.test_scored}"
        )
    backtest = details.backtest
    if backtest is not None:
        out.print(backtest.test_set)
        out.print(backtest_table(backtest))
    fitted_on = details.fitted_on
    if fitted_on is not None:
        out.print(fitted_on.sentence())
    for sentence in details.weighting.sentences():
        out.print(sentence)
    print_fit_warnings(details.warnings or {})
    found = details.threshold
    if found is not None:
        out.print(
            f"Decision threshold tuned for {found.metric}: {found.threshold:.4f} "
            f"(CV {found.cv_score_at_default:.4f} at 0.5 -> {found.cv_score_tuned:.4f})"
        )
    _print_screening(details.leakage)
    if details.nested:
        outer = split.outer_folds if split is not None else None
        table = Table(title=f"Nested cross-validation ({outer} outer folds)")
        name_column(table, "candidate")
        number_column(table, "mean")
        number_column(table, "std")
        table.add_column("outer scores")
        table.add_column("tuned")
        for name, estimate in details.nested.items():
            table.add_row(
                name,
                fmt(estimate.mean),
                fmt(estimate.std, 3),
                " ".join(f"{s:.3f}" for s in estimate.scores),
                "yes" if estimate.tuned else "no",
            )
        out.print(table)


def _print_screening(screening: LeakageRecord | None) -> None:
    """What screening the features for target leakage found, each suspect with its evidence."""
    if screening is None:
        return
    if screening.mode == "off":
        out.print("Leakage screening: off")
        return
    allowed = screening.allowed
    out.print(
        f"Leakage screening ({screening.mode}): {screening.screened} features screened, "
        f"{len(screening.suspects)} suspect(s)"
        + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    )
    for suspect in screening.suspects:
        out.print(
            f"  possible target leakage in {escape(repr(suspect.column))} "
            f"({suspect.test}): {escape(suspect.sentence)}",
            soft_wrap=True,
        )


@app.command("report")
def report(
    run_id: RunRef,
    output: OutputDir = None,
) -> None:
    """Write a run's evaluation report (JSON and self-contained HTML) from the store."""
    from mlship.evaluation import write_evaluation_report

    workspace = Workspace.open()
    try:
        run = workspace.runs.get_run(run_id)
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
    run_id: RunRef,
    tolerance: Annotated[
        float, typer.Option(help="Largest difference of any metric that still counts as equal.")
    ] = 1e-9,
) -> None:
    """Re-run a run from its record and compare every metric; exit 1 when any differs."""
    from mlship.cli.progress import progress_observer
    from mlship.cli.run import stopping_cleanly
    from mlship.train.reproduce import reproduce

    workspace = Workspace.open()
    try:
        with stopping_cleanly(), progress_observer() as observer:
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


@app.command("tag")
def tag_run(
    run_id: RunRef,
    tags: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE to set.")] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="A tag KEY to remove (repeatable).")
    ] = None,
) -> None:
    """Set or remove tags of a run."""
    changes: dict[str, str | None] = {**parse_pairs(tags or [])}
    changes.update(dict.fromkeys(remove or []))
    if not changes:
        raise MlshipError("nothing to change: give KEY=VALUE tags or --remove KEY")
    workspace = Workspace.open()
    try:
        run = workspace.runs.tag_run(run_id, changes)
    finally:
        workspace.close()
    out.print(f"Run {run.id[:8]} tags: {show_tags(run.tags)}")


@app.command("owner")
def set_owner(
    run_id: RunRef,
    user: Annotated[str, typer.Argument(help="Who owns the run from now on.")],
) -> None:
    """Hand a run over to another owner."""
    workspace = Workspace.open()
    try:
        run = workspace.runs.set_run_owner(run_id, user)
    finally:
        workspace.close()
    out.print(f"Run {run.id[:8]} is owned by {run.owner}")


@app.command("note")
def note(
    run_id: RunRef,
    text: Annotated[str | None, typer.Argument(help="The note, in markdown.")] = None,
    file: NoteFile = None,
    reply_to: Annotated[
        int | None, typer.Option("--reply-to", help="The note of this run it answers (#id).")
    ] = None,
) -> None:
    """Add a markdown note to a run, or answer one (notes are kept in order, never edited)."""
    body = note_text(text, file)
    workspace = Workspace.open()
    try:
        added = workspace.runs.add_run_note(run_id, body, reply_to)
    finally:
        workspace.close()
    answer = f", in reply to #{added.reply_to}" if added.reply_to else ""
    out.print(f"Note #{added.id} added to run {added.target_id[:8]} by {added.author}{answer}")


@app.command("compare")
def compare(
    runs: Annotated[
        list[str],
        typer.Argument(help="Two or more runs: ids, unique prefixes or pipeline names."),
    ],
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write the comparison as an HTML page in this directory."),
    ] = None,
) -> None:
    """Runs side by side: data, spec, selected candidate and params, metrics, time and cost."""
    from mlship.evaluation.compare import compare_runs

    workspace = Workspace.open()
    try:
        found = compare_runs([workspace.runs.get_run(ref) for ref in runs])
    finally:
        workspace.close()
    out.print(comparison_table(found))
    if html is not None:
        from mlship.evaluation.compare_page import write_comparison

        _, html_path = write_comparison(html, found)
        out.print(f"HTML: {html_path}")
