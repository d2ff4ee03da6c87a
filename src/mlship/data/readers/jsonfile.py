"""JSON files: an array of objects, one row per object, each with the line it starts on.

Values keep the types JSON gives them, except in a column whose values mix types: that column is
text, each value as written (see :mod:`mlship.data.readers.values`).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from mlship.data.readers.files import FileReader, Parsed
from mlship.data.readers.messages import json_kind
from mlship.data.readers.values import records_frame
from mlship.errors import DataError


class JsonReader(FileReader):
    """A JSON array of objects; the source's ``encoding`` applies."""

    format = "json"

    def parse(self, data: bytes) -> Parsed:
        frame, lines = _parse_json(self.text(data), self.describe())
        return Parsed(frame, lines=lines)


def _parse_json(text: str, prefix: str) -> tuple[pl.DataFrame, pl.Series]:
    """An array of objects, one row per object, with the line each object starts on.

    The array is walked object by object with the standard parser, which says where each one
    starts and, for broken JSON, the line and column of the fault.
    """
    start = text.lstrip()[:1]
    if not start:
        raise DataError(f"{prefix}: the file has only whitespace; expected a JSON array")
    if start != "[":
        hint = " (for one object per line, use `format: jsonl`)" if start == "{" else ""
        raise DataError(
            f"{prefix}: expected a JSON array of objects, but the file starts with {start!r}{hint}"
        )
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    line = 1 + text.count("\n", 0, position)
    expect_item = True
    try:
        while True:
            after = _skip_space(text, position)
            line += text.count("\n", position, after)
            position = after
            char = text[position : position + 1]
            if char == "]" and (not records or not expect_item):
                break
            if not expect_item:
                if char != ",":
                    raise json.JSONDecodeError("Expecting ',' delimiter", text, position)
                position += 1
                expect_item = True
                continue
            item, end = decoder.raw_decode(text, position)
            if not isinstance(item, dict):
                raise DataError(
                    f"{prefix}: item {len(records)} of the array is {json_kind(item)} "
                    f"(line {line}); expected an object per row"
                )
            records.append(item)
            lines.append(line)
            line += text.count("\n", position, end)
            position, expect_item = end, False
        if text[position + 1 :].strip():
            raise json.JSONDecodeError("Extra data", text, _skip_space(text, position + 1))
    except json.JSONDecodeError as bad:
        raise DataError(
            f"{prefix}: invalid JSON at line {bad.lineno}, column {bad.colno}: {bad.msg}"
        ) from None
    return records_frame(records), pl.Series("line", lines, dtype=pl.Int64)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position
