"""Source readers: one class per format behind one protocol (:class:`SourceReader`).

:func:`reader_for` picks the class a source of the spec needs; the format's module does the rest.
"""

from __future__ import annotations

from pathlib import Path

from mlship.data.readers.base import BATCH_ROWS, Batch, SourceData, SourceReader
from mlship.data.readers.csvfile import CsvReader
from mlship.data.readers.files import FileReader
from mlship.data.readers.jsonfile import JsonReader
from mlship.data.readers.jsonlines import JsonLinesReader
from mlship.data.readers.location import BLOCK_BYTES, ProgressHook, resolve
from mlship.data.readers.masking import mask_text
from mlship.data.readers.parquetfile import ParquetReader
from mlship.data.readers.query import QueryReader
from mlship.data.readers.stream import HistoryStores, StreamReader
from mlship.errors import DataError
from mlship.spec.data import Source

__all__ = [
    "BATCH_ROWS",
    "BLOCK_BYTES",
    "FILE_READERS",
    "FORMATS",
    "Batch",
    "CsvReader",
    "FileReader",
    "HistoryStores",
    "JsonLinesReader",
    "JsonReader",
    "ParquetReader",
    "ProgressHook",
    "QueryReader",
    "SourceData",
    "SourceReader",
    "StreamReader",
    "file_reader_for",
    "reader_for",
]

FILE_READERS: dict[str, type[FileReader]] = {
    reader.format: reader for reader in (CsvReader, ParquetReader, JsonReader, JsonLinesReader)
}
FORMATS = tuple(FILE_READERS)
"""The file formats, as the spec's ``format:`` names them."""


def reader_for(
    source: Source,
    base_dir: Path,
    *,
    block_bytes: int = BLOCK_BYTES,
    batch_rows: int = BATCH_ROWS,
    stores: HistoryStores | None = None,
) -> SourceReader:
    """The reader of ``source`` (paths relative to ``base_dir``, the spec's folder): a query's,
    a landed stream's (read from ``stores``, the workspace's logs), or its file format's, which
    is refused when it cannot be told or is unknown."""
    if source.stream is not None:
        return StreamReader(
            source, base_dir, stores=stores, block_bytes=block_bytes, batch_rows=batch_rows
        )
    if source.query is not None:
        return QueryReader(source, base_dir, block_bytes=block_bytes, batch_rows=batch_rows)
    return file_reader_for(source, base_dir, block_bytes=block_bytes, batch_rows=batch_rows)


def file_reader_for(
    source: Source,
    base_dir: Path,
    *,
    shown_as: str | None = None,
    encoding_option: str | None = None,
    block_bytes: int = BLOCK_BYTES,
    batch_rows: int = BATCH_ROWS,
) -> FileReader:
    """The reader of a file source, by its ``format:`` or its name's extension (see
    :class:`FileReader` for ``shown_as`` and ``encoding_option``)."""
    prefix = shown_as or f"{source.label} ({mask_text(resolve(source.path or '', base_dir))})"
    fmt = source.resolved_format
    if fmt is None:
        raise DataError(
            f"{prefix}: cannot tell the file format from its name; "
            f"set `format:` to one of {', '.join(FORMATS)}"
        )
    reader = FILE_READERS.get(fmt)
    if reader is None:
        raise DataError(f"{prefix}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return reader(
        source,
        base_dir,
        shown_as=shown_as,
        encoding_option=encoding_option,
        block_bytes=block_bytes,
        batch_rows=batch_rows,
    )
