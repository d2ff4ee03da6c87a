"""CSV files: every value as text, exactly as written, each row with its line.

Typing happens later, against the declared schema, and must see exactly what the file says so
that an unparsable value can be quoted with its line. Polars fills a short row with nulls without
complaint, so a truncated file would pass as missing values; the field counts are therefore
checked first, per line, and a broken quoted value is located by line and column.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import polars as pl

from mlship.data.readers.files import FileReader, Parsed
from mlship.data.readers.messages import first_line
from mlship.errors import DataError


class CsvReader(FileReader):
    """A CSV file with a header; the source's ``delimiter`` and ``encoding`` apply."""

    format = "csv"

    def parse(self, data: bytes) -> Parsed:
        delimiter = self.source.delimiter
        return _parse_csv(self.text(data, delimiter), delimiter, self.describe())


@dataclass(frozen=True)
class _CsvLayout:
    """What the line structure check found: the header and how data rows map to lines."""

    header: list[str]
    rows: int
    line_offset: int | None
    lines: list[int] | None = None
    """The line each data row starts on, when a quoted value spans lines."""


def _parse_csv(text: str, delimiter: str, prefix: str) -> Parsed:
    """Every column as text; rows with a wrong number of fields are refused with their line.

    A header without rows
    is an empty table, as a query may return none: whether that is acceptable is for the row-count
    check of the spec to say.
    """
    body = text.rstrip("\r\n")  # blank lines at the very end are not rows
    if not body.strip():
        raise DataError(f"{prefix}: the file has no header and no rows; expected a CSV header")
    layout = _csv_layout(body, delimiter, prefix)
    _check_header(layout.header, prefix)
    try:
        frame = pl.read_csv(
            body.encode("utf-8"),
            separator=delimiter,
            has_header=True,
            infer_schema=False,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:
        _csv_layout_by_record(body, delimiter, prefix)  # names the line and column, if it can
        raise DataError(f"{prefix}: cannot be read as CSV: {first_line(exc)}") from None
    if frame.height != layout.rows:
        return Parsed(frame)
    lines = pl.Series("line", layout.lines, dtype=pl.Int64) if layout.lines is not None else None
    return Parsed(frame, layout.line_offset, lines)


def _csv_layout(body: str, delimiter: str, prefix: str) -> _CsvLayout:
    """Count the fields of every line in one vectorised pass.

    Quoted values are removed before counting delimiters; a quote left over means a quoted value
    spans lines (or is malformed), and then the slower record-by-record reader decides.
    """
    lines = pl.Series("line", [body]).str.split("\n").explode()
    line = pl.col("line").str.strip_suffix("\r")
    unquoted = (
        pl.when(line.str.contains('"', literal=True))
        .then(line.str.replace_all('"[^"]*"', ""))
        .otherwise(line)
    )
    stats = (
        lines.to_frame()
        .with_row_index("index")
        .select(
            "index",
            (unquoted.str.count_matches(delimiter, literal=True) + 1).alias("fields"),
            unquoted.str.contains('"', literal=True).alias("stray_quote"),
            (line == "").alias("blank"),
        )
    )
    if stats["stray_quote"].any():
        return _csv_layout_by_record(body, delimiter, prefix)
    header_index = int(stats.filter(~pl.col("blank"))["index"][0])
    header_line = lines[header_index].removesuffix("\r")
    header = next(csv.reader([header_line], delimiter=delimiter))
    rows = stats.filter(pl.col("index") > header_index)
    bad = rows.filter(pl.col("fields") != len(header))
    if bad.height:
        first = bad.row(0, named=True)
        raise _field_count_error(
            prefix, first["index"] + 1, first["fields"], header, first["blank"], delimiter
        )
    return _CsvLayout(header, rows.height, header_index + 2)


def _csv_layout_by_record(body: str, delimiter: str, prefix: str) -> _CsvLayout:
    """The same check with Python's CSV reader, which follows quoted values across lines."""
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    header_line = rows = 0
    single_lines = True
    start = 1
    starts: list[int] = []
    try:
        for record in reader:
            end = reader.line_num
            if header is None:
                if record:
                    header, header_line = record, start
            elif len(record) != len(header) and (record or len(header) != 1):
                raise _field_count_error(prefix, start, len(record), header, not record, delimiter)
            else:
                rows += 1
                starts.append(start)
            single_lines = single_lines and end == start
            start = end + 1
    except csv.Error as exc:
        raise _quote_error(prefix, body, start, header, delimiter, exc) from None
    if header is None:
        raise DataError(f"{prefix}: the file has no header and no rows; expected a CSV header")
    if single_lines:
        return _CsvLayout(header, rows, header_line + 1)
    return _CsvLayout(header, rows, None, starts)


def _quote_error(
    prefix: str, body: str, line: int, header: list[str] | None, delimiter: str, exc: csv.Error
) -> DataError:
    """A malformed quoted value, located by line and column.

    ``line`` is where the record starts; its text is scanned for the field whose quoted value
    never closes (the file ends inside it) or is followed by something other than a delimiter.
    """
    record = body.split("\n", line - 1)[-1]
    index, unclosed = _quoted_field_problem(record, delimiter)
    where = f"line {line}"
    if header is None:
        where += " (the header)"
    elif index is not None and index < len(header):
        where += f", column {header[index]!r}"
    if unclosed:
        return DataError(
            f"{prefix}: {where}: the quoted value is never closed, the file ends inside it "
            "(is the file truncated, or is a closing quote missing?)"
        )
    return DataError(
        f"{prefix}: {where}: {exc}; a quoted value must end with a quote followed by "
        f"{delimiter!r} or the end of the line"
    )


def _quoted_field_problem(record: str, delimiter: str) -> tuple[int | None, bool]:
    """Scan the CSV record at the start of ``record`` for its first broken quoted value.

    Returns the value's field index (0-based) and whether it is unclosed (rather than followed by
    stray text), or ``(None, False)`` when every quoted value is well formed.
    """
    index, position, at_field_start = 0, 0, True
    while position < len(record):
        char = record[position]
        if at_field_start and char == '"':
            end = position + 1
            while True:
                end = record.find('"', end)
                if end == -1:
                    return index, True
                if record.startswith('""', end):
                    end += 2
                    continue
                break
            position = end + 1
            if position < len(record) and record[position] not in (delimiter, "\r", "\n"):
                return index, False
            at_field_start = False
            continue
        if char == "\n":
            break
        if char == delimiter:
            index += 1
        at_field_start = char == delimiter
        position += 1
    return None, False


def _field_count_error(
    prefix: str, line: int, found: int, header: list[str], blank: bool, delimiter: str
) -> DataError:
    expected = len(header)
    if blank:
        return DataError(
            f"{prefix}: line {line} is empty, but every row needs {expected} fields as in the "
            "header; remove the empty line"
        )
    if found < expected:
        missing = ", ".join(repr(name) for name in header[found:])
        return DataError(
            f"{prefix}: line {line} has {found} field(s), but the header has {expected}; "
            f"no value for column(s) {missing}: the row is incomplete (is the file truncated?)"
        )
    return DataError(
        f"{prefix}: line {line} has {found} fields, but the header has {expected}; "
        f"a value may contain an unquoted {delimiter!r}, which must be quoted"
    )


def _check_header(header: list[str], prefix: str) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(
                f"{prefix}: the header names column {name!r} more than once; "
                "column names must be unique"
            )
        seen.add(name)
