"""Read one source (a file or a SQL query) into a Polars DataFrame, with its lineage.

CSV values stay text: typing happens later, against the declared schema, and must see exactly what
the file says so that an unparsable value can be quoted with its line. JSON, JSON lines, Parquet
and SQL keep the types their format or database gives them, except in a column whose values mix
types (numbers and ``"n/a"``, an object among numbers, ``true`` in an integer column): that column
is read as text, each value as written, and typing decides value by value. One odd value thus
quarantines one row instead of failing the whole source.

Every row knows its physical place: its line in a CSV (a quoted value may span lines), JSON lines
or JSON array file (the line where its object starts), or its row number in a query's result or a
Parquet file.

Every failure is a :class:`DataError` whose message starts with the source's label and location
(``customers (/data/customers.csv): line 7 has 2 field(s) ...``), so a spec with many sources
says which one is broken and where.

Files are read once, in 1 MiB blocks that are hashed and counted as they arrive (the hash is the
file's lineage; the count drives the progress hook), then parsed from memory. Queries are fetched
in batches of rows through a server-side cursor where the driver has one.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fsspec  # type: ignore[import-untyped, unused-ignore]
import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from mlship.errors import DataError
from mlship.spec.data import Source

BLOCK_BYTES = 1 << 20
"""Files are read (and hashed, and reported) in blocks of this many bytes."""

BATCH_ROWS = 10_000
"""Query results are fetched (and reported) in batches of this many rows."""

FORMATS = ("csv", "parquet", "json", "jsonl")

ProgressHook = Callable[[int, int | None], None]
"""Called as ``(done, total)``: bytes for files, rows for queries (whose total is unknown)."""

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^@/]*@")
_MASK = "***"
_QUOTED_LINE = re.compile(r"^LINE (\d+): ")


@dataclass(frozen=True)
class SourceData:
    """One source as read: its raw values, where they came from, and how rows map to lines."""

    label: str
    frame: pl.DataFrame
    lineage: dict[str, Any]
    line_offset: int | None
    """CSV only: data row ``i`` (0-based) is on file line ``i + line_offset``. None when that does
    not hold for every row (a quoted value spans lines) and for other formats."""
    lines: pl.Series | None = None
    """The file line of each row when ``line_offset`` cannot say it (JSON, JSON lines, a CSV
    whose quoted values span lines); None for Parquet and queries, whose rows are numbered."""

    @property
    def unit(self) -> str:
        """What a row's place is counted in: ``line`` of the file, or ``row`` of the result."""
        return "line" if self.line_offset is not None or self.lines is not None else "row"

    def places(self) -> pl.Series:
        """Each row's line (or row number, from 1)."""
        if self.lines is not None:
            return self.lines
        start = self.line_offset if self.line_offset is not None else 1
        return pl.int_range(start, start + self.frame.height, eager=True, dtype=pl.Int64)


def read_source(
    source: Source, base_dir: Path, on_progress: ProgressHook | None = None
) -> SourceData:
    """Read ``source`` (paths relative to ``base_dir``, the spec's folder) into a DataFrame."""
    if source.query is not None:
        return _read_query(source, base_dir, on_progress)
    return _read_file_source(source, base_dir, on_progress)


def source_sha256(source: Source, base_dir: Path) -> str:
    """The sha256 of a file source's bytes, refused with the same messages as reading it."""
    location, prefix = _file_location(source, base_dir)
    handle, _ = _open(location, prefix)
    digest = hashlib.sha256()
    with handle:
        for block in _blocks(handle, prefix):
            digest.update(block)
    return digest.hexdigest()


def read_rows(
    path: Path,
    fmt: str,
    delimiter: str = ",",
    encoding: str = "utf-8",
    encoding_option: str | None = None,
) -> SourceData:
    """Read a local file to score with a model exactly as ingest reads a source: the same
    formats, encodings, line numbers and messages (which name the file by its path, and the
    command's ``encoding_option`` as the way to change the encoding).

    A file without data rows is refused: there is nothing to score.
    """
    if fmt not in FORMATS:
        raise DataError(f"{path}: unsupported format {fmt!r}; expected one of {', '.join(FORMATS)}")
    source = Source(path=str(path), format=fmt, delimiter=delimiter, encoding=encoding)
    data = _read_file_source(source, Path.cwd(), None, str(path), encoding_option)
    if data.frame.is_empty():
        what = "a header but no data rows" if fmt == "csv" else "no data rows"
        raise DataError(f"{path}: the file has {what}; there is nothing to score")
    return data


# -- files -----------------------------------------------------------------------------------


def _file_location(source: Source, base_dir: Path) -> tuple[str, str]:
    """Where a file source is, and how messages name it: ``label (location)``, password masked."""
    location = _location(source.path or "", base_dir)
    return location, f"{source.label} ({_mask_text(location)})"


def _read_file_source(
    source: Source,
    base_dir: Path,
    hook: ProgressHook | None,
    prefix: str | None = None,
    encoding_option: str | None = None,
) -> SourceData:
    location, shown_as = _file_location(source, base_dir)
    prefix = prefix or shown_as
    shown = _mask_text(location)
    fmt = _format_of(source, prefix)
    data, sha256 = _read_bytes(location, prefix, hook)
    if not data:
        raise DataError(f"{prefix}: the file is empty (0 bytes), so it has no rows")
    line_offset: int | None = None
    lines: pl.Series | None = None
    if fmt == "parquet":
        frame = _parse_parquet(data, prefix)
    else:
        delimiter = source.delimiter if fmt == "csv" else None
        text = _decode(data, source.encoding, prefix, delimiter, encoding_option)
        if fmt == "csv":
            frame, line_offset, lines = _parse_csv(text, source.delimiter, prefix)
        elif fmt == "json":
            frame, lines = _parse_json(text, prefix)
        else:
            frame, lines = _parse_jsonl(text, prefix)
    lineage = {
        "name": source.label,
        "kind": "file",
        "path": shown,
        "format": fmt,
        "rows": frame.height,
        "sha256": sha256,
        "bytes": len(data),
    }
    return SourceData(source.label, frame, lineage, line_offset, lines)


def _location(path: str, base_dir: Path) -> str:
    """A URL as given; a local path made absolute against the spec's folder."""
    if "://" in path:
        return path
    local = Path(path).expanduser()
    return str(local if local.is_absolute() else base_dir / local)


def _format_of(source: Source, prefix: str) -> str:
    fmt = source.resolved_format
    if fmt is None:
        raise DataError(
            f"{prefix}: cannot tell the file format from its name; "
            f"set `format:` to one of {', '.join(FORMATS)}"
        )
    if fmt not in FORMATS:
        raise DataError(f"{prefix}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def _open(location: str, prefix: str) -> tuple[Any, int | None]:
    """An open binary handle on the file at ``location`` and its size, if known."""
    try:
        fs, fs_path = fsspec.core.url_to_fs(location)
    except (ValueError, ImportError) as exc:
        raise DataError(f"{prefix}: cannot open this location: {_mask_text(str(exc))}") from None
    try:
        if fs.isdir(fs_path):
            raise DataError(f"{prefix}: is a directory; expected a file")
        total: int | None = fs.size(fs_path)
        handle = fs.open(fs_path, "rb")
    except FileNotFoundError:
        raise DataError(f"{prefix}: the file does not exist") from None
    except OSError as exc:
        raise DataError(f"{prefix}: the file cannot be read: {_mask_text(str(exc))}") from None
    return handle, total


def _blocks(handle: Any, prefix: str) -> Iterator[bytes]:
    """The handle's bytes in ``BLOCK_BYTES`` blocks; a failing read names the source."""
    try:
        while block := handle.read(BLOCK_BYTES):
            yield block
    except OSError as exc:
        raise DataError(
            f"{prefix}: reading the file failed part way: {_mask_text(str(exc))}"
        ) from None


def _read_bytes(location: str, prefix: str, hook: ProgressHook | None) -> tuple[bytes, str]:
    """The file's bytes and their sha256, read once in blocks that also drive the progress."""
    handle, total = _open(location, prefix)
    digest = hashlib.sha256()
    blocks: list[bytes] = []
    done = 0
    if hook:
        hook(0, total)
    with handle:
        for block in _blocks(handle, prefix):
            digest.update(block)
            blocks.append(block)
            done += len(block)
            if hook:
                hook(done, total)
    return b"".join(blocks), digest.hexdigest()


def _decode(
    data: bytes, encoding: str, prefix: str, delimiter: str | None = None, option: str | None = None
) -> str:
    """The file's text; a wrong encoding is reported with its line (and, given the CSV
    ``delimiter``, its column), its byte offset and the way to fix it: the source's
    ``encoding:``, or the command-line ``option`` when one is given."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        setting = f"`{option}`" if option else "`encoding:`"
        raise DataError(
            f"{prefix}: unknown encoding {encoding!r}; set {setting} to a codec name such as "
            "utf-8, latin-1 or cp1252"
        ) from None
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].decode(codec, errors="replace").count("\n") + 1
        where = f"line {line}"
        column = _csv_column_at(data, exc.start, codec, delimiter) if delimiter else None
        if column is not None:
            where += f", column {column!r}"
        byte = data[exc.start]
        if codec == "utf-8":
            fix = (
                f"pass it, e.g. `{option} latin-1` or `{option} cp1252`"
                if option
                else "set it on the source, e.g. `encoding: latin-1` or `encoding: cp1252`"
            )
            raise DataError(
                f"{prefix}: {where} is not valid UTF-8 (byte 0x{byte:02x} at offset "
                f"{exc.start}); if the file uses another encoding, {fix}"
            ) from None
        check = f"`{option}`" if option else "`encoding:` on the source"
        raise DataError(
            f"{prefix}: {where} is not valid {encoding} (byte 0x{byte:02x} at offset "
            f"{exc.start}: {exc.reason}); check {check}"
        ) from None
    return text.removeprefix("\ufeff")


def _csv_column_at(data: bytes, offset: int, codec: str, delimiter: str) -> str | None:
    """The header name of the CSV field holding byte ``offset``; None within the header itself.

    Only the line of ``offset`` is looked at (quote-aware), so that locating a bad byte near the
    end of a large file stays cheap; a quoted value spanning lines may misplace the column.
    """
    line_start = data.rfind(b"\n", 0, offset) + 1
    if line_start == 0:
        return None
    header_line = data[: data.find(b"\n")].decode(codec, errors="replace")
    header_line = header_line.removeprefix("\ufeff").rstrip("\r")
    header = next(csv.reader([header_line], delimiter=delimiter))
    index = _field_index(data[line_start:offset].decode(codec, errors="replace"), delimiter)
    return header[index] if index < len(header) else None


def _field_index(text: str, delimiter: str) -> int:
    """Which field (0-based) the end of ``text``, the start of a CSV line, is in."""
    index, quoted = 0, False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            index += 1
    return index


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- CSV ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CsvLayout:
    """What the line structure check found: the header and how data rows map to lines."""

    header: list[str]
    rows: int
    line_offset: int | None
    lines: list[int] | None = None
    """The line each data row starts on, when a quoted value spans lines."""


def _parse_csv(
    text: str, delimiter: str, prefix: str
) -> tuple[pl.DataFrame, int | None, pl.Series | None]:
    """Every column as text; rows with a wrong number of fields are refused with their line.

    Polars fills a short row with nulls without complaint, so a truncated file would pass as
    missing values; the field counts are therefore checked first, per line. A header without rows
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
        raise DataError(f"{prefix}: cannot be read as CSV: {_first_line(exc)}") from None
    if frame.height != layout.rows:
        return frame, None, None
    lines = pl.Series("line", layout.lines, dtype=pl.Int64) if layout.lines is not None else None
    return frame, layout.line_offset, lines


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


# -- JSON, JSON lines, Parquet -----------------------------------------------------------------


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
                    f"{prefix}: item {len(records)} of the array is {_json_kind(item)} "
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
    return _records_frame(records), pl.Series("line", lines, dtype=pl.Int64)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


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
        return _nested_as_text(frame), lines
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
                f"{prefix}: line {number} is {_json_kind(value)}; expected one object per line"
            )
        records.append(value)
    return _records_frame(records), lines


def _nested_as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Objects and arrays as their JSON text: no declared type holds them, and typing quotes
    them as written when it refuses them."""
    nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()]
    if not nested:
        return frame
    return frame.with_columns(
        pl.Series(name, [None if v is None else _text(v) for v in frame[name].to_list()], pl.String)
        for name in nested
    )


def _records_frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows given as objects (keys in order of first appearance), each column typed by
    :func:`_column`."""
    names = list(dict.fromkeys(name for record in records for name in record))
    return pl.DataFrame([_column(name, [r.get(name) for r in records]) for name in names])


_NUMBERS = {int, float}


def _column(name: str, values: list[Any]) -> pl.Series:
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
    return pl.Series(name, [None if v is None else _text(v) for v in values], dtype=pl.String)


def _text(value: Any) -> str:
    """How a value is written: JSON for booleans, objects and arrays, ISO 8601 for dates."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat() if callable(isoformat) else value)


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _parse_parquet(data: bytes, prefix: str) -> pl.DataFrame:
    try:
        return pl.read_parquet(io.BytesIO(data))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(
            f"{prefix}: is not a valid Parquet file (damaged, truncated or another format): "
            f"{_first_line(exc)}"
        ) from None


# -- SQL ---------------------------------------------------------------------------------------


def _read_query(source: Source, base_dir: Path, hook: ProgressHook | None) -> SourceData:
    raw_url, query = source.url or "", source.query or ""
    url = _database_url(raw_url, source.label, base_dir)
    shown = url.render_as_string(hide_password=True)
    prefix = f"{source.label} ({shown})"
    secrets = _secrets_of(url)
    _check_sqlite_file(url, prefix)
    try:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise DataError(
            f"{prefix}: no database driver for {url.drivername!r}: "
            f"{_mask(_first_line(exc), secrets)}"
        ) from None
    try:
        frame = _run_query(engine, query, prefix, secrets, hook)
    finally:
        engine.dispose()
    lineage = {
        "name": source.label,
        "kind": "query",
        "url": shown,
        "query": query,
        "format": "sql",
        "rows": frame.height,
    }
    return SourceData(source.label, frame, lineage, None)


def _database_url(raw_url: str, label: str, base_dir: Path) -> URL:
    """The source's URL with ``${VAR}`` filled in from the environment, parsed."""
    prefix = f"{label} ({_mask_text(raw_url)})"
    missing = [name for name in _ENV_REFERENCE.findall(raw_url) if name not in os.environ]
    if missing:
        names = ", ".join(dict.fromkeys(missing))
        raise DataError(
            f"{prefix}: environment variable {names} is not set; `url` refers to it as "
            f"${{{missing[0]}}}, so set it before running"
        )
    text = _ENV_REFERENCE.sub(lambda match: os.environ[match.group(1)], raw_url)
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError:
        raise DataError(
            f"{label} ({_mask_text(text)}): is not a valid SQLAlchemy URL; expected e.g. "
            "postgresql+psycopg://user:${PGPASSWORD}@host:5432/db or sqlite:///data.db"
        ) from None
    return _sqlite_beside_spec(url, base_dir)


def _sqlite_beside_spec(url: URL, base_dir: Path) -> URL:
    """A relative SQLite file is relative to the spec, like every other path in it."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:") or Path(database).expanduser().is_absolute():
        return url
    return url.set(database=str(base_dir / database))


def _check_sqlite_file(url: URL, prefix: str) -> None:
    """Refuse a SQLite file that is not there: connecting would create it, and reading a source
    must never write (a mistyped path would otherwise leave an empty database behind)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):
        return
    path = Path(database).expanduser()
    if path.is_dir():
        raise DataError(f"{prefix}: is a directory; expected a SQLite database file")
    if not path.exists():
        raise DataError(f"{prefix}: the database file does not exist")


def _run_query(
    engine: sa.Engine,
    query: str,
    prefix: str,
    secrets: list[str],
    hook: ProgressHook | None,
) -> pl.DataFrame:
    """Run the query in a transaction that is rolled back: reading never changes the database."""
    try:
        connection = engine.connect()
    except sa.exc.SQLAlchemyError as exc:
        raise DataError(
            f"{prefix}: cannot connect to the database: {_db_message(exc, secrets)}"
        ) from None
    with connection:
        try:
            return _fetch_batches(connection, query, prefix, hook)
        except sa.exc.SQLAlchemyError as exc:
            raise DataError(f"{prefix}: the query failed: {_db_message(exc, secrets)}") from None


def _fetch_batches(
    connection: Connection, query: str, prefix: str, hook: ProgressHook | None
) -> pl.DataFrame:
    """Fetch ``BATCH_ROWS`` rows at a time; batches are stacked with their types reconciled
    (a column that is all NULL in the first batch takes its type from the later ones)."""
    result = connection.execution_options(yield_per=BATCH_ROWS, no_parameters=True).exec_driver_sql(
        query
    )
    if not result.returns_rows:
        raise DataError(f"{prefix}: the query returns no rows; expected a SELECT")
    columns = list(result.keys())
    _check_columns(columns, prefix)
    frames: list[pl.DataFrame] = []
    done = 0
    for rows in result.partitions(BATCH_ROWS):
        frames.append(_batch_frame(rows, columns))
        done += len(rows)
        if hook:
            hook(done, None)
    if not frames:
        return pl.DataFrame(schema=dict.fromkeys(columns, pl.Null))
    try:
        return pl.concat(frames, how="vertical_relaxed")
    except pl.exceptions.PolarsError:
        return pl.concat(_as_text_where_types_differ(frames), how="vertical_relaxed")


def _as_text_where_types_differ(frames: list[pl.DataFrame]) -> list[pl.DataFrame]:
    """Batches whose columns disagree on a type that cannot be widened (integers in one batch,
    text in the next) with those columns as text, as one batch mixing them would have."""
    mixed = [
        name
        for name in frames[0].columns
        if len({f.schema[name] for f in frames if f.schema[name] != pl.Null}) > 1
    ]
    return [
        frame.with_columns(
            pl.col(name).map_elements(_text, return_dtype=pl.String)
            if frame.schema[name] == pl.Boolean
            else pl.col(name).cast(pl.String)
            for name in mixed
        )
        for frame in frames
    ]


def _check_columns(columns: list[str], prefix: str) -> None:
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise DataError(
                f"{prefix}: the query returns column {name!r} more than once; "
                "give every column a distinct name (AS ...)"
            )
        seen.add(name)


def _batch_frame(rows: Iterable[Any], columns: list[str]) -> pl.DataFrame:
    """A batch of rows as columns; a column whose values mix types (SQLite lets an INTEGER
    column hold ``'n/a'``) is text, each value as written, for typing to judge value by value."""
    values = list(zip(*rows, strict=True)) or [() for _ in columns]
    frame = pl.DataFrame(
        [_column(name, list(column)) for name, column in zip(columns, values, strict=True)]
    )
    return _objects_as_text(frame)


def _objects_as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Values Polars has no type for (UUIDs, a driver's own classes) become their text, since a
    column of Python objects can be neither checked nor written to Parquet."""
    objects = [name for name, dtype in frame.schema.items() if dtype == pl.Object]
    if not objects:
        return frame
    return frame.with_columns(pl.col(objects).map_elements(str, return_dtype=pl.String))


def _db_message(exc: sa.exc.SQLAlchemyError, secrets: list[str]) -> str:
    """The database's own words on one line (not SQLAlchemy's wrapper), password masked.

    PostgreSQL quotes the statement with a caret under the fault; the statement it quotes is the
    cursor declaration wrapped around the query, so only the query line number is kept.
    """
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc)
    text = text.split("(Background on this error", 1)[0]
    kept: list[str] = []
    query_line = None
    for line in text.splitlines():
        quoted = _QUOTED_LINE.match(line)
        if quoted:
            query_line = quoted.group(1)
        elif line.strip() and line.strip() != "^":
            kept.append(" ".join(line.split()))
    message = "; ".join(kept) or type(exc).__name__
    if query_line:
        message += f" (line {query_line} of the query)"
    return _mask(message, secrets)


def _secrets_of(url: URL) -> list[str]:
    password = url.password
    if not password:
        return []
    return sorted({str(password), quote(str(password), safe="")}, key=len, reverse=True)


def _mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _MASK)
    return _mask_text(text)


def _mask_text(text: str) -> str:
    """Hide the password of any ``scheme://user:password@host`` in ``text``."""
    return _URL_PASSWORD.sub(rf"\g<1>{_MASK}@", text)
