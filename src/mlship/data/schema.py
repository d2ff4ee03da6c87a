"""Check a raw table against declared columns and give every column its declared type.

All problems of a table are collected before failing, so one run shows every broken column, each
with the rows (and file lines) where it breaks and what was expected there.

A column that declares how its values are written (``values``: null tokens, digit groups, decimal
mark, currency, percent, date/time format and zone) is read with the same expressions ingest
uses, so a model scores text written the way its training data was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlship.errors import DataError
from mlship.spec.data import ValueFormats
from mlship.spec.models import Column

if TYPE_CHECKING:
    import polars as pl

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_EXAMPLES = 5

EXPECTED = {
    "integer": "an integer",
    "float": "a number",
    "boolean": "a boolean (true/false, yes/no, 1/0)",
    "datetime": "a date/time",
    "string": "text",
    "category": "a category label",
}


@dataclass
class Problems:
    """Collected problems of one table, rendered as one readable error."""

    origin: str
    rows: Sequence[int] | int
    """Each row's number in the file, or the first row's number when they follow one another
    (a batch of a larger file, a part of it)."""
    line_offset: int | None
    items: list[str] = field(default_factory=list)
    count: int = 0
    lines: Sequence[int] | None = None
    """Each row's line in the file, when known row by row (JSON, multi-line CSV values)."""

    def where(self, row: int) -> str:
        number = row + self.rows if isinstance(self.rows, int) else self.rows[row]
        text = f"row {number}"
        if self.lines is not None:
            text += f" (line {self.lines[row]})"
        elif self.line_offset is not None:
            text += f" (line {row + self.line_offset})"
        return text

    def add_rows(self, column: str, rows: np.ndarray, describe: str, values: pd.Series) -> None:
        self.count += len(rows)
        for row in rows[:_EXAMPLES]:
            self.items.append(
                f"{self.where(int(row))}, column {column!r}: "
                + describe.format(value=_plain(values.iloc[row]))
            )
        if len(rows) > _EXAMPLES:
            self.items.append(f"... and {len(rows) - _EXAMPLES} more rows in column {column!r}")

    def raise_if_any(self) -> None:
        if self.items:
            lines = "\n  ".join(self.items)
            raise DataError(f"{self.origin}: {self.count} problem(s)\n  {lines}")


def _plain(value: object) -> object:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _parse_numeric(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64")
    if pd.api.types.is_numeric_dtype(raw):
        return raw.astype("float64")
    return pd.to_numeric(raw.astype("str").str.strip(), errors="coerce").astype("float64")


def _parse_boolean(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype("boolean")
    text = raw.astype("str").str.strip().str.lower()
    parsed = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    parsed[text.isin(_TRUE)] = True
    parsed[text.isin(_FALSE)] = False
    return parsed


def _parse_text(raw: pd.Series) -> pd.Series:
    text = raw.astype("str") if not pd.api.types.is_string_dtype(raw) else raw
    return text.where(raw.notna(), None).astype("str")


def _as_text(raw: pd.Series) -> pl.Series:
    """A pandas column of text (or values mixing types) as Polars text, missing kept missing.

    Polars is imported here, not with the module: a model server only needs it for a model
    whose columns declare value formats, and a bundle installs it only for such a model."""
    import polars as pl

    values = [None if pd.isna(v) else str(v) for v in raw.astype(object)]
    return pl.Series("raw", values, dtype=pl.String)


def _with_formats(raw: pd.Series, kind: str, formats: ValueFormats) -> tuple[pd.Series, pd.Series]:
    """``raw`` without its declared null tokens, and its values read as ingest reads them."""
    import polars as pl

    from mlship.data.typing import parse_values, without_null_tokens

    text = _as_text(raw)
    nulled = pl.select(without_null_tokens(pl.lit(text), pl.String(), formats)).to_series()
    present = pd.Series(nulled.to_list(), index=raw.index, dtype=object)
    present = present.where(nulled.str.strip_chars().ne("").fill_null(False).to_numpy(), None)
    parsing = "float" if kind == "integer" else kind
    parsed = pl.select(parse_values(pl.lit(nulled), parsing, pl.String(), formats)).to_series()
    values = pd.Series(parsed.to_pandas().to_numpy(), index=raw.index)
    if kind == "boolean":
        values = values.astype("boolean")
    elif kind == "datetime":
        values = pd.to_datetime(values, utc=True)
    elif kind in ("integer", "float"):
        values = values.astype("float64")
    else:
        values = present.astype("str").where(present.notna(), None).astype("str")
    return present, values


def _coerce_column(raw: pd.Series, column: Column, problems: Problems) -> pd.Series:
    kind = column.type
    textual = pd.api.types.is_object_dtype(raw) or pd.api.types.is_string_dtype(raw)
    if column.values is not None and textual:
        raw, parsed = _with_formats(raw, kind, column.values)
        present = raw.notna().to_numpy()
    else:
        present = raw.notna().to_numpy()
        if kind in ("integer", "float"):
            parsed = _parse_numeric(raw)
        elif kind == "boolean":
            parsed = _parse_boolean(raw)
        elif kind == "datetime":
            parsed = pd.to_datetime(raw, errors="coerce", utc=True, format="mixed")
        else:
            parsed = _parse_text(raw)
    unparsable = np.flatnonzero(present & parsed.isna().to_numpy())
    if len(unparsable):
        problems.add_rows(column.name, unparsable, f"{{value!r}} is not {EXPECTED[kind]}", raw)
    if kind == "integer":
        values = parsed.to_numpy()
        fractional = np.flatnonzero(~np.isnan(values) & (values != np.round(values)))
        if len(fractional):
            problems.add_rows(
                column.name, fractional, "{value!r} is not an integer (it has a fraction)", raw
            )
        parsed = parsed.round().astype("Int64") if not len(fractional) else parsed
    if not column.nullable:
        empty = np.flatnonzero(~present)
        if len(empty):
            problems.add_rows(column.name, empty, "is empty, but the column is not nullable", raw)
    return parsed


def coerce_frame(
    raw: pd.DataFrame,
    columns: Sequence[Column],
    origin: str,
    *,
    csv_lines: bool = False,
    lines: Sequence[int] | None = None,
    rows: Sequence[int] | int = 1,
) -> pd.DataFrame:
    """Return the declared ``columns`` of ``raw`` with their declared types.

    Columns that are not declared are left out. Raises :class:`DataError` listing every missing
    column and every value that cannot be read as its column's type; ``origin`` (a file name)
    starts the message, and with ``csv_lines`` rows are also given as line numbers of the file
    (or with ``lines``, each row's line as the reader found it). ``rows`` numbers the rows as
    the whole file does: the first row's number when they follow one another (1 for a whole file,
    more for a batch of a larger one), or each row's number (the rows of a part of a file).
    """
    missing = [c.name for c in columns if c.name not in raw.columns]
    if missing:
        available = ", ".join(map(str, raw.columns)) or "none"
        raise DataError(
            f"{origin}: missing column(s) {', '.join(map(repr, missing))}; "
            f"the file has: {available}"
        )
    problems = Problems(
        origin=origin,
        rows=rows,
        line_offset=rows + 1 if csv_lines and isinstance(rows, int) else None,
        lines=lines,
    )
    typed = {
        column.name: _coerce_column(raw[column.name].reset_index(drop=True), column, problems)
        for column in columns
    }
    problems.raise_if_any()
    return pd.DataFrame(typed)
