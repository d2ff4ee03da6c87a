"""Tables shown by several commands.

In a narrow terminal a table has to give up width somewhere. It gives it up in the name
columns, which fold onto more lines, never in the numbers: a number cut to ``0.81…`` is worse
than no number. :func:`number_column` keeps a column's values on one line, whole;
:func:`name_column` lets a column fold long names (a 60-character candidate name in an
80-column terminal takes several lines, the scores beside it stay whole).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from mlship.cli.console import err, out

if TYPE_CHECKING:
    from mlship.evaluation.compare import RunComparison
    from mlship.store.entities import Candidate
    from mlship.train.details import (
        BacktestRecord,
        CostsRecord,
        LeakageRecord,
        UndeclaredRecord,
        Warnings,
    )


def byte_size(count: int) -> str:
    """A number of bytes the way people read it: ``512 B``, ``3.4 MiB``."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def number_column(table: Table, header: str) -> None:
    """A right-aligned column whose values are never wrapped or cut. A header of two words
    goes on two lines, so a long metric name does not widen the column beyond its values."""
    table.add_column(header.replace(" ", "\n", 1), justify="right", no_wrap=True)


def name_column(table: Table, header: str) -> None:
    """A column of names that folds a long name onto more lines instead of cutting it."""
    table.add_column(header, overflow="fold")


def leaderboard_table(
    metric: str,
    candidates: Sequence[Candidate],
    title: str,
    costs: Mapping[str, CostsRecord] | None = None,
) -> Table:
    """Score, fit gap, what it cost and how fast it predicts, side by side; with the run's
    ``costs``, a distilled candidate's name says its teacher."""
    table = Table(title=title)
    number_column(table, "#")
    name_column(table, "candidate")
    number_column(table, f"cv {metric}")
    for header in ("train", "trials", "CPU-s", "cost", "predict ms"):
        number_column(table, header)
    for candidate in candidates:
        style = "bold green" if candidate.selected else None
        record = (costs or {}).get(candidate.name)
        name = candidate.name
        if record is not None and record.distilled_from is not None:
            name += f" (distilled from {record.distilled_from})"
        table.add_row(
            str(candidate.rank),
            name,
            f"{fmt(candidate.cv_mean)} ± {fmt(candidate.cv_std, 3)}",
            fmt(candidate.train_mean),
            str(candidate.trials or "-"),
            fmt(candidate.cpu_seconds, 1),
            fmt(candidate.cost, 4),
            fmt(candidate.predict_ms, 2),
            style=style,
        )
    return table


def fronts_table(candidates: Sequence[Candidate], costs: Mapping[str, CostsRecord]) -> Table:
    """What 1,000 predictions of each candidate cost, and the Pareto fronts of score against
    training cost, serving cost and latency it is on (``train·serve·latency``)."""
    table = Table(title="Cost against quality")
    number_column(table, "#")
    name_column(table, "candidate")
    number_column(table, "serve/1k")
    table.add_column("front", overflow="fold")
    for candidate in candidates:
        record = costs.get(candidate.name)
        table.add_row(
            str(candidate.rank),
            candidate.name,
            fmt(record.serving_per_1k if record else None, 6),
            front_flags(record.fronts) if record else "-",
            style="bold green" if candidate.selected else None,
        )
    return table


def front_flags(kinds: Sequence[str]) -> str:
    """The fronts a candidate is on as one cell: ``train·serve·latency``, ``-`` for none."""
    short = {"training": "train", "serving": "serve", "latency": "latency"}
    return "·".join(short.get(k, k) for k in kinds) or "-"


def trials_table(title: str, metric: str, trials: Sequence[Any]) -> Table:
    """Every trial of one search: what it tried, how it ended, what it scored and cost."""
    table = Table(title=title)
    number_column(table, "#")
    table.add_column("state")
    number_column(table, f"cv {metric}")
    table.add_column("folds", justify="right", overflow="fold")
    for header in ("wall s", "CPU-s", "cost"):
        number_column(table, header)
    name_column(table, "params")
    for trial in trials:
        style = {"PRUNED": "yellow", "FAIL": "red"}.get(trial.state)
        params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(trial.params.items()))
        if trial.error:
            params += f" ({trial.error})"
        table.add_row(
            str(trial.number),
            trial.state.lower(),
            fmt(trial.value),
            " ".join(f"{s:.3f}" for s in trial.fold_scores),
            fmt(trial.usage.wall_seconds, 2),
            fmt(trial.usage.cpu_seconds, 1),
            fmt(trial.cost, 5),
            params,
            style=style,
        )
    return table


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


_SECTION_TITLES = {
    "run": "run",
    "params": "params",
    "holdout": "test set",
    "cv": "cv",
    "resources": "resources",
}


def _compared(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


def comparison_table(comparison: RunComparison) -> Table:
    """One column per run; rows that differ in yellow, the best value of a metric in bold green
    with a star."""
    from mlship.evaluation.compare import SECTIONS

    table = Table(title="Runs " + " vs ".join(comparison.labels))
    table.add_column("section")
    table.add_column("field")
    for label in comparison.labels:
        table.add_column(label, justify="right", overflow="fold")
    for section in SECTIONS:
        rows = comparison.section(section)
        for index, row in enumerate(rows):
            cells = []
            for position, value in enumerate(row.values):
                text = _compared(value)
                if row.best and row.best[position]:
                    text = f"[bold green]{escape(text)} *[/]"
                else:
                    text = escape(text)
                cells.append(text)
            table.add_row(
                _SECTION_TITLES[section] if index == 0 else "",
                escape(row.name),
                *cells,
                style="yellow" if row.differs else None,
                end_section=index == len(rows) - 1,
            )
    return table


def metrics_table(title: str, metrics: dict[str, float]) -> Table:
    table = Table(title=title)
    name_column(table, "metric")
    number_column(table, "value")
    for name, value in metrics.items():
        table.add_row(name, fmt(value))
    return table


def backtest_table(backtest: BacktestRecord) -> Table:
    """Every time fold, then the test set: the span trained on, the span scored, the score, and
    how the errors sit (the mean residual, or the error rate) and move across the span."""
    residual = backtest.errors == "residual"
    title = f"Backtest over {escape(backtest.time)} (oldest first; the test set last)"
    table = Table(title=title)
    table.add_column("block")
    table.add_column("trained on")
    table.add_column("rows", justify="right")
    table.add_column("scored on")
    table.add_column("rows", justify="right")
    table.add_column(backtest.metric, justify="right")
    table.add_column("train", justify="right")
    table.add_column("mean residual" if residual else "error rate", justify="right")
    table.add_column("trend", justify="right")
    for row in backtest.rows:
        errors = row.errors
        table.add_row(
            escape(row.label),
            escape(f"{row.train.start} – {row.train.end}"),
            str(row.train.rows),
            escape(f"{row.validation.start} – {row.validation.end}"),
            str(row.validation.rows),
            fmt(row.score),
            fmt(row.train_score),
            _error(errors.level, "+.4g" if residual else ".1%"),
            _error(errors.trend, "+.4g" if residual else "+.1%"),
            style="bold" if row.label == "test" else None,
        )
    return table


def _error(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_undeclared(undeclared: UndeclaredRecord) -> None:
    """The columns of the sources the spec does not declare: left out, or inferred."""
    from mlship.data.undeclared import left_out_message

    if undeclared.left_out:
        out.print(left_out_message(list(undeclared.left_out)), style="yellow", markup=False)
    if undeclared.inferred:
        listed = ", ".join(f"{c.name} ({c.type}, {c.role})" for c in undeclared.inferred)
        out.print(
            f"{len(undeclared.inferred)} column(s) the spec does not declare were inferred "
            f"(columns: infer: true): {listed}",
            markup=False,
        )


def print_leakage(found: LeakageRecord | None) -> None:
    """A warning per column suspected of leaking the target, with the evidence (stderr)."""
    if found is None:
        return
    for suspect in found.suspects:
        err.print(
            f"[yellow]warning:[/] possible target leakage in column "
            f"{escape(repr(suspect.column))} ({suspect.test}, {suspect.measure} "
            f"{suspect.figure:.4g}): {escape(suspect.sentence)}",
            soft_wrap=True,
        )
    if found.suspects:
        err.print(
            "[yellow]warning:[/] no fit verdict while a suspect stands: remove the column, or "
            "list it under leakage.allow if it is known at prediction time",
            soft_wrap=True,
        )


def print_validation(summary: dict[str, Any]) -> None:
    """Rows in/out, quarantine, every declared check, and every check that found something."""
    if not summary:
        return
    rows = summary["rows"]
    share = summary.get("quarantined_share", 0.0)
    out.print(
        f"Validation: {rows['in']} rows in, {rows['out']} kept, {rows['quarantined']} quarantined "
        f"({share:.1%}, allowed {summary['max_quarantine']:.1%}), {rows['warned']} with warnings"
    )
    from mlship.train.details import UndeclaredRecord

    print_undeclared(UndeclaredRecord.from_json(summary.get("undeclared") or {}, "undeclared"))
    for found in summary.get("duplicates") or []:
        outcome = f", {found['outcome']}" if found["conflicting_keys"] else ""
        out.print(
            f"Duplicate keys in {found['source']} ({', '.join(found['key'])}): "
            f"{found['exact_copies']} exact copies collapsed, {found['conflicting_keys']} "
            f"conflicting keys{outcome}"
        )
    declared = summary.get("declared") or []
    if declared:
        table = Table(title="Declared checks")
        for name in ("column", "check", "result", "tested", "failed", "detail"):
            table.add_column(name, justify="right" if name in ("tested", "failed") else "left")
        for check in declared:
            passed = check["passed"]
            result = "passed" if passed else ("warn" if check["severity"] == "warn" else "failed")
            table.add_row(
                check["column"] or "(table)",
                check["check"],
                result,
                str(check["tested"]),
                str(check["failed"]),
                check.get("detail") or "",
                style=None if passed else ("yellow" if result == "warn" else "red"),
            )
        out.print(table)
    checks = summary.get("checks", [])
    if checks:
        table = Table(title="Checks that found problems")
        for name in ("column", "check", "severity", "rows", "example"):
            table.add_column(name, justify="right" if name == "rows" else "left")
        for check in checks:
            style = "red" if check["severity"] == "error" else "yellow"
            example = check["examples"][0] if check["examples"] else ""
            table.add_row(
                check["column"] or "(table)",
                check["check"],
                check["severity"],
                str(check["failed"]),
                example,
                style=style,
            )
        out.print(table)
    if summary.get("quarantine_path"):
        out.print(f"Quarantined rows, with a reason per failed check: {summary['quarantine_path']}")
    if summary.get("report_path"):
        out.print(f"Data report: {summary['report_path']}")


def print_fit_warnings(per_candidate: Warnings) -> None:
    """The library warnings fitting raised, once each with its count, per candidate."""
    from mlship.train.fit_warnings import summary_lines

    lines = summary_lines(per_candidate)
    if not lines:
        return
    out.print(f"Library warnings while fitting candidates ({len(lines)} kinds, counted):")
    for line in lines:
        out.print(f"  {escape(line)}", soft_wrap=True)
