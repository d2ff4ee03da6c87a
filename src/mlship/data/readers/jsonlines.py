"""JSON lines files: one object per line, each row with its line; blank lines are ignored.

Polars reads the common case fast; a file it refuses (a column mixing numbers with booleans or
objects, say) is read line by line, its mixed columns as text.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from mlship.data.readers.files import FileReader, Parsed
from mlship.data.readers.messages import json_kind
from mlship.data.readers.values import nested_as_text, records_frame
from mlship.errors import DataError


class JsonLinesReader(FileReader):
    """One JSON object per line; the source's ``encoding`` applies."""

    format = "jsonl"

    def parse(self, data: bytes) -> Parsed:
        frame, lines = _parse_jsonl(self.text(data), self.describe())
        return Parsed(frame, lines=lines)


def _parse_jsonl(text: str, prefix: str) -> tuple[pl.DataFrame, pl.Series]:
    """One object per line, with its line number; blank lines are ignored.

    Polars reads the common case fast; a file it refuses (a column mixing numbers with booleans
    or objects, say) is read line by line, its mixed columns as text.
    """
    if not text.strip():
        raise DataError(f"{prefix}: the file has only whitespace; expected one object per line")
    split = pl.Series("text", text.split("\n"))
    lines = (
        split.to_frame()
        .with_row_index("line", offset=1)
        .filter(pl.col("text").str.strip_chars() != "")["line"]
        .cast(pl.Int64)
    )
    try:
        frame = pl.read_ndjson(text.encode("utf-8"), infer_schema_length=None)
    except pl.exceptions.PolarsError:
        frame = None
    if frame is not None and frame.height == len(lines):
        return nested_as_text(frame), lines
    records: list[dict[str, Any]] = []
    for number, line in zip(lines, split.gather(lines - 1), strict=True):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as bad:
            raise DataError(
                f"{prefix}: line {number} is not valid JSON (column {bad.colno}: {bad.msg})"
            ) from None
        if not isinstance(value, dict):
            raise DataError(
                f"{prefix}: line {number} is {json_kind(value)}; expected one object per line"
            )
        records.append(value)
    return records_frame(records), lines
