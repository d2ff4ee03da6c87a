"""Declarative data checks compiled to Polars expressions and evaluated in one pass.

Row checks (ranges, allowed values, patterns, uniqueness, outliers, cross-column rules, duplicate
rows) produce one boolean column each; rows failing an ``error`` check are quarantined with a
reason per failed check, rows failing only ``warn`` checks are kept and counted. Table checks (row
count, missing share, distribution against a reference) fail the whole run when their severity is
``error``. Nothing is dropped without a reason.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

from mlship.data.profile import psi
from mlship.data.typing import REASONS, WARNINGS
from mlship.spec.data import Column, ColumnCheck, Severity, TableChecks

SOURCE = "_source"
ROW = "_row"
TRACKING = (SOURCE, ROW, REASONS, WARNINGS)
_EXAMPLES = 3


@dataclass(frozen=True)
class RowCheck:
    """One compiled row check: ``failed`` is true on rows that break it."""

    key: str
    column: str | None
    check: str
    severity: Severity
    failed: pl.Expr
    message: pl.Expr


@dataclass
class CheckResult:
    column: str | None
    check: str
    severity: Severity
    failed: int
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "check": self.check,
            "severity": self.severity,
            "failed": self.failed,
            "examples": self.examples,
        }


@dataclass
class Validation:
    """Outcome of validating a table.

    The clean table is the input without its quarantined rows and tracking columns. It is built
    on first use, so a caller that only needs the verdict, or streams the rows elsewhere, never
    pays for a copy of the data.
    """

    frame: pl.DataFrame
    quarantined: pl.Series
    quarantine: pl.DataFrame
    results: list[CheckResult]
    rows_in: int
    warned: int
    table_errors: list[str]
    max_quarantine: float

    @cached_property
    def clean(self) -> pl.DataFrame:
        kept = self.frame.select(c for c in self.frame.columns if c not in TRACKING)
        return kept.filter(~self.quarantined) if len(self.quarantine) else kept

    @property
    def rows_out(self) -> int:
        return self.rows_in - len(self.quarantine)

    @property
    def quarantined_share(self) -> float:
        return len(self.quarantine) / self.rows_in if self.rows_in else 0.0

    @property
    def passed(self) -> bool:
        return not self.table_errors and self.quarantined_share <= self.max_quarantine

    def summary(self) -> dict[str, Any]:
        return {
            "rows": {
                "in": self.rows_in,
                "quarantined": len(self.quarantine),
                "warned": self.warned,
                "out": self.rows_out,
            },
            "max_quarantine": self.max_quarantine,
            "quarantined_share": self.quarantined_share,
            "passed": self.passed,
            "table_errors": self.table_errors,
            "checks": [r.as_dict() for r in self.results],
        }


def _shown(column: Column, expr: pl.Expr) -> pl.Expr:
    if column.role == "pii":
        return pl.lit("(private value)")
    return expr.cast(pl.String)


def _message(column: Column, text: str) -> pl.Expr:
    return pl.concat_str(
        [pl.lit(f"{column.name}: "), _shown(column, pl.col(column.name)), pl.lit(text)]
    )


def _typed_literals(values: Sequence[Any], dtype: pl.DataType) -> pl.Series:
    return pl.Series(values).cast(dtype, strict=False)


def _column_checks(
    column: Column, check: ColumnCheck, dtype: pl.DataType, index: int
) -> list[RowCheck]:
    col = pl.col(column.name)
    present = col.is_not_null()
    key = f"{column.name}.{index}"
    found: list[RowCheck] = []

    def add(name: str, failed: pl.Expr, text: str) -> None:
        found.append(
            RowCheck(
                f"{key}.{name}",
                column.name,
                name,
                check.severity,
                present & failed,
                _message(column, text),
            )
        )

    if check.min is not None:
        add("min", col < check.min, f" is below the minimum {check.min:g}")
    if check.max is not None:
        add("max", col > check.max, f" is above the maximum {check.max:g}")
    if check.allowed is not None:
        allowed = _typed_literals(check.allowed, dtype)
        shown = ", ".join(map(str, check.allowed[:10]))
        add("allowed", ~col.is_in(allowed.implode()), f" is not one of: {shown}")
    if check.regex is not None:
        add(
            "regex",
            ~col.cast(pl.String).str.contains(f"^(?:{check.regex})$"),
            f" does not match {check.regex}",
        )
    if check.unique:
        add("unique", ~col.is_first_distinct(), " repeats an earlier row's value")
    if check.outliers is not None:
        threshold = check.outliers.threshold
        if check.outliers.method == "iqr":
            q1, q3 = col.quantile(0.25), col.quantile(0.75)
            low, high = q1 - threshold * (q3 - q1), q3 + threshold * (q3 - q1)
        else:
            low, high = col.mean() - threshold * col.std(), col.mean() + threshold * col.std()
        add(
            "outliers",
            (col < low) | (col > high),
            f" is an outlier ({check.outliers.method}, threshold {threshold:g})",
        )
    return found


def compile_row_checks(
    columns: Sequence[Column], table: TableChecks, schema: dict[str, pl.DataType]
) -> list[RowCheck]:
    """Every row-level check of the spec as Polars expressions."""
    checks: list[RowCheck] = []
    for column in columns:
        if column.name not in schema:
            continue
        for index, check in enumerate(column.checks):
            checks.extend(_column_checks(column, check, schema[column.name], index))
    for rule in table.rules:
        holds = pl.sql_expr(rule.expr).fill_null(True)
        checks.append(
            RowCheck(
                f"rule.{rule.name}",
                None,
                f"rule {rule.name}",
                rule.severity,
                ~holds,
                pl.lit(f"rule {rule.name} ({rule.expr}) is false"),
            )
        )
    data_columns = [c for c in schema if c not in TRACKING]
    for index, names in enumerate(table.unique):
        checks.append(
            RowCheck(
                f"unique.{index}",
                None,
                f"unique ({', '.join(names)})",
                "error",
                ~pl.struct(names).is_first_distinct(),
                pl.lit(f"({', '.join(names)}) repeats an earlier row's values"),
            )
        )
    if table.duplicates != "allow":
        severity: Severity = "error" if table.duplicates == "quarantine" else "warn"
        checks.append(
            RowCheck(
                "duplicates",
                None,
                "duplicate row",
                severity,
                ~pl.struct(data_columns).is_first_distinct(),
                pl.lit("duplicate of an earlier row"),
            )
        )
    return checks


def _flags(frame: pl.DataFrame, checks: Sequence[RowCheck]) -> pl.DataFrame:
    """One boolean column per check, all evaluated in one parallel pass.

    Common-subexpression elimination is off: sharing ``is_not_null()`` between a column's
    checks saves little, and caching it makes Polars merge the chunks of every column, a full
    copy of a table read in parallel.
    """
    no_cache = pl.QueryOptFlags(comm_subexpr_elim=False)
    exprs = [c.failed.fill_null(False).alias(c.key) for c in checks]
    return frame.lazy().select(exprs).collect(optimizations=no_cache)


def _gather(frame: pl.DataFrame, rows: pl.Series, needed: Collection[str]) -> pl.DataFrame:
    """Rows ``rows`` of the named columns and the tracking columns.

    Gathered column by column as Series: a DataFrame-level select or row selection goes
    through the query engine, which for a table read in parallel (dozens of chunks per column)
    costs milliseconds and a merged copy of each column; a Series gather costs microseconds.
    """
    names = [c for c in frame.columns if c in needed or c in (SOURCE, ROW)] or frame.columns[:1]
    return pl.DataFrame([frame.get_column(name).gather(rows) for name in names])


def _where(frame: pl.DataFrame, rows: pl.Series) -> pl.Expr:
    """Where each of ``frame``'s rows came from; ``rows`` are their positions in the input."""
    if SOURCE in frame.columns and ROW in frame.columns:
        return pl.format("{} {}", pl.col(SOURCE), pl.col(ROW))
    return pl.format("row {}", pl.lit(rows + 1))


_NOT_NULLABLE = "is empty, but the column is not nullable"
_LOCATED = r"^[^:]+ (?:line|row) \d+: "
_LOCATED_RE = re.compile(_LOCATED)


def _typing_results(
    frame: pl.DataFrame,
    failed: pl.Series,
    known: set[str],
    severity: Severity = "error",
    found_in: str = REASONS,
) -> list[CheckResult]:
    """Results per column for the reasons typing gave (``type``, or ``nullable`` for empties);
    with ``found_in=WARNINGS``, for the values typing made null with a warning.

    Each reason starts with its column's name; reasons that name no declared column (from a
    join, say) are reported for the table. A reason that already says where its row is (typing
    starts it with ``source line N: ``) is shown as it is.
    """
    rows = failed.arg_true()
    sample = _gather(frame, rows, [found_in])
    parts = sample.select(
        _where(sample, rows).alias("where"), pl.col(found_in).str.split("; ").alias("reason")
    ).explode("reason")
    parts = parts.with_columns(
        pl.col("reason").str.replace(_LOCATED, "").str.extract(r"^([^:]+): ", 1).alias("column"),
        pl.when(pl.col("reason").str.contains(_NOT_NULLABLE, literal=True))
        .then(pl.lit("nullable"))
        .otherwise(pl.lit("type"))
        .alias("check"),
    )
    results = []
    for (column, check), group in parts.group_by(["column", "check"], maintain_order=True):
        name = column if column in known else None
        examples = [
            r if _LOCATED_RE.match(r) else f"{w}: {r}"
            for w, r in group.select("where", "reason").head(_EXAMPLES).rows()
        ]
        results.append(CheckResult(name, str(check), severity, group["where"].n_unique(), examples))
    return results


def _examples(
    frame: pl.DataFrame, flags: pl.DataFrame, checks: Sequence[RowCheck]
) -> dict[str, list[str]]:
    """The first few failing rows of each check, each with where it came from.

    The rows of all checks are gathered once and every message is formatted in one pass over
    that small sample, instead of one query per check.
    """
    if not checks:
        return {}
    firsts = flags.select(pl.col(c.key).arg_true().head(_EXAMPLES).implode() for c in checks).row(0)
    rows = sorted({row for found in firsts for row in found})
    positions = pl.Series(rows, dtype=pl.get_index_type())
    needed = {name for c in checks for name in c.message.meta.root_names()}
    sample = _gather(frame, positions, needed)
    where = _where(sample, positions)
    texts = sample.select(pl.format("{}: {}", where, c.message).alias(c.key) for c in checks)
    at = {row: index for index, row in enumerate(rows)}
    return {
        c.key: [texts[c.key][at[row]] for row in found]
        for c, found in zip(checks, firsts, strict=True)
    }


def _table_errors(
    frame: pl.DataFrame,
    bad: pl.Series,
    columns: Sequence[Column],
    table: TableChecks,
    references: dict[str, pl.Series],
) -> tuple[list[str], list[CheckResult]]:
    errors: list[str] = []
    results: list[CheckResult] = []
    if table.rows is not None:
        n = len(frame) - int(bad.sum())
        if table.rows.min is not None and n < table.rows.min:
            errors.append(f"the dataset has {n} rows, fewer than the minimum {table.rows.min}")
        if table.rows.max is not None and n > table.rows.max:
            errors.append(f"the dataset has {n} rows, more than the maximum {table.rows.max}")
    for column in columns:
        for check in column.checks:
            if column.name not in frame.columns:
                continue
            if check.max_missing is not None and len(frame):
                share = frame[column.name].is_null().sum() / len(frame)
                if share > check.max_missing:
                    message = (
                        f"{column.name}: {share:.1%} missing, more than {check.max_missing:.1%}"
                    )
                    results.append(
                        CheckResult(
                            column.name,
                            "max_missing",
                            check.severity,
                            int(frame[column.name].is_null().sum()),
                            [message],
                        )
                    )
                    if check.severity == "error":
                        errors.append(message)
            if check.distribution is not None and column.name in references:
                kept = frame[column.name].filter(~bad)
                value = population_stability(references[column.name], kept)
                if value > check.distribution.max_psi:
                    message = (
                        f"{column.name}: distribution shifted from the reference "
                        f"(PSI {value:.3f} > {check.distribution.max_psi:g})"
                    )
                    results.append(
                        CheckResult(
                            column.name, "distribution", check.severity, len(kept), [message]
                        )
                    )
                    if check.severity == "error":
                        errors.append(message)
    return errors, results


def population_stability(reference: pl.Series, current: pl.Series, bins: int = 10) -> float:
    """PSI of ``current`` against ``reference``: quantile bins for numbers, levels for labels."""
    reference, current = reference.drop_nulls(), current.drop_nulls()
    if reference.is_empty() or current.is_empty():
        return 0.0
    if reference.dtype.is_numeric() and current.dtype.is_numeric():
        ref = reference.cast(pl.Float64).to_numpy()
        cur = current.cast(pl.Float64).to_numpy()
        cuts = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
        expected = np.bincount(np.searchsorted(cuts, ref, side="right"), minlength=len(cuts) + 1)
        actual = np.bincount(np.searchsorted(cuts, cur, side="right"), minlength=len(cuts) + 1)
    else:
        ref_counts = reference.cast(pl.String).value_counts()
        cur_counts = current.cast(pl.String).value_counts()
        name = ref_counts.columns[0]
        joined = ref_counts.join(cur_counts, on=name, how="full", coalesce=True, suffix="_current")
        joined = joined.fill_null(0)
        expected = joined["count"].to_numpy()
        actual = joined["count_current"].to_numpy()
    return psi(expected.tolist(), actual.tolist())


def validate(
    frame: pl.DataFrame,
    columns: Sequence[Column],
    table: TableChecks,
    references: dict[str, pl.Series] | None = None,
) -> Validation:
    """Run every check on ``frame`` (typed; may carry ``_source``/``_row``/``_reasons``).

    All row checks are evaluated together into boolean columns, one per check; counts come from
    their sums. Reason strings are built only for the rows that are quarantined, so a clean
    table costs one parallel pass and no copy.
    """
    checks = compile_row_checks(columns, table, dict(frame.schema))
    if REASONS not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(REASONS))
    flags = _flags(frame, checks)
    typing_failed = frame[REASONS].is_not_null()
    errors = [c for c in checks if c.severity == "error"]
    warns = [c for c in checks if c.severity == "warn"]
    bad = typing_failed
    if errors:
        bad = bad | flags.select(pl.any_horizontal(c.key for c in errors)).to_series()
    counts = flags.sum().row(0, named=True) if checks else {}

    results: list[CheckResult] = []
    if typing_failed.any():
        results.extend(_typing_results(frame, typing_failed, {c.name for c in columns}))
    typing_warned = (
        frame[WARNINGS].is_not_null()
        if WARNINGS in frame.columns
        else pl.repeat(False, len(frame), eager=True)
    )
    if typing_warned.any():
        known = {c.name for c in columns}
        results.extend(_typing_results(frame, typing_warned, known, "warn", WARNINGS))
    failing = [c for c in checks if counts[c.key]]
    examples = _examples(frame, flags, failing)
    results.extend(
        CheckResult(c.column, c.check, c.severity, counts[c.key], examples[c.key]) for c in failing
    )

    warned = int((typing_warned & ~bad).sum())
    if warns:
        any_warn = pl.any_horizontal([pl.col(c.key) for c in warns]) | pl.lit(typing_warned)
        warned = int(flags.select((any_warn & ~pl.lit(bad)).sum()).item())

    if bad.any():
        failed = [c for c in errors if counts[c.key]]
        marks = flags.select(c.key for c in failed)[bad.arg_true()] if failed else pl.DataFrame()
        quarantine = _quarantine(frame.filter(bad), marks, failed)
    else:
        quarantine = frame.clear()
    table_errors, table_results = _table_errors(frame, bad, columns, table, references or {})
    return Validation(
        frame=frame,
        quarantined=bad,
        quarantine=quarantine,
        results=results + table_results,
        rows_in=len(frame),
        warned=warned,
        table_errors=table_errors,
        max_quarantine=table.max_quarantine,
    )


def _quarantine(rows: pl.DataFrame, flags: pl.DataFrame, failed: list[RowCheck]) -> pl.DataFrame:
    """The quarantined rows with all their reasons, and one column per failed error check."""
    marked = rows.with_columns([flags[c.key].alias(f"__{c.key}") for c in failed])
    per_check = [
        pl.when(pl.col(f"__{c.key}")).then(c.message).alias(f"_check:{c.key}") for c in failed
    ]
    reasons = pl.concat_str(
        [pl.col(REASONS), *(pl.col(f"_check:{c.key}") for c in failed)],
        separator="; ",
        ignore_nulls=True,
    )
    return (
        marked.with_columns(per_check)
        .with_columns(reasons.alias(REASONS))
        .drop([f"__{c.key}" for c in failed])
    )
