"""Tables shown by several commands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from mlship.cli.console import err, out

if TYPE_CHECKING:
    from mlship.evaluation.compare import RunComparison
    from mlship.store.tables import Candidate


def fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def leaderboard_table(metric: str, candidates: Sequence[Candidate], title: str) -> Table:
    """Score, fit gap, what it cost and how fast it predicts, side by side."""
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("candidate")
    table.add_column(f"cv {metric}", justify="right")
    table.add_column("train", justify="right")
    table.add_column("trials", justify="right")
    table.add_column("CPU-s", justify="right")
    table.add_column("cost", justify="right")
    table.add_column("predict ms", justify="right")
    for candidate in candidates:
        style = "bold green" if candidate.selected else None
        table.add_row(
            str(candidate.rank),
            candidate.name,
            f"{fmt(candidate.cv_mean)} ± {fmt(candidate.cv_std, 3)}",
            fmt(candidate.train_mean),
            str(candidate.trials or "-"),
            fmt(candidate.cpu_seconds, 1),
            fmt(candidate.cost, 4),
            fmt(candidate.predict_ms, 2),
            style=style,
        )
    return table


def trials_table(title: str, metric: str, trials: Sequence[Any]) -> Table:
    """Every trial of one search: what it tried, how it ended, what it scored and cost."""
    table = Table(title=title)
    for name in ("#", "state", f"cv {metric}", "folds", "wall s", "CPU-s", "cost", "params"):
        right = name not in ("state", "params")
        table.add_column(name, justify="right" if right else "left", overflow="fold")
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
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, fmt(value))
    return table


def print_leakage(found: dict[str, Any]) -> None:
    """A warning per column suspected of leaking the target, with the evidence (stderr)."""
    for suspect in found.get("suspects") or []:
        err.print(
            f"[yellow]warning:[/] possible target leakage in column "
            f"{escape(repr(suspect['column']))} ({suspect['test']}, {suspect['measure']} "
            f"{suspect['figure']:.4g}): {escape(suspect['sentence'])}",
            soft_wrap=True,
        )
    if found.get("suspects"):
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
