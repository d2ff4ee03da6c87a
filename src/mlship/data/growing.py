"""Reading what a growing source added since its high-water mark.

Two kinds of source only grow:

- a CSV or JSON-lines file written to at its end (``mode: append``). Its mark is the byte offset
  read up to, the lines before it, and the sha256 of those bytes. The next read hashes the
  file's first bytes again: a file that is shorter, or whose first bytes changed, was rewritten
  rather than appended to, and is reported as such (:class:`Rewritten`); otherwise only the bytes
  after the mark are parsed, a CSV with its header line in front. Only whole lines are read: a
  last line without its newline may still be being written, and waits for the next ingest.
- a folder (a path ending in ``/``) or a glob (``exports/*.csv``) where new files appear, with
  ``mode: append`` too. Its mark is the sha256 of every file read; new files are read whole, in
  name order, and a file read before that changed was rewritten (:class:`Rewritten`).
- a query whose rows have an increasing ``key`` (``WHERE key > mark ORDER BY key``) or a change
  time ``updated_at`` (``WHERE updated_at >= mark - overlap ORDER BY updated_at``). The mark is
  the last row's value (the largest in the database's own order, whatever its collation), kept
  as the SQL literal the next query compares with; the overlap
  reads again rows committed late with an earlier time, and the caller keeps one copy per key.

A mark is a JSON object (it is stored in the metadata store); this module makes and reads them,
and never stores anything itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import fsspec  # type: ignore[import-untyped, unused-ignore]
import polars as pl
import sqlalchemy as sa

from mlship.data.lineage import FileLineage
from mlship.data.readers import (
    CsvReader,
    FileReader,
    JsonLinesReader,
    QueryReader,
    SourceData,
    file_reader_for,
)
from mlship.data.readers.database import database_url
from mlship.data.readers.location import BLOCK_BYTES, blocks, open_file, resolve, sha256_of
from mlship.data.readers.masking import mask_text
from mlship.errors import DataError
from mlship.spec.data import Source

Mark = dict[str, Any]


class Rewritten(DataError):
    """A file read up to a mark no longer starts with the bytes read: it was rewritten."""


@dataclass(frozen=True)
class Increment:
    """The rows a source added since its mark, the mark after them, and what was read, for the
    dataset's record (``from``/``to`` of the mark, rows read)."""

    data: SourceData
    mark: Mark
    read: dict[str, Any]


def read_increment(source: Source, base_dir: Path, mark: Mark | None) -> Increment:
    """What ``source`` added since ``mark`` (everything when None)."""
    growing = source.incremental
    assert growing is not None, "only incremental sources grow"
    if growing.mode == "append" and is_folder(source.path or ""):
        return _new_files(source, base_dir, mark)
    if growing.mode == "append":
        return _appended(source, base_dir, mark)
    return _queried(source, base_dir, mark)


# -- growing files ------------------------------------------------------------------------------


def _appended(source: Source, base_dir: Path, mark: Mark | None) -> Increment:
    reader: FileReader = (
        CsvReader(source, base_dir)
        if source.resolved_format == "csv"
        else JsonLinesReader(source, base_dir)
    )
    prefix = reader.describe()
    start = int(mark["bytes"]) if mark else 0
    lines_before = int(mark["lines"]) if mark else 0
    found = _split(resolve(source.path or "", base_dir), prefix, start)
    read_part, seen, head, new = found.read_part, found.size, found.head, found.new
    if mark is not None and (seen < start or read_part.hexdigest() != mark["sha256"]):
        what = "is shorter than" if seen < start else "no longer starts with"
        raise Rewritten(
            f"{prefix}: the file {what} the {start} bytes read up to the last ingest: it was "
            "rewritten, not appended to"
        )
    complete = new.rfind(b"\n") + 1  # whole lines only; a partial last line waits
    taken = new[:complete]
    read_part.update(taken)
    lines = lines_before + taken.count(b"\n")
    if source.resolved_format == "csv":
        header = head.split(b"\n", 1)[0] + b"\n"
        if start == 0:
            parsed = reader.parse(taken) if taken.strip() else None
            shift = 0
        else:
            parsed = reader.parse(header + taken)
            shift = lines_before - 1
        if parsed is None:
            raise DataError(f"{prefix}: the file has no complete line yet; expected a CSV header")
    else:
        parsed = reader.parse(taken) if taken.strip() else None
        shift = lines_before
    if parsed is None:  # JSON lines with nothing new: the columns read before, no rows
        columns = (mark or {}).get("columns", [])
        frame = pl.DataFrame({name: pl.Series(name, [], pl.String) for name in columns})
        line_offset: int | None = None
        found_lines: pl.Series | None = pl.Series("line", [], pl.Int64)
    else:
        frame = parsed.frame
        line_offset = None if parsed.line_offset is None else parsed.line_offset + shift
        found_lines = None if parsed.lines is None else parsed.lines + shift
    lineage = FileLineage(
        name=source.label,
        path=mask_text(reader.location),
        format=reader.format,
        rows=frame.height,
        sha256=found.whole,
        bytes=seen,
    )
    data = SourceData(source.label, frame, lineage, line_offset, found_lines)
    after: Mark = {
        "kind": "append",
        "bytes": start + complete,
        "lines": lines,
        "sha256": read_part.hexdigest(),
        "columns": list(frame.columns),
    }
    read = {
        "mode": "append",
        "from": {"byte": start, "line": lines_before + 1},
        "to": {"byte": start + complete, "line": lines},
        "rows": frame.height,
        "waiting_bytes": len(new) - complete,
    }
    return Increment(data, after, read)


@dataclass
class _Split:
    """A file read once: the digest of its first ``start`` bytes (to go on with), its size, its
    first block (for a CSV's header), the sha256 of all of it, and the bytes after ``start``."""

    read_part: Any
    size: int
    head: bytes
    whole: str
    new: bytes


def _split(location: str, prefix: str, start: int) -> _Split:
    """Read the file in blocks, hashing all of it and its first ``start`` bytes apart, and
    keeping only the bytes after ``start`` (the ones to parse)."""
    handle, _ = open_file(location, prefix)
    whole = hashlib.sha256()
    read_part = hashlib.sha256()
    seen = 0
    head = b""
    tail: list[bytes] = []
    with handle:
        for block in blocks(handle, prefix, BLOCK_BYTES):
            whole.update(block)
            if len(head) < BLOCK_BYTES:
                head += block[: BLOCK_BYTES - len(head)]
            before = max(0, min(len(block), start - seen))
            read_part.update(block[:before])
            if before < len(block):
                tail.append(block[before:])
            seen += len(block)
    return _Split(read_part, seen, head, whole.hexdigest(), b"".join(tail))


# -- folders that gain files --------------------------------------------------------------------


def is_folder(path: str) -> bool:
    """Whether a source's path names many files: a folder (ending in ``/``) or a glob."""
    return path.endswith("/") or any(char in path for char in "*?[")


def _new_files(source: Source, base_dir: Path, mark: Mark | None) -> Increment:
    """The rows of the files that appeared since the mark, each file read whole, in name order.

    A file read before is not read again; one whose sha256 changed since was rewritten
    (:class:`Rewritten`); one that is gone is listed (its rows stay: deletions are not seen)."""
    pattern = resolve(source.path or "", base_dir)
    shown = f"{source.label} ({mask_text(pattern)})"
    try:
        fs, fs_path = fsspec.core.url_to_fs(pattern)
        names = fs.ls(fs_path, detail=False) if pattern.endswith("/") else fs.glob(fs_path)
        files = sorted(str(name) for name in names if fs.isfile(name))
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"{shown}: cannot list the files: {mask_text(str(exc))}") from None
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    known: dict[str, Any] = dict((mark or {}).get("files", {}))
    found: list[SourceData] = []
    added: dict[str, Any] = {}
    for name in files:
        location = name if local else fs.unstrip_protocol(name)
        if name in known:
            if sha256_of(location, shown, BLOCK_BYTES) != known[name]["sha256"]:
                raise Rewritten(
                    f"{shown}: file {mask_text(name)} was read by an earlier ingest and has "
                    "changed since: a folder of growing data only gains files"
                )
            continue
        one = source.model_copy(update={"path": location, "incremental": None})
        data = file_reader_for(one, base_dir).read()
        assert isinstance(data.origin, FileLineage)
        found.append(data)
        added[name] = {"sha256": data.origin.sha256, "bytes": data.origin.bytes}
    columns = (mark or {}).get("columns", [])
    if found:
        frame = pl.concat([data.frame for data in found], how="diagonal_relaxed")
        lines = pl.concat([data.places() for data in found])
    else:
        frame = pl.DataFrame({name: pl.Series(name, [], pl.String) for name in columns})
        lines = pl.Series("line", [], pl.Int64)
    every = {**known, **added}
    digest = hashlib.sha256(json.dumps(every, sort_keys=True).encode()).hexdigest()
    lineage = FileLineage(
        name=source.label,
        path=mask_text(pattern),
        format=source.resolved_format or "",
        rows=frame.height,
        sha256=digest,
        bytes=sum(int(entry["bytes"]) for entry in added.values()),
    )
    after: Mark = {"kind": "files", "files": every, "columns": list(frame.columns) or columns}
    read = {
        "mode": "append",
        "from": f"{len(known)} file(s)",
        "to": f"{len(every)} file(s)",
        "files": [mask_text(name) for name in added],
        "missing": [mask_text(name) for name in known if name not in files],
        "rows": frame.height,
    }
    return Increment(SourceData(source.label, frame, lineage, None, lines), after, read)


# -- growing tables -----------------------------------------------------------------------------


def _queried(source: Source, base_dir: Path, mark: Mark | None) -> Increment:
    growing = source.incremental
    assert growing is not None
    by_time = growing.updated_at is not None
    column = growing.updated_at if by_time else growing.key
    assert column is not None
    if mark is not None and "literal" not in mark:
        mark = None  # no row was read yet: read from the start
    base = QueryReader(source, base_dir)
    prefix = base.describe()
    url = database_url(source.url or "", source.label, base_dir)
    try:
        dialect = sa.create_engine(url, poolclass=sa.NullPool).dialect
    except (sa.exc.ArgumentError, ImportError):
        base.read()  # refused there, with the reader's message
        raise
    quoted = dialect.identifier_preparer.quote(column)
    query = (source.query or "").strip().rstrip(";").strip()
    # The spec's own query, wrapped; the mark is a literal this module wrote and escaped.
    wrapped = f"SELECT * FROM ({query}) AS mlship_increment"  # noqa: S608
    since = None
    if mark is not None:
        since = _since(mark, growing.overlap_seconds, prefix) if by_time else mark["literal"]
        wrapped += f" WHERE {quoted} {'>=' if by_time else '>'} {since}"
    wrapped += f" ORDER BY {quoted}"
    reader = QueryReader(source.model_copy(update={"query": wrapped}), base_dir)
    try:
        return _queried_with(reader, source, column, since, mark, by_time)
    except DataError:
        _has_column(source, base_dir, query, column)  # the likely reason, said plainly
        raise


def _has_column(source: Source, base_dir: Path, query: str, column: str) -> None:
    """Refuse, naming what the query returns, when it has no column ``column``."""
    probe = f"SELECT * FROM ({query}) AS mlship_columns WHERE 1 = 0"  # noqa: S608
    try:
        returned = QueryReader(source.model_copy(update={"query": probe}), base_dir).read()
    except DataError:
        return  # the query itself fails: the first message says why
    if column not in returned.frame.columns:
        raise DataError(
            f"{QueryReader(source, base_dir).describe()}: the query returns no column {column!r}, "
            f"which `incremental` reads the source by; it returns: "
            f"{', '.join(returned.frame.columns)}"
        )


def _queried_with(
    reader: QueryReader,
    source: Source,
    column: str,
    since: str | None,
    mark: Mark | None,
    by_time: bool,
) -> Increment:
    read = reader.read()
    frame = read.frame
    prefix = reader.describe()
    if column not in frame.columns:
        raise DataError(
            f"{prefix}: the query returns no column {column!r}, which `incremental` reads the "
            f"source by; it returns: {', '.join(frame.columns)}"
        )
    data = SourceData(source.label, frame, read.origin, None)
    if frame[column].null_count():
        raise DataError(
            f"{prefix}: column {column!r} is empty in {frame[column].null_count()} row(s); "
            "a row without it cannot be placed after the mark, so every row needs one"
        )
    if frame[column].dtype == pl.String:
        _one_kind(frame[column], prefix, column)
    after = mark
    if frame.height:
        newest = frame[column][-1]  # the largest in the database's own order (ORDER BY it)
        literal, shown = _literal(newest, prefix, column)
        after = {"kind": "updated_at" if by_time else "key", "literal": literal, "shown": shown}
        if mark is not None and by_time and _older(after, mark):
            after = mark  # the overlap read only rows at or before the mark
    kept = dict(after or {"kind": "updated_at" if by_time else "key"})
    return Increment(
        data,
        kept,
        {
            "mode": "updated_at" if by_time else "key",
            "column": column,
            "from": None if mark is None else mark.get("shown"),
            "read_from": since,
            "to": kept.get("shown"),
            "rows": frame.height,
        },
    )


def _one_kind(values: pl.Series, prefix: str, column: str) -> None:
    """Refuse a column read as text because its values mix numbers and text (SQLite allows it):
    its largest value could not be compared with the database's own order, and rows would be
    skipped."""
    numeric = values.str.contains(r"^\s*[-+]?\d+(\.\d*)?([eE][-+]?\d+)?\s*$")
    if numeric.any() and not numeric.all():
        example = values.filter(~numeric)[0]
        raise DataError(
            f"{prefix}: column {column!r} mixes numbers and text (e.g. {example!r}); the column "
            "`incremental` reads the source by must hold one kind of value"
        )


def _older(new: Mark, old: Mark) -> bool:
    """Whether the newest time read is before the stored one (only rows in the overlap came)."""
    try:
        return bool(_as_time(new["shown"]) < _as_time(old["shown"]))
    except (TypeError, ValueError):
        return bool(str(new["shown"]) < str(old["shown"]))


def _literal(value: Any, prefix: str, column: str) -> tuple[str, str]:
    """``value`` as an SQL literal to compare the column with, and as shown to people."""
    if isinstance(value, bool):
        raise DataError(f"{prefix}: column {column!r} is boolean; it cannot order rows")
    if isinstance(value, int | float | Decimal):
        return str(value), str(value)
    if isinstance(value, datetime | date):
        text = value.isoformat()
        return _quoted(text), text
    if isinstance(value, str):
        return _quoted(value), value
    raise DataError(
        f"{prefix}: column {column!r} holds {type(value).__name__} values; `incremental` needs "
        "numbers, text or date/times that only increase"
    )


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _as_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


def _since(mark: Mark, overlap: int, prefix: str) -> str:
    """The SQL literal of the mark moved back by ``overlap`` seconds: a number less, or a
    date/time earlier written the way the database wrote the mark (SQLite compares text)."""
    shown = str(mark["shown"])
    if not mark["literal"].startswith("'"):
        number = Decimal(shown) - overlap
        return str(number)
    try:
        moment = _as_time(shown)
    except ValueError:
        raise DataError(
            f"{prefix}: the last change time read was {shown!r}, which is not a date/time; "
            "`updated_at` needs ISO 8601 date/times or numbers"
        ) from None
    earlier = moment - timedelta(seconds=overlap)
    separator = "T" if "T" in shown else " "
    spec = "microseconds" if moment.microsecond else "seconds"
    text = earlier.isoformat(sep=separator, timespec=spec)
    if len(shown) == 10:  # a date alone
        text = earlier.date().isoformat()
    return _quoted(text)
