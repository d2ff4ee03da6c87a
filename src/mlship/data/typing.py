"""Give raw columns their declared types, keeping a reason for every value that does not fit.

Typing never drops or nulls a value silently: a value that cannot be read as its column's type
leaves the typed column null *and* yields a reason naming the row, the column, the value and the
expected type. Rows with reasons are quarantined by the caller. Values of PII columns are never
repeated in reasons.
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


def _as_text(column: pl.Expr) -> pl.Expr:
    return column.cast(pl.String).str.strip_chars()


def _parse_float(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype.is_numeric():
        return raw.cast(pl.Float64)
    return _as_text(raw).cast(pl.Float64, strict=False)


def _parse_integer(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype.is_integer():
        return raw.cast(pl.Int64)
    as_float = _parse_float(raw, dtype)
    whole = as_float.is_finite() & (as_float == as_float.round(0))
    return pl.when(whole).then(as_float).otherwise(None).cast(pl.Int64, strict=False)


def _parse_boolean(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Boolean:
        return raw
    text = _as_text(raw).str.to_lowercase()
    return (
        pl.when(text.is_in(_TRUE))
        .then(pl.lit(True))
        .when(text.is_in(_FALSE))
        .then(pl.lit(False))
        .otherwise(pl.lit(None, dtype=pl.Boolean))
    )


def _parse_datetime(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        zoned = (
            raw.dt.replace_time_zone("UTC")
            if dtype.time_zone is None
            else raw.dt.convert_time_zone("UTC")
        )
        return zoned.dt.cast_time_unit("us")
    if dtype == pl.Date:
        return raw.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    text = _as_text(raw)
    return pl.coalesce(
        [
            text.str.to_datetime(fmt, strict=False, time_zone="UTC", time_unit="us")
            for fmt in _DATETIME_FORMATS
        ]
    )


def _parse_text(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return raw.cast(pl.String)


_PARSERS = {
    "float": _parse_float,
    "integer": _parse_integer,
    "boolean": _parse_boolean,
    "datetime": _parse_datetime,
    "string": _parse_text,
    "category": _parse_text,
}


def _parse(raw: pl.Expr, kind: str, dtype: pl.DataType) -> pl.Expr:
    """The typed value, or null where the raw value does not fit ``kind``."""
    return _PARSERS[kind](raw, dtype)


def _reason(name: str, value: pl.Expr, message: str, private: bool) -> pl.Expr:
    shown = pl.lit("(private value)") if private else pl.format("'{}'", value.cast(pl.String))
    return pl.concat_str([pl.lit(f"{name}: "), shown, pl.lit(f" {message}")])


def type_columns(frame: pl.DataFrame, columns: Iterable[TypedColumn]) -> pl.DataFrame:
    """Cast ``columns`` of ``frame`` to their types; add a ``_reasons`` column (null = fine).

    Columns not listed are left as they are. An existing ``_reasons`` column is extended.
    """
    typed: list[pl.Expr] = []
    reasons: list[pl.Expr] = [pl.col(REASONS)] if REASONS in frame.columns else []
    for column in columns:
        raw = pl.col(column.name)
        kind = column.type
        parsed = _parse(raw, kind, frame.schema[column.name])
        present = raw.is_not_null()
        if kind in ("float", "integer") and frame.schema[column.name] in (pl.String, pl.Utf8):
            present = present & (_as_text(raw) != "")
        typed.append(parsed.alias(column.name))
        unparsable = present & parsed.is_null()
        reasons.append(
            pl.when(unparsable).then(
                _reason(column.name, raw, f"is not {EXPECTED[kind]}", column.private)
            )
        )
        if not column.nullable:
            reasons.append(
                pl.when(raw.is_null()).then(
                    pl.lit(f"{column.name}: is empty, but the column is not nullable")
                )
            )
    if not reasons:
        return frame
    joined = pl.concat_str(reasons, separator="; ", ignore_nulls=True)
    combined = pl.when(joined == "").then(None).otherwise(joined)
    return frame.with_columns([combined.alias(REASONS), *typed])
