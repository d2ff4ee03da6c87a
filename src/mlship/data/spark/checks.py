"""Row checks as Spark boolean columns, keyed as the local engine keys its checks.

Only the verdicts are computed here (does this row break that check); the words of a reason are
the local engine's, applied to the few rows that need them. Keys are produced in the local
engine's order, and :func:`spark_flags` refuses to run if the two lists ever disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlship.data.checks import RowCheck
from mlship.data.spark.parse import SPARK_TYPES
from mlship.errors import DataError
from mlship.spec.data import Column, ColumnCheck, TableChecks

if TYPE_CHECKING:
    from pyspark.sql import Column as SparkColumn

ORDER = "_order"


def _column_flags(column: Column, check: ColumnCheck, index: int) -> list[tuple[str, SparkColumn]]:
    from pyspark.sql import functions as F

    col = F.col(f"`{column.name}`")
    key = f"{column.name}.{index}"
    found: list[tuple[str, SparkColumn]] = []

    def add(name: str, failed: SparkColumn) -> None:
        found.append((f"{key}.{name}", col.isNotNull() & failed))

    if check.min is not None:
        add("min", col < F.lit(check.min))
    if check.max is not None:
        add("max", col > F.lit(check.max))
    if check.allowed is not None:
        kind = SPARK_TYPES[column.type]
        allowed = [F.lit(value).try_cast(kind) for value in check.allowed]
        add("allowed", ~col.isin(*allowed))
    if check.regex is not None:
        add("regex", ~col.cast("string").rlike(f"^(?:{check.regex})$"))
    return found


def _duplicate(data_columns: Sequence[str]) -> SparkColumn:
    """True on a row identical (in every data column) to an earlier row."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    window = Window.partitionBy(*(F.col(f"`{name}`") for name in data_columns)).orderBy(ORDER)
    return F.row_number().over(window) > 1


def spark_flags(
    columns: Sequence[Column],
    table: TableChecks,
    data_columns: Sequence[str],
    expected: Sequence[RowCheck],
) -> list[tuple[RowCheck, SparkColumn]]:
    """Each of the local engine's ``expected`` row checks with its Spark verdict (nulls false)."""
    from pyspark.sql import functions as F

    found: list[tuple[str, Any]] = []
    for column in columns:
        if column.name not in data_columns:
            continue
        for index, check in enumerate(column.checks):
            found.extend(_column_flags(column, check, index))
    for rule in table.rules:
        found.append((f"rule.{rule.name}", ~F.coalesce(F.expr(rule.expr), F.lit(True))))
    if table.duplicates != "allow":
        found.append(("duplicates", _duplicate(data_columns)))
    keys = [key for key, _ in found]
    if keys != [check.key for check in expected]:
        raise DataError(
            "engine: spark cannot compile these checks the way the local engine runs them "
            f"(compiled {', '.join(keys)}; expected {', '.join(c.key for c in expected)})"
        )
    return [
        (check, F.coalesce(flag, F.lit(False)))
        for check, (_, flag) in zip(expected, found, strict=True)
    ]
