"""One source's mapping, pseudonymization, typing and unit conversion as Spark operations.

The order is the local engine's: rename, pseudonymize PII, type (a value that does not fit is
null, and the row is flagged), convert units. The local engine's own functions first run on an
empty frame of the source's columns: every mistake of the spec (a renamed column that is missing,
a unit of the wrong dimension) is refused with the local engine's words, and the typed schema the
clean table must have is known before Spark runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
import polars as pl

from mlship.data.mapping import convert_units, rename_columns
from mlship.data.privacy import pseudonym, pseudonymize
from mlship.data.spark.parse import parse_column, without_null_tokens
from mlship.data.tracking import ROW, SOURCE
from mlship.data.typing import TypedColumn, type_columns
from mlship.data.units import conversion
from mlship.spec.data import Column, Source
from mlship.spec.loader import LoadedSpec

if TYPE_CHECKING:
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql import DataFrame

LOST = "_lost"
"""True where typing lost a value (or a required one is empty): the row is quarantined."""
WARNED = "_warned"
"""True where typing made a value null with a warning (a missing-value marker)."""


def local_prepare(
    frame: pl.DataFrame, source: Source, columns: list[Column], key: bytes, loaded: LoadedSpec
) -> pl.DataFrame:
    """The local engine's steps on ``frame`` (raw values with ``_source`` and ``_row``)."""
    from mlship.data.source_prep import key_names, row_location, types_for

    frame = rename_columns(frame, source.mapping, source.label)
    frame = pseudonymize(frame, columns, key)
    location = row_location(frame, key_names(frame, source, loaded))
    frame = type_columns(frame, types_for(frame, source, columns), location)
    return convert_units(frame, source.mapping, source.label)


def typed_columns(
    renamed: pl.DataFrame, source: Source, columns: list[Column]
) -> list[TypedColumn]:
    """The columns typing reads, as the local engine lists them."""
    from mlship.data.source_prep import types_for

    return [c for c in types_for(renamed, source, columns) if c.name in renamed.columns]


def _hashed(frame: DataFrame, names: Sequence[str], key: bytes) -> DataFrame:
    """PII columns replaced by their keyed pseudonym, computed on the executors."""
    from pyspark.sql import functions as F

    @F.pandas_udf("string")  # type: ignore[attr-defined, untyped-decorator]
    def hashed(values: pd.Series) -> pd.Series:
        return values.map(lambda v: None if pd.isna(v) else pseudonym(key, str(v)))

    return frame.withColumns({name: hashed(F.col(name).cast("string")) for name in names})


def spark_prepare(
    frame: DataFrame, raw: pl.DataFrame, source: Source, columns: list[Column], key: bytes
) -> DataFrame:
    """``frame`` (one source as read) renamed, pseudonymized, typed and converted, with
    ``_lost`` and ``_warned`` flags; ``raw`` is an empty frame of its columns as read locally,
    whose local preparation has already passed."""
    from pyspark.sql import functions as F

    renamed = rename_columns(raw, source.mapping, source.label)
    if source.mapping.rename:
        frame = frame.select(
            *(
                F.col(f"`{name}`").alias(source.mapping.rename.get(name, name))
                for name in frame.columns
            )
        )
    pii = [c for c in columns if c.role == "pii" and c.name in renamed.columns]
    frame = frame.drop(*(c.name for c in pii if c.pii == "drop"))
    frame = _hashed(frame, [c.name for c in pii if c.pii == "hash"], key)
    renamed = pseudonymize(renamed, columns, key)
    schema = {field.name: field.dataType for field in frame.schema.fields}
    lost: list[SparkColumn] = []
    warned: list[SparkColumn] = []
    values = {}
    for column in typed_columns(renamed, source, columns):
        raw_value = without_null_tokens(F.col(f"`{column.name}`"), column, schema[column.name])
        parsed = parse_column(raw_value, column, schema[column.name])
        values[column.name] = parsed.value
        lost.extend([parsed.lost, parsed.empty])
        warned.append(parsed.warned)
    frame = frame.withColumns(
        {LOST: _any(lost), WARNED: _any(warned)}
    )  # flags read the raw values, before they are typed
    frame = frame.withColumns(values)
    for name, units in source.mapping.units.items():
        multiply, add, divide = conversion(units.from_unit, units.to_unit).integers()
        value = F.col(f"`{name}`").cast("double")
        if multiply != 1:
            value = value * multiply
        if add:
            value = value + add
        if divide != 1:
            # The local engine's expression engine divides by a constant as a product with its
            # reciprocal (cents 6130 -> 61.300000000000004); the same here, for the same floats.
            value = value * F.lit(1 / divide)
        frame = frame.withColumn(name, value)
    return frame


def _any(flags: list[SparkColumn]) -> SparkColumn:
    from pyspark.sql import functions as F

    found = F.lit(False)
    for flag in flags:
        found = found | flag
    return found


__all__ = ["LOST", "ROW", "SOURCE", "WARNED", "local_prepare", "spark_prepare"]
