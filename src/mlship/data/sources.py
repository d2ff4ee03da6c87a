"""Read one source (a file, a SQL query or a landed stream) into a Polars DataFrame, with its
lineage.

The entry points the rest of mlship calls; the reading itself is done by the format's class in
:mod:`mlship.data.readers` (one per format, behind one protocol).

CSV values stay text: typing happens later, against the declared schema, and must see exactly what
the file says so that an unparsable value can be quoted with its line. JSON, JSON lines, Parquet
and SQL keep the types their format or database gives them, except in a column whose values mix
types (numbers and ``"n/a"``, an object among numbers, ``true`` in an integer column): that column
is read as text, each value as written, and typing decides value by value. One odd value thus
quarantines one row instead of failing the whole source.

Every row knows its physical place: its line in a CSV (a quoted value may span lines), JSON lines
or JSON array file (the line where its object starts), its row number in a query's result or a
Parquet file, or its event's id in a landed stream.

Every failure is a :class:`DataError` whose message starts with the source's label and location
(``customers (/data/customers.csv): line 7 has 2 field(s) ...``), so a spec with many sources
says which one is broken and where.
"""

from __future__ import annotations

from pathlib import Path

from mlship.data.readers import (
    BATCH_ROWS,
    BLOCK_BYTES,
    FORMATS,
    HistoryStores,
    ProgressHook,
    SourceData,
    file_reader_for,
    reader_for,
)
from mlship.data.readers.location import resolve, sha256_of
from mlship.data.readers.masking import mask_text
from mlship.data.readers.stream import StreamReader
from mlship.errors import DataError
from mlship.spec.data import Source

__all__ = [
    "BATCH_ROWS",
    "BLOCK_BYTES",
    "FORMATS",
    "HistoryStores",
    "ProgressHook",
    "SourceData",
    "read_rows",
    "read_source",
    "source_fingerprint",
    "source_sha256",
]


def read_source(
    source: Source,
    base_dir: Path,
    on_progress: ProgressHook | None = None,
    stores: HistoryStores | None = None,
) -> SourceData:
    """Read ``source`` (paths relative to ``base_dir``, the spec's folder; a landed stream from
    ``stores``, the workspace's logs) into a DataFrame.

    Files are read in blocks of ``BLOCK_BYTES`` and queries fetched in batches of ``BATCH_ROWS``
    (both looked up here at each call)."""
    reader = reader_for(
        source, base_dir, block_bytes=BLOCK_BYTES, batch_rows=BATCH_ROWS, stores=stores
    )
    return reader.read(on_progress)


def source_fingerprint(
    source: Source, base_dir: Path, stores: HistoryStores | None = None
) -> str | None:
    """What a source's rows depend on, known without reading them all: a file's sha256, the
    fingerprint of a landed stream's events in its range; None for a query (only running it
    tells)."""
    if source.stream is not None:
        return StreamReader(source, base_dir, stores=stores).fingerprint()
    if source.path is not None:
        return source_sha256(source, base_dir)
    return None


def source_sha256(source: Source, base_dir: Path) -> str:
    """The sha256 of a file source's bytes, refused with the same messages as reading it."""
    location = resolve(source.path or "", base_dir)
    return sha256_of(location, f"{source.label} ({mask_text(location)})", BLOCK_BYTES)


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
    reader = file_reader_for(
        source,
        Path.cwd(),
        shown_as=str(path),
        encoding_option=encoding_option,
        block_bytes=BLOCK_BYTES,
    )
    data = reader.read()
    if data.frame.is_empty():
        what = "a header but no data rows" if fmt == "csv" else "no data rows"
        raise DataError(f"{path}: the file has {what}; there is nothing to score")
    return data
