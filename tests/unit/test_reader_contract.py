"""One behavioural suite for every source reader: the protocol's promises, checked per format.

Each format (CSV, JSON, JSON lines, Parquet, a SQLite query) writes the same generated table its
own way and knows where each row lands (the line it starts on, or its row number). Every check
below runs against every reader class through the protocol alone (``describe``, ``read``,
``batches``), so a new format is held to the same promises by adding one writer:

- each row's place is the line it starts on in the file, or its row number;
- a column mixing numbers and text is read as text, each value as written, and typing then reads
  the numbers and gives the text a reason;
- a source without rows is zero rows and no batches, or refused naming the source;
- broken input is a ``DataError`` that starts with the source's description and names the line
  (or, for formats without lines, what is wrong);
- the batches, stacked, are the whole source, places included, and each batch has the source's
  columns.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlship.data.readers import (
    CsvReader,
    JsonLinesReader,
    JsonReader,
    ParquetReader,
    QueryReader,
    SourceReader,
    reader_for,
)
from mlship.data.readers.values import stack
from mlship.data.typing import REASONS, TypedColumn, type_columns
from mlship.errors import DataError
from mlship.spec.data import Source

Value = int | str | None


@dataclass(frozen=True)
class Row:
    id: int
    value: Value
    """An integer, a word that is no number, or missing."""
    note: str
    """Free text that may hold the delimiter, quotes and line breaks."""


@dataclass(frozen=True)
class Written:
    """A table as one format wrote it: the source to read and where each row must be found."""

    source: Source
    places: list[int]
    unit: str
    header: bool = True
    """Whether the columns are named without rows (a JSON array names them only in objects)."""


Writer = Callable[[Path, list[Row]], Written]


def _csv(folder: Path, rows: list[Row]) -> Written:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "value", "note"])
    places = []
    for row in rows:
        places.append(buffer.getvalue().count("\n") + 1)
        writer.writerow([row.id, "" if row.value is None else row.value, row.note])
    (folder / "table.csv").write_text(buffer.getvalue(), encoding="utf-8", newline="")
    return Written(Source(path="table.csv"), places, "line")


def _objects(rows: list[Row]) -> list[str]:
    return [json.dumps({"id": r.id, "value": r.value, "note": r.note}) for r in rows]


def _json(folder: Path, rows: list[Row]) -> Written:
    text = "[\n" + ",\n".join(_objects(rows)) + "\n]\n"
    (folder / "table.json").write_text(text, encoding="utf-8")
    return Written(Source(path="table.json"), [i + 2 for i in range(len(rows))], "line", False)


def _jsonl(folder: Path, rows: list[Row]) -> Written:
    lines, places = [], []
    for number, line in enumerate(_objects(rows)):
        lines += [""] * (number % 3 == 1)  # a blank line now and then is not a row
        lines.append(line)
        places.append(len(lines))
    (folder / "table.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Written(Source(path="table.jsonl"), places, "line")


def _parquet(folder: Path, rows: list[Row]) -> Written:
    values = [r.value for r in rows]
    # Parquet columns have one type: a mixed column is written as text, as a producer would.
    numbers = all(v is None or isinstance(v, int) for v in values)
    frame = pl.DataFrame(
        {
            "id": pl.Series([r.id for r in rows], dtype=pl.Int64),
            "value": pl.Series(
                values if numbers else [None if v is None else str(v) for v in values],
                dtype=pl.Int64 if numbers else pl.String,
            ),
            "note": pl.Series([r.note for r in rows], dtype=pl.String),
        }
    )
    frame.write_parquet(folder / "table.parquet")
    return Written(Source(path="table.parquet"), list(range(1, len(rows) + 1)), "row")


def _sql(folder: Path, rows: list[Row]) -> Written:
    with sqlite3.connect(folder / "table.db") as connection:
        connection.execute("CREATE TABLE t (id INTEGER, value, note TEXT)")
        connection.executemany(
            "INSERT INTO t VALUES (?, ?, ?)", [(r.id, r.value, r.note) for r in rows]
        )
    connection.close()
    source = Source(name="table", query="SELECT * FROM t ORDER BY id", url="sqlite:///table.db")
    return Written(source, list(range(1, len(rows) + 1)), "row")


WRITERS: dict[type[SourceReader], Writer] = {
    CsvReader: _csv,
    JsonReader: _json,
    JsonLinesReader: _jsonl,
    ParquetReader: _parquet,
    QueryReader: _sql,
}
READERS = list(WRITERS)
NEEDS_ROWS = {JsonLinesReader}
"""Formats that cannot hold a table without rows (see the empty-source check)."""

words = st.text(alphabet="xyz", min_size=1, max_size=4)  # never a number, never a null token
values = st.one_of(st.integers(-(10**6), 10**6), words, st.none())
notes = st.text(alphabet='ab ,;"\n', max_size=8)


@st.composite
def tables(draw: st.DrawFn, min_rows: int = 0) -> list[Row]:
    size = draw(st.integers(min_rows, 12))
    return [Row(i, draw(values), draw(notes)) for i in range(size)]


BOUNDED = settings(derandomize=True, max_examples=12, deadline=None)


@contextmanager
def _folder() -> Iterator[Path]:
    """A fresh folder per generated example (pytest's tmp_path is shared by all of them)."""
    with tempfile.TemporaryDirectory(prefix="mlship-readers-") as name:
        yield Path(name)


def _reader(folder: Path, written: Written, batch_rows: int = 10_000) -> SourceReader:
    return reader_for(written.source, folder, batch_rows=batch_rows)


def _as_written(value: Value) -> str | None:
    return None if value is None else str(value)


# -- every reader ------------------------------------------------------------------------------


def test_each_format_has_its_reader() -> None:
    with _folder() as folder:
        for reader_class, write in WRITERS.items():
            reader = _reader(folder, write(folder, [Row(0, 1, "a")]))
            assert type(reader) is reader_class
            assert reader.describe().startswith(f"{reader.label} (")


@pytest.mark.parametrize("reader_class", READERS, ids=lambda c: c.format)
@BOUNDED
@given(rows=tables())
def test_rows_keep_their_values_and_places(
    reader_class: type[SourceReader], rows: list[Row]
) -> None:
    assume(rows or reader_class not in NEEDS_ROWS)
    with _folder() as folder:
        written = WRITERS[reader_class](folder, rows)
        data = _reader(folder, written).read()
    named = rows or written.header
    assert data.frame.columns == (["id", "value", "note"] if named else [])
    assert data.frame.height == len(rows)
    assert data.unit == written.unit
    assert data.places().to_list() == written.places
    assert data.origin.rows == len(rows)
    assert data.origin.format == reader_class.format
    if not named:
        return
    frame = data.frame.cast(pl.String)
    assert frame["id"].to_list() == [str(r.id) for r in rows]
    assert frame["value"].to_list() == [_as_written(r.value) for r in rows]
    assert frame["note"].to_list() == [
        r.note or (None if reader_class is CsvReader else "") for r in rows
    ]


@pytest.mark.parametrize("reader_class", READERS, ids=lambda c: c.format)
@BOUNDED
@given(rows=tables(min_rows=1))
def test_a_column_mixing_types_is_text_then_typed_value_by_value(
    reader_class: type[SourceReader], rows: list[Row]
) -> None:
    with _folder() as folder:
        data = _reader(folder, WRITERS[reader_class](folder, rows)).read()
    kinds = {type(r.value) for r in rows if r.value is not None}
    read_as = data.frame.schema["value"]
    if reader_class is CsvReader or str in kinds:
        assert read_as == pl.String  # every value as written, for typing to judge
    elif kinds == {int}:
        assert read_as.is_integer()
    typed = type_columns(data.frame, [TypedColumn("value", "integer")])
    for row, value, reason in zip(rows, typed["value"], typed[REASONS], strict=True):
        if isinstance(row.value, int):
            assert value == row.value and reason is None
        elif isinstance(row.value, str):
            assert value is None and reason is not None and repr(row.value) in reason
        else:
            assert value is None and reason is None


@pytest.mark.parametrize("reader_class", READERS, ids=lambda c: c.format)
@BOUNDED
@given(rows=tables(), batch_rows=st.integers(1, 5))
def test_batches_stack_to_the_whole_source(
    reader_class: type[SourceReader], rows: list[Row], batch_rows: int
) -> None:
    assume(rows or reader_class not in NEEDS_ROWS)
    with _folder() as folder:
        reader = _reader(folder, WRITERS[reader_class](folder, rows), batch_rows)
        whole = reader.read()
        batches = list(reader.batches())
    assert [b.frame.height for b in batches] == [
        min(batch_rows, len(rows) - start) for start in range(0, len(rows), batch_rows)
    ]
    for batch in batches:
        assert batch.frame.columns == whole.frame.columns  # the source's schema, every batch
        assert batch.unit == whole.unit
        assert batch.places.len() == batch.frame.height
    stacked = stack([b.frame for b in batches], whole.frame.columns)
    if batches:
        assert stacked.equals(whole.frame)
        assert stacked.schema == whole.frame.schema
        places = pl.concat([b.places for b in batches])
        assert places.to_list() == whole.places().to_list()
    else:
        assert whole.frame.height == 0


EMPTY: dict[type[SourceReader], tuple[str, str, str | None]] = {
    # format: (file name, content, the start of its refusal or None for an empty table)
    CsvReader: ("empty.csv", "id,value,note\n", None),
    JsonReader: ("empty.json", "[]\n", None),
    JsonLinesReader: ("empty.jsonl", "\n\n", "the file has only whitespace"),
}


@pytest.mark.parametrize("reader_class", READERS, ids=lambda c: c.format)
def test_a_source_without_rows_is_an_empty_table_or_refused(
    reader_class: type[SourceReader],
) -> None:
    with _folder() as folder:
        header = reader_class is not JsonReader  # an empty array names no columns
        refusal = None
        if reader_class in EMPTY:
            name, content, refusal = EMPTY[reader_class]
            (folder / name).write_text(content, encoding="utf-8")
            reader = reader_for(Source(path=name), folder)
        else:
            reader = _reader(folder, WRITERS[reader_class](folder, []))
        if refusal is not None:
            with pytest.raises(DataError) as info:
                reader.read()
            assert str(info.value).startswith(f"{reader.describe()}: {refusal}")
            return
        data = reader.read()
        batches = list(reader.batches())
    assert data.frame.height == 0
    assert data.frame.columns == (["id", "value", "note"] if header else [])
    assert batches == []


@pytest.mark.parametrize("reader_class", [r for r in READERS if r is not QueryReader])
def test_a_zero_byte_file_is_refused_naming_the_source(reader_class: type[SourceReader]) -> None:
    with _folder() as folder:
        (folder / f"nothing.{reader_class.format}").write_bytes(b"")
        reader = reader_for(Source(path=f"nothing.{reader_class.format}"), folder)
        assert type(reader) is reader_class
        with pytest.raises(DataError) as info:
            reader.read()
    assert str(info.value) == f"{reader.describe()}: the file is empty (0 bytes), so it has no rows"


# -- broken input ------------------------------------------------------------------------------


def _break_line(path: Path, line: int, replacement: str) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[line - 1] = replacement
    path.write_text("\n".join(lines), encoding="utf-8")


def _broken(
    reader_class: type[SourceReader], folder: Path, rows: list[Row], at: int
) -> tuple[Source, str]:
    """The table written with row ``at`` broken; returns the source and what its message must
    say."""
    written = WRITERS[reader_class](folder, rows)
    place = written.places[at]
    path = folder / (written.source.path or "")
    if reader_class is CsvReader:
        _break_line(path, place, f"{rows[at].id},1,2,3")
        return written.source, f"line {place} has 4 fields, but the header has 3"
    if reader_class is JsonReader:
        _break_line(path, place, '{"id": 1, "value": ,')
        return written.source, f"invalid JSON at line {place}, column"
    if reader_class is JsonLinesReader:
        _break_line(path, place, '{"id": 1')
        return written.source, f"line {place} is not valid JSON"
    if reader_class is ParquetReader:
        path.write_bytes(path.read_bytes()[: 8 + at])  # truncated: no line to name
        return written.source, "is not a valid Parquet file"
    query = f"SELECT id, missing_{at} FROM t"  # a result has no lines: the database's words
    broken = Source(name="table", query=query, url=written.source.url)
    return broken, f"the query failed: no such column: missing_{at}"


@pytest.mark.parametrize("reader_class", READERS, ids=lambda c: c.format)
@BOUNDED
@given(data=st.data())
def test_broken_input_names_the_source_and_where(
    reader_class: type[SourceReader], data: st.DataObject
) -> None:
    notes_here = st.text(alphabet="ab ,", max_size=5)  # one line per row: the break stays put
    rows = [
        Row(i, data.draw(values), data.draw(notes_here))
        for i in range(data.draw(st.integers(1, 8)))
    ]
    at = data.draw(st.integers(0, len(rows) - 1))
    with _folder() as folder:
        source, expected = _broken(reader_class, folder, rows, at)
        reader = reader_for(source, folder)
        with pytest.raises(DataError) as info:
            reader.read()
    message = str(info.value)
    assert message.startswith(f"{reader.describe()}: "), message
    assert expected in message, message
    assert "Traceback" not in message
