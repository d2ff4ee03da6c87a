"""Declarative data checks compiled to Polars expressions and evaluated in one pass.

Row checks (ranges, allowed values, patterns, uniqueness, outliers, cross-column rules, duplicate
rows) produce one boolean column each; rows failing an ``error`` check are quarantined with a
reason per failed check, rows failing only ``warn`` checks are kept and counted. Table checks (row
count, missing share, distribution against a reference) fail the whole run when their severity is
``error``. Nothing is dropped without a reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import polars as pl

from mlship.data.duplicates import DuplicateCounts
from mlship.data.stability import stability
from mlship.data.tracking import (
    DUPLICATE_KEY,
    PLACED,
    PROVENANCE,
    ROW,
    SOURCE,
    from_column,
    is_provenance,
    provenance_column,
    source_of,
)
from mlship.data.typing import REASONS, WARNINGS
from mlship.spec.data import Column, ColumnCheck, Severity, TableChecks

__all__ = ["ROW", "SOURCE", "TRACKING", "Validation", "compile_row_checks", "validate"]

TRACKING = (SOURCE, ROW, REASONS, WARNINGS)
_EXAMPLES = 3

FirstSeen = Callable[[Sequence[str]], pl.Expr]
"""Which rows hold the first occurrence of their values in the named columns. By default it is
computed over the frame at hand; a table validated in batches passes one that knows the rows of
the earlier batches (see :mod:`mlship.data.stream_ingest`)."""


def first_distinct(names: Sequence[str]) -> pl.Expr:
    """The rows of the frame whose values in ``names`` occur there for the first time."""
    return (
        pl.col(names[0]).is_first_distinct()
        if len(names) == 1
        else pl.struct(names).is_first_distinct()
    )


def is_tracking(name: str) -> bool:
    """Bookkeeping, not data: where a row and its joined values came from, and its reasons."""
    return name in TRACKING or is_provenance(name)


@dataclass(frozen=True)
class RowCheck:
    """One compiled row check: ``failed`` is true on rows that break it."""

    key: str
    column: str | None
    check: str
    severity: Severity
    failed: pl.Expr
    message: pl.Expr


@dataclass(frozen=True)
class DeclaredCheck:
    """A check the spec declares, with the rows it tested and failed, passed or not.

    ``passed`` is whether a row check found nothing, or whether a table check held.
    """

    column: str | None
    check: str
    severity: str
    tested: int
    failed: int
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "check": self.check,
            "severity": self.severity,
            "tested": self.tested,
            "failed": self.failed,
            "passed": self.passed,
            "detail": self.detail,
        }


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
    declared: list[DeclaredCheck] = field(default_factory=list)
    duplicates: list[DuplicateCounts] = field(default_factory=list)

    @cached_property
    def clean(self) -> pl.DataFrame:
        kept = self.frame.select(c for c in self.frame.columns if not is_tracking(c))
        return kept.filter(~self.quarantined) if self.quarantined.any() else kept

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
            "declared": [d.as_dict() for d in self.declared],
            "duplicates": [d.as_dict() for d in self.duplicates],
        }


def _shown(column: Column, expr: pl.Expr) -> pl.Expr:
    if column.role == "pii":
        return pl.lit("(private value)")
    return expr.cast(pl.String)


def _message(column: Column, text: str) -> pl.Expr:
    return pl.concat_str(
        [pl.lit(f"{column.name}: "), _shown(column, pl.col(column.name)), pl.lit(text)]
    )


def _located(
    message: pl.Expr,
    columns: Collection[str],
    origins: Mapping[str, str],
    schema: Collection[str] = (),
) -> pl.Expr:
    """``message``, naming the line of each joined source that ``columns`` came from.

    A row's own ``_source``/``_row`` name its base source; a value a join brought in came from
    another file, whose line is in ``_row:<source>`` (null where the join found no match). A
    column merged row by row from several sources names, per row, the one in ``_from:<column>``.
    """
    lines = sorted(source_of(name) for name in schema if name.startswith(PROVENANCE))
    parts: list[pl.Expr] = []
    fixed: set[str] = set()
    for name in columns:
        if from_column(name) in schema:
            chosen = pl.col(from_column(name))
            for label in lines:
                parts.append(
                    pl.when(chosen == label).then(
                        pl.format(" (from {} {})", pl.lit(label), pl.col(provenance_column(label)))
                    )
                )
        elif name in origins:
            fixed.add(origins[name])
    for label in sorted(fixed):
        parts.append(pl.format(" (from {} {})", pl.lit(label), pl.col(provenance_column(label))))
    if not parts:
        return message
    return pl.concat_str([message, *parts], ignore_nulls=True)


def _typed_literals(values: Sequence[Any], dtype: pl.DataType) -> pl.Series:
    return pl.Series(values).cast(dtype, strict=False)


_CONFLICTING = ", with different values in other columns"
_EXACT = ", as an exact copy of that row"


def _column_checks(
    column: Column,
    check: ColumnCheck,
    dtype: pl.DataType,
    index: int,
    exact: pl.Expr,
    locate: Callable[[pl.Expr, Collection[str]], pl.Expr],
    first_seen: FirstSeen = first_distinct,
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
                locate(_message(column, text), [column.name]),
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
        repeats = ~first_seen([column.name])
        add("unique", repeats & ~exact, f" repeats an earlier row's value{_CONFLICTING}")
        add("unique (exact copy)", repeats & exact, f" repeats an earlier row's value{_EXACT}")
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


def _weight_check(
    column: Column, dtype: pl.DataType, locate: Callable[[pl.Expr, Collection[str]], pl.Expr]
) -> RowCheck:
    """Every row of a sample-weight column holds a finite number of 0 or more.

    A negative weight has no meaning to any estimator, and a missing one cannot be guessed: left
    in, it would count the row as nothing or as much as any other without anyone deciding so.
    """
    col = pl.col(column.name)
    invalid = col.is_null() | (col < 0)
    if dtype.is_float():
        invalid = invalid | col.is_nan() | col.is_infinite()
    message = (
        pl.when(col.is_null())
        .then(pl.lit(f"{column.name}: is empty, but a sample weight is required"))
        .otherwise(_message(column, " is not a sample weight (expected a number of 0 or more)"))
    )
    return RowCheck(
        f"{column.name}.weight",
        column.name,
        "sample weight",
        "error",
        invalid,
        locate(message, [column.name]),
    )


def compile_row_checks(
    columns: Sequence[Column],
    table: TableChecks,
    schema: dict[str, pl.DataType],
    origins: Mapping[str, str] | None = None,
    first_seen: FirstSeen = first_distinct,
) -> list[RowCheck]:
    """Every row-level check of the spec as Polars expressions.

    ``origins`` maps the columns a join brought in to their source, so that a failure on such a
    column names the line of that source. ``first_seen`` tells duplicates and repeated values.
    """
    known = origins or {}

    def locate(message: pl.Expr, columns: Collection[str]) -> pl.Expr:
        return _located(message, columns, known, schema)

    data_columns = [c for c in schema if not is_tracking(c)]
    exact = ~first_seen(data_columns)
    checks: list[RowCheck] = []
    for column in columns:
        if column.name not in schema:
            continue
        for index, check in enumerate(column.checks):
            checks.extend(
                _column_checks(column, check, schema[column.name], index, exact, locate, first_seen)
            )
        if column.role == "weight":
            checks.append(_weight_check(column, schema[column.name], locate))
    for rule in table.rules:
        parsed = pl.sql_expr(rule.expr)
        holds = parsed.fill_null(True)
        checks.append(
            RowCheck(
                f"rule.{rule.name}",
                None,
                f"rule {rule.name}",
                rule.severity,
                ~holds,
                locate(
                    pl.lit(f"rule {rule.name} ({rule.expr}) is false"), parsed.meta.root_names()
                ),
            )
        )
    for index, names in enumerate(table.unique):
        listed = ", ".join(names)
        repeats = ~first_seen(names)
        for suffix, failed, text in (
            ("", repeats & ~exact, f"repeats an earlier row's values{_CONFLICTING}"),
            (" (exact copy)", repeats & exact, f"repeats an earlier row's values{_EXACT}"),
        ):
            checks.append(
                RowCheck(
                    f"unique.{index}{'.exact' if suffix else ''}",
                    None,
                    f"unique ({listed}){suffix}",
                    "error",
                    failed,
                    locate(pl.lit(f"({listed}) {text}"), names),
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
                exact,
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
_PLACED_RE = re.compile(PLACED)


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
    join, say) are reported for the table, as are rows matching a key whose copies in a joined
    source were quarantined. A reason that already says where its row is (typing starts it with
    ``source line N: ``) is shown as it is.
    """
    rows = failed.arg_true()
    sample = _gather(frame, rows, [found_in])
    parts = sample.select(
        _where(sample, rows).alias("where"), pl.col(found_in).str.split("; ").alias("reason")
    ).explode("reason")
    duplicate = pl.col("reason").str.starts_with(DUPLICATE_KEY)
    parts = parts.with_columns(
        pl.when(duplicate)
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.col("reason").str.replace(PLACED, "").str.extract(r"^([^:]+): ", 1))
        .alias("column"),
        pl.when(duplicate)
        .then(pl.lit("duplicate key (joined source)"))
        .when(pl.col("reason").str.contains(_NOT_NULLABLE, literal=True))
        .then(pl.lit("nullable"))
        .otherwise(pl.lit("type"))
        .alias("check"),
    )
    results = []
    for (column, check), group in parts.group_by(["column", "check"], maintain_order=True):
        name = column if column in known else None
        examples = [
            r if _PLACED_RE.match(r) else f"{w}: {r}"
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
                index = stability(references[column.name], kept)
                if index is not None and index.value > check.distribution.max_psi:
                    message = (
                        f"{column.name}: distribution shifted from the reference "
                        f"(PSI {index.value:.3f} > {check.distribution.max_psi:g}, "
                        f"{index.binning})"
                    )
                    results.append(
                        CheckResult(
                            column.name, "distribution", check.severity, len(kept), [message]
                        )
                    )
                    if check.severity == "error":
                        errors.append(message)
    return errors, results


def validate(
    frame: pl.DataFrame,
    columns: Sequence[Column],
    table: TableChecks,
    references: dict[str, pl.Series] | None = None,
    *,
    origins: Mapping[str, str] | None = None,
    duplicates: Sequence[DuplicateCounts] = (),
    set_aside: Sequence[pl.DataFrame] = (),
    first_seen: FirstSeen = first_distinct,
) -> Validation:
    """Run every check on ``frame`` (typed; may carry ``_source``/``_row``/``_reasons``).

    All row checks are evaluated together into boolean columns, one per check; counts come from
    their sums. Reason strings are built only for the rows that are quarantined, so a clean
    table costs one parallel pass and no copy.

    ``origins`` names the source of each column a join brought in (its lines are in
    ``_row:<source>``); ``duplicates`` is what each source's duplicate keys came to, and
    ``set_aside`` the rows that were quarantined before combining (conflicting copies of a key,
    each with its reason): they count as rows in and quarantined, and no check runs on them.
    ``first_seen`` tells which rows are first copies, for duplicates and ``unique``.
    """
    checks = compile_row_checks(columns, table, dict(frame.schema), origins, first_seen)
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
    results.extend(_duplicate_results(duplicates))

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
    aside = [rows for rows in set_aside if rows.height]
    if aside:
        quarantine = pl.concat([quarantine, *aside], how="diagonal_relaxed")
    table_errors, table_results = _table_errors(frame, bad, columns, table, references or {})
    validation = Validation(
        frame=frame,
        quarantined=bad,
        quarantine=quarantine,
        results=results + table_results,
        rows_in=len(frame) + sum(rows.height for rows in aside),
        warned=warned,
        table_errors=table_errors,
        max_quarantine=table.max_quarantine,
        duplicates=list(duplicates),
    )
    validation.declared = _declared(
        frame, checks, counts, columns, table, table_results, validation
    )
    return validation


def _duplicate_results(duplicates: Sequence[DuplicateCounts]) -> list[CheckResult]:
    """One result per source whose conflicting copies were quarantined before combining."""
    results = []
    for found in duplicates:
        if found.quarantined_rows:
            results.append(
                CheckResult(
                    None,
                    f"{DUPLICATE_KEY} ({', '.join(found.key)}) in {found.source}",
                    "error",
                    found.quarantined_rows,
                    list(found.examples),
                )
            )
    return results


def _declared(
    frame: pl.DataFrame,
    checks: Sequence[RowCheck],
    counts: dict[str, int],
    columns: Sequence[Column],
    table: TableChecks,
    table_results: Sequence[CheckResult],
    validation: Validation,
) -> list[DeclaredCheck]:
    """Every declared check with the rows it tested and the rows that failed it.

    Row checks test the rows where their column has a value (every row for rules, ``unique``
    and ``duplicates``); table checks test the whole table. ``passed`` is whether the check
    found nothing (for a table check: whether it held).
    """
    declared: list[DeclaredCheck] = []

    def add(
        column: str | None,
        check: str,
        severity: str,
        tested: int,
        failed: int,
        passed: bool | None = None,
        detail: str = "",
    ) -> None:
        declared.append(
            DeclaredCheck(
                column,
                check,
                severity,
                tested,
                failed,
                failed == 0 if passed is None else passed,
                detail,
            )
        )

    for found in validation.duplicates:
        conflicting = found.quarantined_rows + found.dropped_rows
        add(
            None,
            f"on_duplicate {found.policy} ({', '.join(found.key)}) in {found.source}",
            "error" if found.policy in ("quarantine", "fail") else "warn",
            found.rows,
            found.quarantined_rows,
            passed=found.conflicting_keys == 0,
            detail=f"{found.exact_copies} exact copies collapsed, {found.conflicting_keys} "
            f"conflicting keys {found.outcome} ({conflicting} rows)",
        )
    present = {name: frame.height - frame[name].null_count() for name in frame.columns}
    for row_check in checks:
        name = row_check.column
        tested = present[name] if name is not None else frame.height
        add(name, row_check.check, row_check.severity, tested, counts.get(row_check.key, 0))
    shifted = {(r.column, r.check): r for r in table_results}
    for column in columns:
        if column.name not in frame.columns:
            continue
        for check in column.checks:
            if check.max_missing is not None:
                missing = frame[column.name].null_count()
                add(
                    column.name,
                    "max_missing",
                    check.severity,
                    frame.height,
                    missing,
                    passed=(column.name, "max_missing") not in shifted,
                    detail=f"at most {check.max_missing:.1%} missing",
                )
            if check.distribution is not None:
                result = shifted.get((column.name, "distribution"))
                add(
                    column.name,
                    "distribution",
                    check.severity,
                    validation.rows_out,
                    result.failed if result else 0,
                    passed=result is None,
                    detail=result.examples[0]
                    if result
                    else f"PSI at most {check.distribution.max_psi:g} against "
                    f"{check.distribution.reference}",
                )
    if table.rows is not None:
        bounds = [
            f"at least {table.rows.min}" if table.rows.min is not None else "",
            f"at most {table.rows.max}" if table.rows.max is not None else "",
        ]
        held = (table.rows.min is None or validation.rows_out >= table.rows.min) and (
            table.rows.max is None or validation.rows_out <= table.rows.max
        )
        add(
            None,
            "rows",
            "error",
            validation.rows_out,
            0 if held else validation.rows_out,
            passed=held,
            detail=f"{validation.rows_out} rows kept; {' and '.join(b for b in bounds if b)}",
        )
    add(
        None,
        "max_quarantine",
        "error",
        validation.rows_in,
        len(validation.quarantine),
        passed=validation.quarantined_share <= validation.max_quarantine,
        detail=f"{validation.quarantined_share:.1%} quarantined, at most "
        f"{validation.max_quarantine:.1%} allowed",
    )
    return declared


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
