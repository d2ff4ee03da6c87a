"""Infer a first spec's columns from data: each column's type, role, nullability and checks.

Types are read with ingest's own parse expressions (:func:`mlship.data.typing.parse_values`), so a
column inferred as ``integer`` is one that ingest reads as integers, value for value. Roles and
checks are suggestions for a person to review: they come from names (``customer_id``,
``email``) and from what the values look like, never from anything outside the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from mlship.data.typing import MISSING_MARKERS, parse_values
from mlship.spec.data import ColumnType, Role, ValueFormats

CATEGORY_MAX = 50
"""At most this many distinct text values (or at most 5% of the rows) make a category."""
ALLOWED_MAX = 20
"""A category with at most this many values gets an ``allowed`` check."""
CLASSES_MAX = 20
"""An integer target with at most this many distinct values is a class label."""
LONG_TEXT = 40
"""Text whose values average more characters than this is free text."""
RARE_CLASS = 6
"""A target value with fewer rows than this is noted: a stratified split with the most folds
init suggests (5) needs one row in the test set and one in each fold."""

_ID_NAME = re.compile(r"^(id|key|uuid|guid)$|(_|\b)(id|key|uuid)$", re.IGNORECASE)
_NAME_NAME = re.compile(
    r"^(name|first_?name|last_?name|full_?name|surname|given_?name|family_?name)$", re.IGNORECASE
)
_EMAIL = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
_PHONE = r"^\+?[\d\s().-]{7,20}$"


@dataclass(frozen=True)
class InferredColumn:
    """What the data says about one column, as a spec would declare it."""

    name: str
    type: ColumnType
    role: Role
    nullable: bool
    distinct: int
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] = ()
    pii_reason: str | None = None
    free_text: bool = False
    smallest_class: int | None = None
    """Of a target: the row count of its rarest value (for how many folds can keep each)."""
    rare_classes: tuple[tuple[str, int], ...] = ()
    """Of a target: its values with fewer than :data:`RARE_CLASS` rows and their row counts,
    fewest first."""


@dataclass(frozen=True)
class InferredSource:
    """One source's columns and the missing-value tokens its number columns use."""

    label: str
    rows: int
    columns: tuple[InferredColumn, ...]
    null_values: tuple[str, ...] = ()

    @property
    def formats(self) -> ValueFormats | None:
        return ValueFormats(null_values=list(self.null_values)) if self.null_values else None


def _is_text(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Utf8, pl.Categorical)


def _fits(series: pl.Series, kind: str, formats: ValueFormats) -> bool:
    """Every present value of ``series`` reads as ``kind`` the way ingest reads it."""
    frame = series.to_frame("raw")
    raw = pl.col("raw")
    present = raw.is_not_null()
    if _is_text(series.dtype):
        present = present & (raw.cast(pl.String).str.strip_chars() != "")
        if formats.null_values:
            tokens = [t.strip() for t in formats.null_values]
            present = present & ~raw.cast(pl.String).str.strip_chars().is_in(tokens)
    parsed = parse_values(raw, kind, series.dtype, formats)
    counts = frame.select(
        present.sum().alias("present"), (present & parsed.is_not_null()).sum().alias("read")
    ).row(0)
    return bool(counts[0] > 0 and counts[0] == counts[1])


def _text_kind(series: pl.Series, formats: ValueFormats) -> ColumnType | None:
    """The narrowest non-text type every present value reads as, or None."""
    text = series.cast(pl.String).str.strip_chars().str.to_lowercase()
    words = set(text.drop_nulls().unique().to_list()) - {""}
    if words and not words <= {"0", "1"} and _fits(series, "boolean", formats):
        return "boolean"
    for kind in ("integer", "float", "datetime"):
        if _fits(series, kind, formats):
            return kind
    return None


def _native_kind(dtype: pl.DataType) -> ColumnType | None:
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_integer():
        return "integer"
    if dtype.is_numeric():
        return "float"
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return "datetime"
    return None


def missing_tokens(frame: pl.DataFrame) -> tuple[str, ...]:
    """Common missing-value markers written in columns that are otherwise numbers or dates."""
    found: set[str] = set()
    for name in frame.columns:
        series = frame[name]
        if not _is_text(series.dtype):
            continue
        text = series.cast(pl.String).str.strip_chars()
        markers = text.filter(text.str.to_lowercase().is_in(list(MISSING_MARKERS)))
        tokens = tuple(sorted(set(markers.to_list())))
        if tokens and _text_kind(series, ValueFormats(null_values=list(tokens))) is not None:
            found.update(tokens)
    return tuple(sorted(found))


def _pii_reason(name: str, values: pl.Series) -> str | None:
    if _NAME_NAME.match(name):
        return "a person's name, by the column name"
    sample = values.drop_nulls().cast(pl.String).str.strip_chars()
    sample = sample.filter(sample != "").head(1000)
    if sample.len() == 0:
        return None
    if sample.str.contains(_EMAIL).mean() >= 0.8:  # type: ignore[operator]
        return "values look like e-mail addresses"
    digits = sample.str.replace_all(r"\D", "").str.len_chars()
    phone = sample.str.contains(_PHONE) & (digits >= 7)
    if phone.mean() >= 0.8 and not sample.str.contains(r"^[+-]?\d+(\.\d+)?$").all():  # type: ignore[operator]
        return "values look like phone numbers"
    return None


def _typed(series: pl.Series, formats: ValueFormats) -> tuple[ColumnType | None, pl.Series]:
    """The column's non-text type (None for text) and its values as ingest reads them."""
    kind = _native_kind(series.dtype)
    if kind is None and _is_text(series.dtype):
        kind = _text_kind(series, formats)
    if kind is None:
        text = series.cast(pl.String)
        if formats.null_values:
            tokens = text.str.strip_chars().is_in(formats.null_values)
            text = pl.select(pl.when(tokens).then(None).otherwise(text)).to_series()
        return None, text.alias(series.name)
    frame = series.to_frame("raw")
    values = frame.select(parse_values(pl.col("raw"), kind, series.dtype, formats)).to_series()
    return kind, values.alias(series.name)


def _text_type(values: pl.Series, distinct: int) -> tuple[ColumnType, bool]:
    """``category`` for few distinct values, else ``string`` (and whether it is free text)."""
    if distinct <= CATEGORY_MAX or distinct <= 0.05 * values.len():
        return "category", False
    mean_length = values.drop_nulls().str.len_chars().mean()
    return "string", float(mean_length or 0.0) > LONG_TEXT  # type: ignore[arg-type]


def _is_id(name: str, column_type: ColumnType, nulls: int, distinct: int, rows: int) -> bool:
    return bool(
        _ID_NAME.search(name)
        and nulls == 0
        and distinct == rows
        and column_type in ("integer", "string", "category")
    )


def _smallest_class(values: pl.Series) -> int | None:
    counts = values.drop_nulls().value_counts()
    return int(counts["count"].min()) if counts.height else None  # type: ignore[arg-type]


def _rare_classes(values: pl.Series) -> tuple[tuple[str, int], ...]:
    counts = values.drop_nulls().value_counts()
    rare = [
        (str(value), int(count)) for value, count in counts.iter_rows() if int(count) < RARE_CLASS
    ]
    return tuple(sorted(rare, key=lambda item: (item[1], item[0])))


def infer_column(
    series: pl.Series, formats: ValueFormats, target: str | None = None
) -> InferredColumn:
    """Type, role, nullability and suggested checks of one raw column."""
    name, rows = series.name, series.len()
    kind, values = _typed(series, formats)
    nulls = values.null_count()
    distinct = values.drop_nulls().n_unique()
    column_type, free_text = (kind, False) if kind is not None else _text_type(values, distinct)
    role: Role = "feature"
    pii_reason = None
    if name == target:
        role = "target"
        if column_type == "integer" and distinct <= CLASSES_MAX:
            # Class labels written as numbers: classifiers take them as labels, not amounts.
            column_type = "category"
            values = series.cast(pl.String)
    elif _is_id(name, column_type, nulls, distinct, rows):
        role = "id"
        column_type = "string" if column_type == "category" else column_type
    elif column_type in ("string", "category"):
        pii_reason = _pii_reason(name, values)
        if pii_reason is not None:
            role, column_type, free_text = "pii", "string", False
    numeric = column_type in ("integer", "float") and nulls < rows
    allowed: tuple[str, ...] = ()
    if column_type == "category" and distinct <= ALLOWED_MAX and role != "pii":
        allowed = tuple(sorted(str(v) for v in values.drop_nulls().unique().to_list()))
    return InferredColumn(
        name=name,
        type=column_type,
        role=role,
        nullable=nulls > 0,
        distinct=distinct,
        minimum=float(values.min()) if numeric else None,  # type: ignore[arg-type]
        maximum=float(values.max()) if numeric else None,  # type: ignore[arg-type]
        allowed=allowed,
        pii_reason=pii_reason,
        free_text=free_text,
        smallest_class=_smallest_class(values) if role == "target" else None,
        rare_classes=_rare_classes(values) if role == "target" else (),
    )


def infer_source(label: str, frame: pl.DataFrame, target: str | None = None) -> InferredSource:
    """Every column of one source, typed as ingest will read it with the inferred null tokens."""
    tokens = missing_tokens(frame)
    formats = ValueFormats(null_values=list(tokens)) if tokens else ValueFormats()
    columns = tuple(infer_column(frame[name], formats, target) for name in frame.columns)
    return InferredSource(label=label, rows=frame.height, columns=columns, null_values=tokens)


def infer_task(target: InferredColumn) -> str:
    """Classification for labels (categories, booleans, integers with few values), else
    regression."""
    if target.type in ("category", "boolean", "string"):
        return "classification"
    if target.type == "integer" and target.distinct <= CLASSES_MAX:
        return "classification"
    return "regression"


@dataclass(frozen=True)
class JoinKey:
    """A column two sources share whose values overlap: a candidate to join them on."""

    source: str
    column: str
    overlap: float
    """Share of the joined source's distinct values also found in the source joined onto."""
    onto: str = ""
    """The source already in the table whose column matches (the base source when empty)."""


def rank_keys(keys: list[JoinKey]) -> list[JoinKey]:
    """Best first: columns named like ids, then the largest overlap, then by name."""
    return sorted(keys, key=lambda k: (not _ID_NAME.search(k.column), -k.overlap, k.column))


def join_candidates(
    base: pl.DataFrame, other: pl.DataFrame, label: str, onto: str = ""
) -> list[JoinKey]:
    """Columns of ``other`` also in ``base`` whose values overlap, best first (ids first)."""
    found = []
    for name in other.columns:
        if name not in base.columns:
            continue
        theirs = other[name].cast(pl.String).str.strip_chars().drop_nulls().unique()
        ours = base[name].cast(pl.String).str.strip_chars().drop_nulls().unique()
        if theirs.len() == 0:
            continue
        overlap = float(theirs.is_in(ours.implode()).mean())  # type: ignore[arg-type]
        if overlap > 0:
            found.append(JoinKey(label, name, overlap, onto))
    return rank_keys(found)
