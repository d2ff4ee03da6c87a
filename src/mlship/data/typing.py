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

Text values are read as their source or column declares (:class:`ValueFormats`): declared null
tokens are missing values, numbers may carry digit-group separators, another decimal mark,
currency signs or a percent sign, and date/times a strftime format and a time zone. ISO 8601 with
``Z`` or an offset is read by default. Every date/time comes out in UTC.

A value that is made null without being declared missing is never silent: it yields a *warning*
(``_warnings``) that names it, and the row is kept. That is the case of common missing-value
markers such as ``n/a`` in a nullable number column whose ``null_values`` do not list them, and of
values a ``mapping.cast`` cannot read in a column the schema does not declare.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from mlship.spec.data import ColumnType, ValueFormats

_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]
_NAIVE_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
)
_ZONED_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M%z",
    "%Y-%m-%d %H:%M%z",
)
MISSING_MARKERS = ("n/a", "na", "nan", "null", "none", "nil", "-", "--", "?", "#n/a", "missing")
"""Text commonly written for a missing value. In a nullable column whose type is not text such a
value becomes null with a warning when ``null_values`` does not declare it."""

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
WARNINGS = "_warnings"
_NO_FORMATS = ValueFormats()


@dataclass(frozen=True)
class TypedColumn:
    """A column to type: its name, declared type, whether its values may be quoted, how its text
    is written, and whether a value that does not fit is only a warning (``lenient``)."""

    name: str
    type: ColumnType
    nullable: bool = True
    private: bool = False
    formats: ValueFormats = _NO_FORMATS
    lenient: bool = False


def _is_text(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Utf8, pl.Categorical)


def _as_text(column: pl.Expr) -> pl.Expr:
    return column.cast(pl.String).str.strip_chars()


def _number_text(raw: pl.Expr, formats: ValueFormats, forgiving: bool) -> tuple[pl.Expr, pl.Expr]:
    """Text of a number in Rust's syntax, and whether it had a percent sign to divide away.

    Currency signs go first, then the percent sign, then digit-group separators (only where they
    group digits by three), then the decimal mark becomes ``.``.
    """
    text = _as_text(raw) if forgiving or formats != _NO_FORMATS else raw.cast(pl.String)
    for sign in formats.currency or []:
        text = text.str.replace_all(sign, "", literal=True).str.strip_chars()
    percent = pl.lit(False)
    if formats.percent is not None:
        percent = text.str.ends_with("%")
        text = text.str.strip_suffix("%").str.strip_chars_end()
    decimal = formats.decimal or "."
    if formats.thousands is not None:
        t, d = _escaped(formats.thousands), _escaped(decimal)
        grouped = rf"^[+-]?\d{{1,3}}({t}\d{{3}})+({d}\d*)?$"
        text = (
            pl.when(~text.str.contains(t) | text.str.contains(grouped))
            .then(text.str.replace_all(formats.thousands, "", literal=True))
            .otherwise(None)
        )
    if decimal != ".":
        text = pl.when(text.str.contains(".", literal=True)).then(None).otherwise(text)
        text = text.str.replace(decimal, ".", literal=True)
    return text, percent & pl.lit(formats.percent == "fraction")


def _escaped(char: str) -> str:
    return "\\" + char if not char.isalnum() and char != " " else char


def _parse_float(
    raw: pl.Expr, dtype: pl.DataType, forgiving: bool, formats: ValueFormats
) -> pl.Expr:
    if dtype.is_numeric():
        return raw.cast(pl.Float64)
    text, fraction = _number_text(raw, formats, forgiving)
    value = text.cast(pl.Float64, strict=False)
    if formats.percent == "fraction":
        value = pl.when(fraction).then(value / 100).otherwise(value)
    return value


def _parse_integer(
    raw: pl.Expr, dtype: pl.DataType, forgiving: bool, formats: ValueFormats
) -> pl.Expr:
    if dtype.is_integer():
        return raw.cast(pl.Int64)
    if not forgiving and _is_text(dtype) and formats == _NO_FORMATS:
        return raw.cast(pl.String).cast(pl.Int64, strict=False)
    as_float = _parse_float(raw, dtype, forgiving, formats)
    whole = as_float.is_finite() & (as_float == as_float.round(0))
    from_float = pl.when(whole).then(as_float).otherwise(None).cast(pl.Int64, strict=False)
    if not _is_text(dtype):
        return from_float
    # Digits are read as an integer first: through a float, ids past 2**53 would change.
    text, fraction = _number_text(raw, formats, forgiving)
    return pl.coalesce(pl.when(~fraction).then(text.cast(pl.Int64, strict=False)), from_float)


def _parse_boolean(
    raw: pl.Expr, dtype: pl.DataType, forgiving: bool, formats: ValueFormats
) -> pl.Expr:
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


def _in_utc(naive: pl.Expr, zone: str | None) -> pl.Expr:
    """Wall-clock times of ``zone`` (UTC when None) as UTC; a time that does not exist or is
    ambiguous there (a daylight-saving change) is null, so it gets a reason."""
    if zone is None or zone == "UTC":
        return naive.dt.replace_time_zone("UTC")
    local = naive.dt.replace_time_zone(zone, ambiguous="null", non_existent="null")
    return local.dt.convert_time_zone("UTC")


def _parse_datetime(
    raw: pl.Expr, dtype: pl.DataType, forgiving: bool, formats: ValueFormats
) -> pl.Expr:
    zone = formats.timezone
    if isinstance(dtype, pl.Datetime):
        zoned = _in_utc(raw, zone) if dtype.time_zone is None else raw.dt.convert_time_zone("UTC")
        return zoned.dt.cast_time_unit("us")
    if dtype == pl.Date:
        return _in_utc(raw.cast(pl.Datetime("us")), zone)
    text = _as_text(raw) if forgiving else raw.cast(pl.String)
    # Rust's %z does not read the ``Z`` of UTC that ISO 8601 allows.
    text = text.str.replace(r"[Zz]$", "+00:00")
    if formats.format is not None:
        has_offset = "%z" in formats.format or "%#z" in formats.format
        naive_formats: tuple[str, ...] = () if has_offset else (formats.format,)
        zoned_formats: tuple[str, ...] = (formats.format,) if has_offset else ()
    elif forgiving:
        naive_formats, zoned_formats = _NAIVE_FORMATS, _ZONED_FORMATS
    else:
        naive_formats, zoned_formats = _NAIVE_FORMATS[:2], _ZONED_FORMATS[:1]
    parsed = [
        _in_utc(text.str.to_datetime(fmt, strict=False, time_unit="us"), zone)
        for fmt in naive_formats
    ] + [
        text.str.to_datetime(fmt, strict=False, time_zone="UTC", time_unit="us")
        for fmt in zoned_formats
    ]
    return pl.coalesce(parsed)


def _parse_text(
    raw: pl.Expr, dtype: pl.DataType, forgiving: bool, formats: ValueFormats
) -> pl.Expr:
    return raw.cast(pl.String)


_PARSERS = {
    "float": _parse_float,
    "integer": _parse_integer,
    "boolean": _parse_boolean,
    "datetime": _parse_datetime,
    "string": _parse_text,
    "category": _parse_text,
}


def parse_values(
    raw: pl.Expr, kind: str, dtype: pl.DataType, formats: ValueFormats, forgiving: bool = True
) -> pl.Expr:
    """The typed value, or null where the raw value does not fit ``kind`` as ``formats`` say."""
    return _PARSERS[kind](without_null_tokens(raw, dtype, formats), dtype, forgiving, formats)


def without_null_tokens(raw: pl.Expr, dtype: pl.DataType, formats: ValueFormats) -> pl.Expr:
    """``raw`` with the declared null tokens (compared trimmed) made null."""
    if not formats.null_values or not _is_text(dtype):
        return raw
    tokens = pl.Series(formats.null_values, dtype=pl.String).str.strip_chars().implode()
    return pl.when(_as_text(raw).is_in(tokens)).then(None).otherwise(raw)


def _present(raw: pl.Expr, kind: str, dtype: pl.DataType) -> pl.Expr:
    """True where the raw value is there at all (blank text counts as missing for non-text)."""
    present = raw.is_not_null()
    if kind not in ("string", "category") and _is_text(dtype):
        present = present & (_as_text(raw) != "")
    return present


def is_missing_marker(raw: pl.Expr) -> pl.Expr:
    """True where the text is a common missing-value marker (``n/a``, ``?``, ...)."""
    return _as_text(raw).str.to_lowercase().is_in(list(MISSING_MARKERS))


def _reason(name: str, value: pl.Expr, message: str, private: bool) -> pl.Expr:
    shown = pl.lit("(private value)") if private else pl.format("'{}'", value.cast(pl.String))
    return pl.concat_str([pl.lit(f"{name}: "), shown, pl.lit(f" {message}")])


def _empty_reason(name: str) -> pl.Expr:
    return pl.lit(f"{name}: is empty, but the column is not nullable")


def _expected(column: TypedColumn) -> str:
    """What a value of ``column`` must look like, with the declared format when there is one."""
    formats = column.formats
    if column.type == "datetime" and formats.format:
        return f"a date/time in the format {formats.format}"
    if column.type in ("integer", "float"):
        marks = []
        if formats.thousands:
            marks.append(f"digit groups {formats.thousands!r}")
        if formats.decimal:
            marks.append(f"decimal mark {formats.decimal!r}")
        if marks:
            return f"{EXPECTED[column.type]} ({', '.join(marks)})"
    return EXPECTED[column.type]


@dataclass(frozen=True)
class Location:
    """Where a row is, as expressions over the frame being typed: ``where`` starts each reason
    (``orders line 7``), ``key`` ends it (``id=42``) when the row has id columns."""

    where: pl.Expr
    key: pl.Expr | None = None


@dataclass(frozen=True)
class _Found:
    """Rows that failed typing (positions) and their reasons; likewise for warnings."""

    rows: pl.Series
    reasons: pl.Series
    warned: pl.Series
    warnings: pl.Series


def _failures(
    frame: pl.DataFrame,
    typed: pl.DataFrame,
    lost: list[TypedColumn],
    required: list[TypedColumn],
    location: Location | None,
) -> _Found:
    """Positions of the rows that failed typing (or only warn), and the reason for each."""
    work = pl.DataFrame(
        [frame[c.name].alias(f"raw{i}") for i, c in enumerate(lost)]
        + [typed[c.name].alias(f"value{i}") for i, c in enumerate(lost)]
        + [typed[c.name].alias(f"required{i}") for i, c in enumerate(required)]
    )
    flags: list[pl.Expr] = []
    marks: list[pl.Expr] = []
    texts: list[pl.Expr] = []
    notes: list[pl.Expr] = []
    for i, column in enumerate(lost):
        raw = pl.col(f"raw{i}")
        dtype = frame.schema[column.name]
        lost_value = _present(raw, column.type, dtype) & pl.col(f"value{i}").is_null()
        marker = is_missing_marker(raw) if _is_text(dtype) else pl.lit(False)
        if column.lenient:
            flags.append(pl.lit(False).alias(f"lost{i}"))
            marks.append(lost_value.alias(f"warn{i}"))
            note = _reason(
                column.name,
                raw,
                f"is not {_expected(column)}, so `mapping.cast` made it null",
                column.private,
            )
        else:
            to_null = marker & pl.lit(column.nullable)
            flags.append((lost_value & ~to_null).alias(f"lost{i}"))
            marks.append((lost_value & to_null).alias(f"warn{i}"))
            note = _reason(
                column.name,
                raw,
                "was read as missing, being a common missing-value marker (declare it in "
                "`null_values` if that is what it means)",
                column.private,
            )
        zone = column.formats.timezone
        if column.type == "datetime" and zone not in (None, "UTC"):
            in_utc = column.formats.model_copy(update={"timezone": None})
            skipped = _parse_datetime(raw, dtype, True, in_utc).is_not_null()
        else:
            skipped = pl.lit(False)
        message = (
            pl.when(marker)
            .then(pl.lit("is a missing-value marker, but the column is not nullable"))
            .when(skipped)
            .then(
                pl.lit(
                    f"does not name one instant in {zone} (a daylight-saving change skips or "
                    "repeats that hour)"
                )
            )
            .otherwise(pl.lit(f"is not {_expected(column)}"))
        )
        shown = (
            pl.lit("(private value)") if column.private else pl.format("'{}'", raw.cast(pl.String))
        )
        reason = pl.concat_str([pl.lit(f"{column.name}: "), shown, pl.lit(" "), message])
        texts.append(pl.when(pl.col(f"lost{i}")).then(reason))
        notes.append(pl.when(pl.col(f"warn{i}")).then(note))
    lost_at = {c.name: i for i, c in enumerate(lost)}
    empties: list[pl.Expr] = []
    for i, column in enumerate(required):
        empty = pl.col(f"required{i}").is_null()
        if column.name in lost_at:
            empty = empty & ~pl.col(f"lost{lost_at[column.name]}")
        empties.append(empty.alias(f"empty{i}"))
        texts.append(pl.when(pl.col(f"empty{i}")).then(_empty_reason(column.name)))
    work = work.with_columns(flags + marks).with_columns(empties)
    names = [f"lost{i}" for i in range(len(lost))] + [f"empty{i}" for i in range(len(required))]
    warn_names = [f"warn{i}" for i in range(len(lost))]
    if location is not None:
        key = location.key if location.key is not None else pl.lit(None, dtype=pl.String)
        work = work.with_columns(
            frame.select(location.where.alias("where"), key.alias("key")).get_columns()
        )
    rows = work.select(pl.any_horizontal(names).arg_true()).to_series() if names else _NONE
    warned = (
        work.select(pl.any_horizontal(warn_names).arg_true()).to_series() if warn_names else _NONE
    )
    return _Found(
        rows,
        _located(work[rows], texts, location is not None),
        warned,
        _located(work[warned], notes, location is not None),
    )


_NONE = pl.Series([], dtype=pl.get_index_type())


def _located(rows: pl.DataFrame, texts: list[pl.Expr], located: bool) -> pl.Series:
    """Each row's reasons joined, each preceded by where the row is and followed by its key
    (when known): ``orders line 7: amount: 'x' is not a number (id=42)``."""
    if not texts or rows.is_empty():
        return pl.Series([], dtype=pl.String)
    if located:
        key = pl.when(pl.col("key").is_not_null()).then(pl.format(" ({})", pl.col("key")))
        texts = [
            pl.when(text.is_not_null()).then(
                pl.concat_str([pl.col("where"), pl.lit(": "), text, key], ignore_nulls=True)
            )
            for text in texts
        ]
    return rows.select(pl.concat_str(texts, separator="; ", ignore_nulls=True)).to_series()


def _extend(
    existing: pl.Series | None, height: int, rows: pl.Series, found: pl.Series
) -> pl.Series:
    """``existing`` (or an all-null column) with ``found`` appended at ``rows``."""
    if existing is None:
        existing = pl.repeat(None, height, dtype=pl.String, eager=True)
    if len(rows):
        before = existing.gather(rows)
        found = pl.select(
            pl.concat_str([before, found], separator="; ", ignore_nulls=True)
        ).to_series()
        existing = existing.clone().scatter(rows, found)
    return existing


def type_columns(
    frame: pl.DataFrame, columns: Iterable[TypedColumn], location: Location | None = None
) -> pl.DataFrame:
    """Cast ``columns`` of ``frame`` to their types; add a ``_reasons`` column (null = fine) and a
    ``_warnings`` column (values made null without being declared missing).

    ``location`` says where a row is; each reason then reads ``orders line 7: amount: 'x' is not a
    number (id=42)``. Columns not listed are left as they are. Existing
    ``_reasons``/``_warnings`` columns are extended.
    """
    columns = [c for c in columns if c.name in frame.columns]
    schema = frame.schema
    frame = frame.with_columns(
        without_null_tokens(pl.col(c.name), schema[c.name], c.formats).alias(c.name)
        for c in columns
        if c.formats.null_values
    )

    def parsed(chosen: list[TypedColumn], forgiving: bool) -> list[pl.Expr]:
        return [
            _PARSERS[c.type](pl.col(c.name), schema[c.name], forgiving, c.formats).alias(c.name)
            for c in chosen
        ]

    typed = frame.with_columns(parsed(columns, forgiving=False))
    lost = [c for c in columns if typed[c.name].null_count() > frame[c.name].null_count()]
    if lost:
        typed = typed.with_columns(frame.select(parsed(lost, forgiving=True)).get_columns())
    required = [c for c in columns if not c.nullable and typed[c.name].null_count()]
    reasons = frame[REASONS] if REASONS in frame.columns else None
    warnings = frame[WARNINGS] if WARNINGS in frame.columns else None
    if lost or required:
        found = _failures(frame, typed, lost, required, location)
        reasons = _extend(reasons, frame.height, found.rows, found.reasons)
        warnings = _extend(warnings, frame.height, found.warned, found.warnings)
    none = pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    return typed.with_columns(
        (none if reasons is None else reasons).alias(REASONS),
        (none if warnings is None else warnings).alias(WARNINGS),
    )
