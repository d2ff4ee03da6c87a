"""Local CSV and Parquet files read in bounded batches, for data larger than memory.

The whole-file readers parse a file at once because a CSV's quoting is only known at its end.
Here a CSV is cut into blocks of about ``block_bytes`` at a line end outside any quoted value
(an even number of quotes before the cut), and each block is parsed by the same code as a whole
file, with the header in front; line numbers and the messages that quote them are shifted to the
block's place in the file. A Parquet file is read a record batch at a time. Each batch is a
:class:`~mlship.data.readers.base.SourceData` whose places are the rows' places in the file, so
everything downstream (typing reasons, checks, quarantine) is the same code as the in-memory
path.

Only encodings in which a newline and a quote are single ASCII bytes can be cut this way; the
others (UTF-16, UTF-32) are read whole (:func:`can_batch` says which).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mlship.data.lineage import FileLineage
from mlship.data.readers.base import SourceData
from mlship.data.readers.csvfile import _parse_csv
from mlship.data.readers.files import FileReader
from mlship.data.readers.location import blocks, open_file
from mlship.data.readers.masking import mask_text
from mlship.errors import DataError

STREAM_BLOCK_BYTES = 4 * 2**20
"""A CSV batch is about this many bytes of the file (some 50,000 rows of a typical table)."""

STREAM_BATCH_ROWS = 131_072
"""A Parquet batch has at most this many rows."""

_ASCII_SAFE = {"utf-8", "utf-8-sig", "ascii", "latin-1", "iso8859-1", "cp1252", "iso8859-15"}
_LINE = re.compile(r"\bline (\d+)")


def can_batch(reader: FileReader) -> str | None:
    """None when ``reader``'s file can be read in batches, else why not (in a sentence)."""
    if "://" in reader.location and not reader.location.startswith("file://"):
        return "only local files are read in batches"
    if reader.format not in ("csv", "parquet"):
        return f"{reader.format} files are read whole (only CSV and Parquet are read in batches)"
    if reader.format == "csv":
        try:
            name = codecs.lookup(reader.source.encoding).name
        except LookupError:
            return None  # reading it whole names the unknown encoding
        if name not in _ASCII_SAFE:
            return f"a {reader.source.encoding} file cannot be cut at line ends byte-wise"
    return None


@dataclass
class BatchTally:
    """What the batches came to, known once they are all read: the lineage of the whole file."""

    rows: int = 0
    bytes: int = 0


def file_batches(
    reader: FileReader,
    sha256: str,
    tally: BatchTally,
    *,
    block_bytes: int | None = None,
    batch_rows: int | None = None,
) -> Iterator[SourceData]:
    """The file's rows in batches; ``tally`` is updated as they are read (``sha256`` is the
    file's, computed beforehand, for each batch's lineage). The batch sizes default to
    ``STREAM_BLOCK_BYTES`` and ``STREAM_BATCH_ROWS``, looked up at each call."""
    if reader.format == "csv":
        yield from _csv_batches(reader, sha256, tally, block_bytes or STREAM_BLOCK_BYTES)
    else:
        yield from _parquet_batches(reader, sha256, tally, batch_rows or STREAM_BATCH_ROWS)


def lineage_of(reader: FileReader, sha256: str, tally: BatchTally) -> FileLineage:
    """The file's lineage as far as it has been read (all of it, once the batches are done)."""
    return FileLineage(
        name=reader.label,
        path=mask_text(reader.location),
        format=reader.format,
        rows=tally.rows,
        sha256=sha256,
        bytes=tally.bytes,
    )


def _cut(buffer: bytes) -> int:
    """The end of the last whole record in ``buffer``: just after a newline with an even number
    of quotes before it; -1 when there is none yet (a quoted value goes on)."""
    cut = buffer.rfind(b"\n")
    while cut != -1 and buffer.count(b'"', 0, cut) % 2:
        cut = buffer.rfind(b"\n", 0, cut)
    return cut


def _csv_batches(
    reader: FileReader, sha256: str, tally: BatchTally, block_bytes: int
) -> Iterator[SourceData]:
    prefix = reader.describe()
    delimiter = reader.source.delimiter
    handle, _ = open_file(reader.location, prefix)
    header: bytes | None = None
    pending = b""
    line = 2  # the file line of the next record after the header
    with handle:
        for block in blocks(handle, prefix, block_bytes):
            tally.bytes += len(block)
            pending += block
            if header is None:
                end = pending.find(b"\n")
                if end == -1:
                    continue
                header, pending = pending[: end + 1], pending[end + 1 :]
            cut = _cut(pending)
            if cut == -1:
                continue
            body, pending = pending[: cut + 1], pending[cut + 1 :]
            yield from _csv_block(reader, header, body, line, delimiter, sha256, tally)
            line += body.count(b"\n")
    if header is None:
        if not pending.strip():
            raise DataError(f"{prefix}: the file is empty (0 bytes), so it has no rows")
        header, pending = pending + b"\n", b""
    if pending.strip() or tally.rows == 0:
        yield from _csv_block(reader, header, pending, line, delimiter, sha256, tally)


def _csv_block(
    reader: FileReader,
    header: bytes,
    body: bytes,
    line: int,
    delimiter: str,
    sha256: str,
    tally: BatchTally,
) -> Iterator[SourceData]:
    """One block parsed as a file of its own (the header, then ``body`` from file line
    ``line``), its lines and messages moved to where they are in the file."""
    shift = line - 2
    try:
        parsed = _parse_csv(reader.text(header + body, delimiter), delimiter, reader.describe())
    except DataError as exc:
        raise _shifted(exc, reader.describe(), shift) from None
    frame = parsed.frame
    if frame.is_empty() and tally.rows:
        return
    tally.rows += frame.height
    lines = parsed.lines + shift if parsed.lines is not None else None
    offset = parsed.line_offset + shift if parsed.line_offset is not None else None
    if offset is None and lines is None:  # a layout the parser could not tell: count lines
        offset = line
    yield SourceData(reader.label, frame, lineage_of(reader, sha256, tally), offset, lines)


def _shifted(exc: DataError, prefix: str, shift: int) -> DataError:
    """``exc`` with the first line number after the source's name moved by ``shift``."""
    text = str(exc)
    if not text.startswith(prefix) or not shift:
        return exc
    rest = _LINE.sub(lambda m: f"line {int(m.group(1)) + shift}", text[len(prefix) :], count=1)
    return DataError(prefix + rest)


def _parquet_batches(
    reader: FileReader, sha256: str, tally: BatchTally, batch_rows: int
) -> Iterator[SourceData]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    prefix = reader.describe()
    location = reader.location.removeprefix("file://")
    if not Path(location).is_file():
        raise DataError(f"{prefix}: the file does not exist")
    try:
        parquet = pq.ParquetFile(location)
        tally.bytes = Path(location).stat().st_size
        empty = True
        for batch in parquet.iter_batches(batch_size=batch_rows):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            start = tally.rows
            tally.rows += frame.height
            empty = False
            lineage = lineage_of(reader, sha256, tally)
            yield SourceData(reader.label, frame, lineage, None, first_row=start + 1)
        if empty:
            frame = pl.from_arrow(parquet.schema_arrow.empty_table())
            assert isinstance(frame, pl.DataFrame)
            yield SourceData(reader.label, frame, lineage_of(reader, sha256, tally), None)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{prefix}: is not a valid Parquet file (damaged, truncated or another format): "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
