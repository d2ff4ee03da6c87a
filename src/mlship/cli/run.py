"""``mlship run``: execute a pipeline spec with a live progress display.

SIGTERM is what CI runners, Kubernetes and service managers send to cancel a job, and by default
it ends Python on the spot, leaving the run ``running`` and its workers behind. While a command
here trains, SIGTERM is raised as :class:`~mlship.train.lifeline.Terminated`, a
``KeyboardInterrupt``, so it takes the path Ctrl-C takes: the workers are stopped, the run is
marked failed with the reason, and the command exits 143 (130 for Ctrl-C), as a shell reports a
process ended by that signal. ``--resume`` later continues such a run (or one killed outright):
its finished trials and cross-validation folds are kept, not run again.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from mlship.cli.console import err, out
from mlship.cli.render import (
    backtest_table,
    fronts_table,
    leaderboard_table,
    metrics_table,
    print_fit_warnings,
    print_leakage,
    print_validation,
)
from mlship.spec import load_spec
from mlship.store.entities import model_of
from mlship.workspace import Workspace

if TYPE_CHECKING:
    from mlship.train.run import RunResult

SIGTERM_EXIT = 128 + signal.SIGTERM
SIGINT_EXIT = 128 + signal.SIGINT


@contextmanager
def stopping_cleanly() -> Iterator[None]:
    """Inside the block SIGTERM raises ``Terminated``; leaving it by SIGTERM or Ctrl-C says so on
    stderr and exits 143 or 130 (the run itself was marked failed on the way out)."""
    from mlship.train.lifeline import sigterm_interrupts

    with sigterm_interrupts() as received:
        try:
            yield
        except KeyboardInterrupt:
            if received.is_set():
                err.print("terminated (SIGTERM): workers stopped, run marked failed")
                raise typer.Exit(SIGTERM_EXIT) from None
            err.print("interrupted: workers stopped, run marked failed")
            raise typer.Exit(SIGINT_EXIT) from None


def run_spec(
    spec_path: Path, workspace: Workspace, *, resume: bool = False, resume_run: str | None = None
) -> RunResult:
    """Load, run and summarise a spec (shared by ``run`` and ``quickstart``)."""
    from mlship.cli.progress import progress_observer
    from mlship.train.run import execute

    loaded = load_spec(spec_path)
    with stopping_cleanly(), progress_observer() as observer:
        result = execute(loaded, workspace, observer, resume=resume, resume_run=resume_run)
    run = workspace.runs.get_run(result.run_id)
    reuse = " (inputs unchanged: stored dataset reused)" if result.dataset_reused else ""
    out.print(f"Dataset {result.dataset_hash[:12]}: {result.n_rows} rows{reuse}")
    print_validation(result.validation)
    details = result.details
    title = f"Leaderboard of run {run.id[:8]}"
    out.print(leaderboard_table(run.metric, run.candidates, title, details.costs))
    if details.costs:
        out.print(fronts_table(run.candidates, details.costs))
    selection = details.selection
    if selection is not None and selection.rule == "cheapest_within" and selection.reason:
        out.print(f"Selected by {escape(selection.reason)}")
    if details.split is not None and details.split.strategy is not None:
        out.print(escape(details.split.strategy.text), soft_wrap=True)
    if details.backtest is not None:
        out.print(backtest_table(details.backtest))
    for sentence in details.weighting.sentences():
        out.print(sentence)
    found = details.threshold
    if found is not None:
        out.print(
            f"Decision threshold of {result.selected} tuned for {found.metric}: "
            f"{found.threshold:.3f} (CV {found.metric} {found.cv_score_at_default:.4f} at "
            f"0.5 -> {found.cv_score_tuned:.4f})"
        )
    summary = details.nested_summary(result.selected)
    if summary is not None:
        out.print(f"Nested cross-validation of {result.selected}: {summary}")
    out.print(
        metrics_table(
            f"Test-set metrics of {run.best_candidate} (scored once, after selection)",
            result.holdout,
        )
    )
    print_fit_warnings(details.warnings or {})
    print_leakage(details.leakage)
    if details.report is not None:
        out.print(f"Evaluation report: {details.report}")
    out.print(
        f"Cost: {result.usage.cpu_seconds:.1f} CPU-s, peak "
        f"{result.usage.peak_memory_bytes / 2**20:.0f} MiB, "
        f"{result.cost:.4f} {workspace.settings.prices.currency}"
    )
    version = result.version
    out.print(
        f"Registered [bold]{loaded.spec.name}:{version.version}[/] "
        f"(artifact sha256 {version.artifact_sha256[:12]}, run {result.run_id[:8]}, "
        f"{result.wall_seconds:.1f} s)"
    )
    return result


def run(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    run_id: Annotated[
        str | None,
        typer.Argument(
            metavar="[RUN_ID]",
            help="With --resume: the run to continue (an id or unambiguous prefix), newest or not.",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue a run that was stopped or killed: the newest unfinished run of this "
            "spec, or RUN_ID (its finished trials and folds are kept, not run again).",
        ),
    ] = False,
    version_file: Annotated[
        Path | None,
        typer.Option(
            help="Write the registered MODEL:VERSION to this file, for the commands that come "
            "next in a script or CI pipeline.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Ingest, check, cross-validate or tune the candidates, evaluate the best and register it."""
    if run_id is not None and not resume:
        raise typer.BadParameter(
            f"a run id ({run_id}) is only taken with --resume: mlship run SPEC --resume {run_id}",
            param_hint="RUN_ID",
        )
    workspace = Workspace.open()
    try:
        result = run_spec(spec, workspace, resume=resume, resume_run=run_id)
    finally:
        workspace.close()
    if version_file is not None:
        _write_version(version_file, f"{model_of(result.version).name}:{result.version.version}")


def _write_version(path: Path, ref: str) -> None:
    """``ref`` and a newline to ``path``, whole or not at all (temp file, fsync, rename)."""
    from mlship.store.artifacts import atomic_write

    atomic_write(path, [(ref + "\n").encode("utf-8")])
