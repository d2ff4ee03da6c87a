"""Python values (JSON objects, a query's rows) as typed columns, and batches stacked into one.

A column keeps the type its values share. One whose values mix types (numbers and ``"n/a"``, an
object among numbers, ``true`` in an integer column) is text, each value as written, so that
typing can judge it value by value: one odd value quarantines one row instead of failing the
whole source.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

_NUMBERS = {int, float}


def column(name: str, values: list[Any]) -> pl.Series:
    """A column of Python values: typed when they share a type (integers and floats share one),
    else text, every value as written (``true``, ``2.5``, ``{"a": 1}``), for typing to judge."""
    kinds = {type(value) for value in values if value is not None}
    if (len(kinds) == 1 and not kinds & {dict, list}) or kinds == _NUMBERS:
        try:
            series = pl.Series(name, values, strict=True)
        except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
            pass
        else:
            if series.dtype != pl.Object:
                return series
    elif not kinds:
        return pl.Series(name, values, dtype=pl.Null)
    return pl.Series(name, [None if v is None else as_text(v) for v in values], dtype=pl.String)


def as_text(value: Any) -> str:
    """How a value is written: JSON for booleans, objects and arrays, ISO 8601 for dates."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat() if callable(isoformat) else value)


def records_frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows given as objects (keys in order of first appearance), each column typed by
    :func:`column`."""
    names = list(dict.fromkeys(name for record in records for name in record))
    return pl.DataFrame([column(name, [r.get(name) for r in records]) for name in names])


def nested_as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Objects and arrays as their JSON text: no declared type holds them, and typing quotes
    them as written when it refuses them."""
    nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()]
    if not nested:
        return frame
    return frame.with_columns(
        pl.Series(
            name, [None if v is None else as_text(v) for v in frame[name].to_list()], pl.String
        )
        for name in nested
    )


def objects_as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Values Polars has no type for (UUIDs, a driver's own classes) become their text, since a
    column of Python objects can be neither checked nor written to Parquet."""
    objects = [name for name, dtype in frame.schema.items() if dtype == pl.Object]
    if not objects:
        return frame
    return frame.with_columns(pl.col(objects).map_elements(str, return_dtype=pl.String))


def stack(frames: list[pl.DataFrame], columns: list[str]) -> pl.DataFrame:
    """Batches as one frame, their types reconciled: a column that is all null in one batch
    takes its type from the others, and one whose batches disagree on a type that cannot be
    widened (integers in one, text in the next) is text, as one batch mixing them would be."""
    if not frames:
        return pl.DataFrame(schema=dict.fromkeys(columns, pl.Null))
    try:
        return pl.concat(frames, how="vertical_relaxed")
    except pl.exceptions.PolarsError:
        return pl.concat(_as_text_where_types_differ(frames), how="vertical_relaxed")


def _as_text_where_types_differ(frames: list[pl.DataFrame]) -> list[pl.DataFrame]:
    mixed = [
        name
        for name in frames[0].columns
        if len({f.schema[name] for f in frames if f.schema[name] != pl.Null}) > 1
    ]
    return [
        frame.with_columns(
            pl.col(name).map_elements(as_text, return_dtype=pl.String)
            if frame.schema[name] == pl.Boolean
            else pl.col(name).cast(pl.String)
            for name in mixed
        )
        for frame in frames
    ]
