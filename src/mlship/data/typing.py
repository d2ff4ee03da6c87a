"""Give raw columns their declared types, keeping a reason for every value that does not fit.

Typing never drops or nulls a value silently: a value that cannot be read as its column's type
leaves the typed column null *and* yields a reason naming the row, the column, the value and the
expected type. Rows with reasons are quarantined by the caller. Values of PII columns are never
repeated in reasons.

Most columns of most datasets are clean, so typing is done in two passes. The first casts every
column directly (no trimming, one date format), all columns in parallel. A column whose typed null
count equals its raw null count lost nothing and is done; Arrow keeps null counts, so that test
is free. Only columns that lost values are parsed again the forgiving way (trimmed text, numbers
written as ``2.0`` in integer columns, every accepted date format), and only their failing rows
get reason strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from mlship.spec.data import ColumnType

_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]
_DATETIME_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
)

EXPECTED: dict[str, str] = {
    "integer": "an integer",
    "float": "a number",
    "boolean": "a boolean (true/false, yes/no, 1/0)",
    "datetime": "a date/time (ISO 8601)",
    "string": "text",
    "category": "a category label",
}

POLARS_TYPES: dict[str, pl.DataType] = {
    "integer": pl.Int64(),
    "float": pl.Float64(),
    "boolean": pl.Boolean(),
    "datetime": pl.Datetime("us", "UTC"),
    "string": pl.String(),
    "category": pl.String(),
}

REASONS = "_reasons"


@dataclass(frozen=True)
class TypedColumn:
    """A column to type: its name, declared type, and whether its values may be quoted."""

    name: str
    type: ColumnType
    nullable: bool = True
    private: bool = False


def _is_text(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Utf8, pl.Categorical)


def _as_text(column: pl.Expr) -> pl.Expr:
    return column.cast(pl.String).str.strip_chars()


def _parse_float(raw: pl.Expr, dtype: pl.DataType, forgiving: bool) -> pl.Expr:
    if dtype.is_numeric():
        return raw.cast(pl.Float64)
    text = _as_text(raw) if forgiving else raw.cast(pl.String)
    return text.cast(pl.Float64, strict=False)


def _parse_integer(raw: pl.Expr, dtype: pl.DataType, forgiving: bool) -> pl.Expr:
    if dtype.is_integer():
        return raw.cast(pl.Int64)
    if not forgiving and _is_text(dtype):
        return raw.cast(pl.String).cast(pl.Int64, strict=False)
    as_float = _parse_float(raw, dtype, forgiving)
    whole = as_float.is_finite() & (as_float == as_float.round(0))
    return pl.when(whole).then(as_float).otherwise(None).cast(pl.Int64, strict=False)


def _parse_boolean(raw: pl.Expr, dtype: pl.DataType, forgiving: bool) -> pl.Expr:
    if dtype == pl.Boolean:
        return raw
    text = (_as_text(raw) if forgiving else raw.cast(pl.String)).str.to_lowercase()
    return (
        pl.when(text.is_in(_TRUE))
        .then(pl.lit(True))
        .when(text.is_in(_FALSE))
        .then(pl.lit(False))
        .otherwise(pl.lit(None, dtype=pl.Boolean))
    )


def _parse_datetime(raw: pl.Expr, dtype: pl.DataType, forgiving: bool) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        zoned = (
            raw.dt.replace_time_zone("UTC")
            if dtype.time_zone is None
            else raw.dt.convert_time_zone("UTC")
        )
        return zoned.dt.cast_time_unit("us")
    if dtype == pl.Date:
        return raw.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    text = _as_text(raw) if forgiving else raw.cast(pl.String)
    formats = _DATETIME_FORMATS if forgiving else _DATETIME_FORMATS[:2]
    return pl.coalesce(
        [
            text.str.to_datetime(fmt, strict=False, time_zone="UTC", time_unit="us")
            for fmt in formats
        ]
    )


def _parse_text(raw: pl.Expr, dtype: pl.DataType, forgiving: bool) -> pl.Expr:
    return raw.cast(pl.String)


_PARSERS = {
    "float": _parse_float,
    "integer": _parse_integer,
    "boolean": _parse_boolean,
    "datetime": _parse_datetime,
    "string": _parse_text,
    "category": _parse_text,
}


def _parse(raw: pl.Expr, kind: str, dtype: pl.DataType, forgiving: bool) -> pl.Expr:
    """The typed value, or null where the raw value does not fit ``kind``."""
    return _PARSERS[kind](raw, dtype, forgiving)


def _present(raw: pl.Expr, kind: str, dtype: pl.DataType) -> pl.Expr:
    """True where the raw value is there at all (blank text counts as missing for numbers)."""
    present = raw.is_not_null()
    if kind in ("float", "integer") and _is_text(dtype):
        present = present & (_as_text(raw) != "")
    return present


def _reason(name: str, value: pl.Expr, message: str, private: bool) -> pl.Expr:
    shown = pl.lit("(private value)") if private else pl.format("'{}'", value.cast(pl.String))
    return pl.concat_str([pl.lit(f"{name}: "), shown, pl.lit(f" {message}")])


def _empty_reason(name: str) -> pl.Expr:
    return pl.lit(f"{name}: is empty, but the column is not nullable")


def _failures(
    frame: pl.DataFrame,
    typed: pl.DataFrame,
    lost: list[TypedColumn],
    required: list[TypedColumn],
) -> tuple[pl.Series, pl.Series]:
    """Positions of the rows that failed typing, and the reason for each."""
    work = pl.DataFrame(
        [frame[c.name].alias(f"raw{i}") for i, c in enumerate(lost)]
        + [typed[c.name].alias(f"value{i}") for i, c in enumerate(lost)]
        + [typed[c.name].alias(f"required{i}") for i, c in enumerate(required)]
    )
    flags: list[pl.Expr] = []
    texts: list[pl.Expr] = []
    for i, column in enumerate(lost):
        present = _present(pl.col(f"raw{i}"), column.type, frame.schema[column.name])
        flags.append((present & pl.col(f"value{i}").is_null()).alias(f"lost{i}"))
        message = f"is not {EXPECTED[column.type]}"
        reason = _reason(column.name, pl.col(f"raw{i}"), message, column.private)
        texts.append(pl.when(pl.col(f"lost{i}")).then(reason))
    lost_at = {c.name: i for i, c in enumerate(lost)}
    for i, column in enumerate(required):
        empty = pl.col(f"required{i}").is_null()
        if column.name in lost_at:
            empty = empty & ~pl.col(f"lost{lost_at[column.name]}")
        flags.append(empty.alias(f"empty{i}"))
        texts.append(pl.when(pl.col(f"empty{i}")).then(_empty_reason(column.name)))
    work = work.with_columns(flags[: len(lost)]).with_columns(flags[len(lost) :])
    names = [f"lost{i}" for i in range(len(lost))] + [f"empty{i}" for i in range(len(required))]
    rows = work.select(pl.any_horizontal(names).arg_true()).to_series()
    reasons = work[rows].select(pl.concat_str(texts, separator="; ", ignore_nulls=True))
    return rows, reasons.to_series()


def type_columns(frame: pl.DataFrame, columns: Iterable[TypedColumn]) -> pl.DataFrame:
    """Cast ``columns`` of ``frame`` to their types; add a ``_reasons`` column (null = fine).

    Columns not listed are left as they are. An existing ``_reasons`` column is extended.
    """
    columns = [c for c in columns if c.name in frame.columns]
    schema = frame.schema

    def parsed(chosen: list[TypedColumn], forgiving: bool) -> list[pl.Expr]:
        return [
            _parse(pl.col(c.name), c.type, schema[c.name], forgiving).alias(c.name) for c in chosen
        ]

    typed = frame.with_columns(parsed(columns, forgiving=False))
    lost = [c for c in columns if typed[c.name].null_count() > frame[c.name].null_count()]
    if lost:
        typed = typed.with_columns(frame.select(parsed(lost, forgiving=True)).get_columns())
    required = [c for c in columns if not c.nullable and typed[c.name].null_count()]
    existing = frame[REASONS] if REASONS in frame.columns else None
    if existing is None:
        existing = pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    if not lost and not required:
        return typed.with_columns(existing.alias(REASONS))
    rows, found = _failures(frame, typed, lost, required)
    if len(rows):
        before = existing.gather(rows)
        found = pl.select(
            pl.concat_str([before, found], separator="; ", ignore_nulls=True)
        ).to_series()
        existing = existing.clone().scatter(rows, found)
    return typed.with_columns(existing.alias(REASONS))
