"""Per-source mapping: rename columns, derive new ones from SQL expressions, convert units.

Sources rarely agree on names and units, so each source's mapping brings it onto the dataset's
columns before the sources are combined. Derived columns are SQL expressions parsed by Polars
(``pl.sql_expr``): a spec never reaches Python ``eval``, and the expressions stay readable to
anyone who knows SQL. Every error names the source and the column, because several sources pass
through the same code and "column not found" alone does not say which file to fix.
"""

from __future__ import annotations

import polars as pl

from mlship.data.units import UnitError, conversion
from mlship.errors import DataError
from mlship.spec.data import Mapping, UnitConversion


def _columns(frame: pl.DataFrame) -> str:
    return ", ".join(frame.columns) or "none"


# -- rename ----------------------------------------------------------------------------------


def rename_columns(frame: pl.DataFrame, mapping: Mapping, source: str) -> pl.DataFrame:
    """Give the source's columns their dataset names (``mapping.rename``: old -> new).

    All renames happen at once, so swapping two names works. A source column that does not exist
    is an error rather than a no-op: a renamed column that silently stays missing would surface
    later as a confusing "missing column" under its new name.
    """
    if not mapping.rename:
        return frame
    missing = [old for old in mapping.rename if old not in frame.columns]
    if missing:
        raise DataError(
            f"source {source!r}: cannot rename missing column(s) {_quoted(missing)}; "
            f"the source has: {_columns(frame)}"
        )
    _check_rename_targets(frame, mapping.rename, source)
    return frame.rename(mapping.rename)


def _check_rename_targets(frame: pl.DataFrame, rename: dict[str, str], source: str) -> None:
    """Refuse renames that would leave two columns with one name."""
    kept = [name for name in frame.columns if name not in rename]
    seen: dict[str, str] = {}
    for old, new in rename.items():
        if new in seen:
            raise DataError(
                f"source {source!r}: columns {seen[new]!r} and {old!r} are both renamed to {new!r}"
            )
        if new in kept:
            raise DataError(
                f"source {source!r}: renaming {old!r} to {new!r} clashes with the existing "
                f"column {new!r}; rename or drop that one too"
            )
        seen[new] = old


def _quoted(names: list[str]) -> str:
    return ", ".join(map(repr, names))


# -- derive ----------------------------------------------------------------------------------


def check_expression(expr: str) -> str | None:
    """``None`` if ``expr`` parses as a SQL expression, else why not.

    The spec loader calls this so that a typo in an expression fails when the spec is loaded,
    not after the sources have been read.
    """
    try:
        pl.sql_expr(expr)
    except pl.exceptions.PolarsError as exc:
        return _first_line(exc)
    return None


def derive_columns(frame: pl.DataFrame, mapping: Mapping, source: str) -> pl.DataFrame:
    """Add (or replace) each column of ``mapping.derive`` from its SQL expression.

    Expressions are applied in the order they are written, so one may use a column derived
    before it. Referenced columns are checked before evaluation so that an unknown name is
    reported with the columns that do exist.
    """
    for name, expr in mapping.derive.items():
        frame = _derive_one(frame, name, expr, source)
    return frame


def _derive_one(frame: pl.DataFrame, name: str, expr: str, source: str) -> pl.DataFrame:
    where = f"source {source!r}, derived column {name!r} = {expr!r}"
    try:
        parsed = pl.sql_expr(expr)
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{where}: not a valid SQL expression: {_first_line(exc)}") from None
    unknown = [col for col in parsed.meta.root_names() if col not in frame.columns]
    if unknown:
        raise DataError(
            f"{where}: unknown column(s) {_quoted(unknown)}; the source has: {_columns(frame)}"
        )
    try:
        return frame.with_columns(parsed.alias(name))
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{where}: cannot be evaluated: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- units -----------------------------------------------------------------------------------


def convert_units(frame: pl.DataFrame, mapping: Mapping, source: str) -> pl.DataFrame:
    """Convert each column of ``mapping.units`` into its target unit, as Float64.

    The result is always a float, even for ``km -> m``, so that a column's type does not depend
    on which pair of units a source happened to use.
    """
    if not mapping.units:
        return frame
    exprs = [
        _conversion_expr(frame, column, units, source) for column, units in mapping.units.items()
    ]
    return frame.with_columns(exprs)


def _conversion_expr(
    frame: pl.DataFrame, column: str, units: UnitConversion, source: str
) -> pl.Expr:
    where = f"source {source!r}, column {column!r} ({units.from_unit} -> {units.to_unit})"
    if column not in frame.columns:
        raise DataError(f"{where}: no such column; the source has: {_columns(frame)}")
    dtype = frame.schema[column]
    if not dtype.is_numeric():
        raise DataError(f"{where}: the column holds {dtype}, not numbers")
    try:
        multiply, add, divide = conversion(units.from_unit, units.to_unit).integers()
    except UnitError as exc:
        raise DataError(f"{where}: {exc}") from None
    value = pl.col(column).cast(pl.Float64)
    if multiply != 1:
        value = value * multiply
    if add:
        value = value + add
    if divide != 1:
        value = value / divide
    return value.alias(column)
