"""``mlship gate``: may a candidate version replace the one in production? Exit 0 yes, 1 no,
2 when the gate could not judge.

Made for a CI pipeline: the verdict and every reason on the console, and on request as JSON,
a JUnit report and a Markdown summary for the pull request; a pass can file the promotion request,
which another person still approves. "Could not judge" (a bad gate file or evaluation file, an
unknown version, no version in production yet, rows the versions cannot be scored on) has its
own exit code so that a pipeline, or a person reading its log, can tell a candidate found worse
from a gate that never ran.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlship.cli.console import err, out
from mlship.errors import MlshipError

PASS, FAIL, NO_VERDICT = 0, 1, 2

if TYPE_CHECKING:
    from mlship.evaluation.gate import GateVerdict
    from mlship.registry.gate import EvaluationRows


def gate(
    candidate: Annotated[
        str, typer.Argument(help="The candidate: MODEL:VERSION, MODEL@STAGE or MODEL (newest).")
    ],
    against: Annotated[
        str,
        typer.Option(
            "--against",
            help="The baseline it must beat, usually MODEL@production.",
            show_default=False,
        ),
    ],
    gate_file: Annotated[
        Path | None,
        typer.Option(
            "--gate", help="A gate file (`gate:` block); by default the candidate's spec's."
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Declared evaluation rows (.csv, .parquet, .json, .jsonl) with the inputs and "
            "the target, instead of the candidate's test rows.",
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the verdict as JSON to this file.")
    ] = None,
    junit_out: Annotated[
        Path | None, typer.Option("--junit", help="Write a JUnit XML report to this file.")
    ] = None,
    markdown_out: Annotated[
        Path | None,
        typer.Option(
            "--markdown", help="Write a Markdown summary (for a PR comment) to this file."
        ),
    ] = None,
    request_promotion: Annotated[
        bool,
        typer.Option(
            "--request-promotion",
            help="On a pass, request the candidate's promotion to production (a person approves).",
        ),
    ] = False,
) -> None:
    """Score CANDIDATE and the baseline on the same held-out rows and decide with statistics.

    Exit 0 when the candidate passes, 1 when it fails (every reason is printed), 2 when the gate
    could not judge (bad input, an unknown version, no rows).
    """
    try:
        _gate(candidate, against, gate_file, data, json_out, junit_out, markdown_out,
              request_promotion)  # fmt: skip
    except MlshipError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        err.print(f"No verdict: the gate could not judge (exit {NO_VERDICT}).")
        raise typer.Exit(NO_VERDICT) from None


def _gate(
    candidate: str,
    against: str,
    gate_file: Path | None,
    data: Path | None,
    json_out: Path | None,
    junit_out: Path | None,
    markdown_out: Path | None,
    request_promotion: bool,
) -> None:
    from mlship.evaluation.gate_report import verdict_dict, verdict_junit, verdict_markdown
    from mlship.registry.gate import run_gate
    from mlship.registry.refs import resolve_version
    from mlship.spec.gate import load_gate_file
    from mlship.store.artifacts import atomic_write
    from mlship.store.entities import model_of
    from mlship.workspace import Workspace

    declared = load_gate_file(gate_file) if gate_file is not None else None
    rows = _read_rows(data) if data is not None else None
    workspace = Workspace.open()
    try:
        version = resolve_version(workspace, candidate)
        baseline = resolve_version(workspace, against)
        verdict = run_gate(workspace, version, baseline, declared, rows)
        if verdict.gate is not None and verdict.gate.budgets.drift is not None:
            from mlship.monitor.gate_drift import training_drift_check

            drift = training_drift_check(workspace, verdict.gate.budgets.drift, version, baseline)
            verdict = dataclasses.replace(verdict, checks=(*verdict.checks, drift))
        for path, text in (
            (json_out, json.dumps(verdict_dict(verdict), indent=2) + "\n" if json_out else ""),
            (junit_out, verdict_junit(verdict) if junit_out else ""),
            (markdown_out, verdict_markdown(verdict) if markdown_out else ""),
        ):
            if path is not None:
                atomic_write(path, [text.encode()])
        _print(verdict)
        if not verdict.passed:
            raise typer.Exit(FAIL)
        if request_promotion:
            reason = (
                f"gate passed against {verdict.baseline}: {verdict.difference.metric} "
                f"{verdict.difference.improvement:+.4f} "
                f"[{verdict.difference.low:+.4f}, {verdict.difference.high:+.4f}]"
            )
            try:
                change = workspace.registry.request_promotion(
                    model_of(version).name, version.version, reason
                )
            except MlshipError as exc:  # judged, but not filed: not a "could not judge"
                err.print(f"[bold red]error:[/] {escape(str(exc))}")
                err.print("The gate passed; the promotion request was not filed.")
                raise typer.Exit(1) from None
            out.print(
                f"Promotion of {verdict.candidate} to production requested "
                f"(#{change.request_id}); another user approves it with "
                f"`mlship models approve {verdict.candidate}`"
            )
    finally:
        workspace.close()


def _read_rows(path: Path) -> EvaluationRows:
    """A file of rows read exactly as ``mlship predict`` reads one."""
    from mlship.cli.predict import _format_of
    from mlship.data.sources import read_rows
    from mlship.registry.gate import EvaluationRows

    fmt = _format_of(path, inputs=True)
    frame = read_rows(path, fmt).frame.to_pandas()
    if frame.empty:
        raise MlshipError(f"{path}: no rows to evaluate on")
    return EvaluationRows(frame, str(path), csv_lines=fmt == "csv")


def _print(verdict: GateVerdict) -> None:
    from mlship.train.metrics import metric_label

    difference = verdict.difference
    table = Table(
        title=f"Gate: {verdict.candidate} against {verdict.baseline} "
        f"({metric_label(difference.metric)}, require: {verdict.require})"
    )
    for name in ("check", "result", "measured"):
        table.add_column(name, overflow="fold")
    for check in verdict.checks:
        table.add_row(
            check.name, "pass" if check.passed else "[bold red]fail[/]", escape(check.measured)
        )
    out.print(f"Scored on {escape(verdict.rows_from)}.")
    out.print(table)
    pair = f"{escape(verdict.candidate)} against {escape(verdict.baseline)}"
    for note in verdict.notes:
        out.print(f"note: {escape(note)}")
    if verdict.passed:
        out.print(f"[bold green]PASS[/]: {pair}")
        return
    out.print(f"[bold red]FAIL[/]: {pair} failed:")
    for reason in verdict.reasons:
        out.print(f"  - {escape(reason)}")
