"""Text values read as their declared types, as Spark column expressions.

The rules are the local engine's (:mod:`mlship.data.typing`), written for Spark: a value that
does not fit is null, and two booleans per column say whether a value was *lost* (present but not
readable: the row is quarantined) or only *warned* (a common missing-value marker in a nullable
column). Spark's own casts accept more than the local engine does (``1.5d`` is a double to Java),
so numbers are matched against the local engine's grammar before they are cast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlship.data.typing import MISSING_MARKERS, TypedColumn

if TYPE_CHECKING:
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql.types import DataType

_DECIMAL = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_INTEGER = r"^[+-]?\d+$"
_INFINITE = r"^[+-]?(inf|infinity)$"
_NAN = r"^[+-]?nan$"
_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]
_FRACTION = "[.SSSSSSSSS]"
_NAIVE = (
    "yyyy-MM-dd",
    f"yyyy-MM-dd'T'HH:mm:ss{_FRACTION}",
    f"yyyy-MM-dd HH:mm:ss{_FRACTION}",
    "yyyy-MM-dd'T'HH:mm",
    "yyyy-MM-dd HH:mm",
)
_ZONED = tuple(
    f"{pattern}{offset}"
    for pattern in (
        f"yyyy-MM-dd'T'HH:mm:ss{_FRACTION}",
        f"yyyy-MM-dd HH:mm:ss{_FRACTION}",
        "yyyy-MM-dd'T'HH:mm",
        "yyyy-MM-dd HH:mm",
    )
    for offset in ("XXX", "XX")
)

SPARK_TYPES = {
    "integer": "bigint",
    "float": "double",
    "boolean": "boolean",
    "datetime": "timestamp",
    "string": "string",
    "category": "string",
}


@dataclass(frozen=True)
class Parsed:
    """A column's typed value and, per row, whether a value was lost or only warned about."""

    value: SparkColumn
    lost: SparkColumn
    warned: SparkColumn
    empty: SparkColumn
    """True where the typed value is null in a column that is not nullable (and not lost)."""


def _is_text(dtype: DataType) -> bool:
    from pyspark.sql.types import StringType

    return isinstance(dtype, StringType)


def _float(text: SparkColumn) -> SparkColumn:
    from pyspark.sql import functions as F

    lower = F.lower(text)
    return (
        F.when(text.rlike(_DECIMAL), text.try_cast("double"))
        .when(
            lower.rlike(_INFINITE),
            F.when(text.startswith("-"), -F.lit(float("inf"))).otherwise(F.lit(float("inf"))),
        )
        .when(lower.rlike(_NAN), F.lit(float("nan")))
    )


def _integer(text: SparkColumn) -> SparkColumn:
    from pyspark.sql import functions as F

    number = _float(text)
    whole = ~F.isnan(number) & (F.abs(number) != F.lit(float("inf"))) & (number == F.floor(number))
    return F.coalesce(
        F.when(text.rlike(_INTEGER), text.try_cast("bigint")),
        F.when(whole, number.try_cast("bigint")),
    )


def _boolean(text: SparkColumn) -> SparkColumn:
    from pyspark.sql import functions as F

    lower = F.lower(text)
    return F.when(lower.isin(_TRUE), F.lit(True)).when(lower.isin(_FALSE), F.lit(False))


def _datetime(text: SparkColumn) -> SparkColumn:
    from pyspark.sql import functions as F

    text = F.regexp_replace(text, "[Zz]$", "+00:00")
    return F.coalesce(*(F.try_to_timestamp(text, F.lit(p)) for p in (*_NAIVE, *_ZONED)))


def _from_typed(raw: SparkColumn, kind: str, dtype: DataType) -> SparkColumn:
    """A value the file format already typed: only whole numbers become integers, and only
    ``1``/``0`` (as text: ``true``, ``yes``...) booleans, as in the local engine."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, DecimalType, DoubleType, FloatType

    if kind == "integer" and isinstance(dtype, DoubleType | FloatType | DecimalType):
        number = raw.cast("double")
        finite = ~F.isnan(number) & (F.abs(number) != F.lit(float("inf")))
        return F.when(finite & (number == F.floor(number)), number.try_cast("bigint"))
    if kind == "boolean" and not isinstance(dtype, BooleanType):
        return _boolean(F.lower(raw.cast("string")))
    return raw.try_cast(SPARK_TYPES[kind])


def _typed(raw: SparkColumn, kind: str, dtype: DataType) -> SparkColumn:
    from pyspark.sql import functions as F

    if not _is_text(dtype):
        return _from_typed(raw, kind, dtype)
    if kind in ("string", "category"):
        return raw
    text = F.trim(raw)
    if kind == "float":
        return _float(text)
    if kind == "integer":
        return _integer(text)
    if kind == "boolean":
        return _boolean(text)
    return _datetime(text)


def without_null_tokens(raw: SparkColumn, column: TypedColumn, dtype: DataType) -> SparkColumn:
    """``raw`` with the column's declared null tokens (compared trimmed) made null."""
    from pyspark.sql import functions as F

    tokens = [token.strip() for token in column.formats.null_values or []]
    if not tokens or not _is_text(dtype):
        return raw
    return F.when(F.trim(raw).isin(tokens), F.lit(None)).otherwise(raw)


def parse_column(raw: SparkColumn, column: TypedColumn, dtype: DataType) -> Parsed:
    """``raw`` (with null tokens already removed) typed as ``column`` declares."""
    from pyspark.sql import functions as F

    value = _typed(raw, column.type, dtype)
    present = raw.isNotNull()
    if column.type not in ("string", "category") and _is_text(dtype):
        present = present & (F.trim(raw) != "")
    lost_value = present & value.isNull()
    text = _is_text(dtype)
    marker = F.lower(F.trim(raw)).isin(list(MISSING_MARKERS)) if text else F.lit(False)
    if column.lenient:
        lost, warned = F.lit(False), lost_value
    else:
        to_null = marker & F.lit(column.nullable)
        lost, warned = lost_value & ~to_null, lost_value & to_null
    empty = F.lit(False) if column.nullable else value.isNull() & ~lost
    return Parsed(value, F.coalesce(lost, F.lit(False)), F.coalesce(warned, F.lit(False)), empty)
