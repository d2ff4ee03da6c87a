"""What every file format shares: finding the file, reading its bytes once, decoding its text.

A file reader subclass only parses: :meth:`FileReader.parse` gets the file's bytes (never empty)
and returns the rows with their lines. Opening, hashing, progress, the empty-file refusal and the
lineage are done here, the same way for every format.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mlship.data.lineage import FileLineage
from mlship.data.readers.base import BATCH_ROWS, SourceData, SourceReader
from mlship.data.readers.decoding import decode
from mlship.data.readers.location import (
    BLOCK_BYTES,
    ProgressHook,
    read_bytes,
    resolve,
    sha256_of,
)
from mlship.data.readers.masking import mask_text
from mlship.errors import DataError
from mlship.spec.data import Source


@dataclass(frozen=True)
class Parsed:
    """A file's rows and their lines: ``line_offset`` when row ``i`` is on line
    ``i + line_offset``, else ``lines`` (one per row), else neither (rows are numbered)."""

    frame: pl.DataFrame
    line_offset: int | None = None
    lines: pl.Series | None = None


class FileReader(SourceReader):
    """A source that is one file, local or remote (http(s), s3://)."""

    def __init__(
        self,
        source: Source,
        base_dir: Path,
        *,
        shown_as: str | None = None,
        encoding_option: str | None = None,
        block_bytes: int = BLOCK_BYTES,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        """``shown_as`` replaces ``label (location)`` in messages (a command names a file by its
        path); ``encoding_option`` is the command-line option a wrong encoding is fixed with,
        instead of the source's ``encoding:``."""
        super().__init__(source, base_dir, block_bytes=block_bytes, batch_rows=batch_rows)
        self.location = resolve(source.path or "", base_dir)
        self.shown_as = shown_as
        self.encoding_option = encoding_option

    def describe(self) -> str:
        return self.shown_as or f"{self.label} ({mask_text(self.location)})"

    def sha256(self) -> str:
        """The file's sha256, without parsing it (an unchanged file need not be read again)."""
        return sha256_of(self.location, self.describe(), self.block_bytes)

    def read(self, on_progress: ProgressHook | None = None) -> SourceData:
        prefix = self.describe()
        content = read_bytes(self.location, prefix, on_progress, self.block_bytes)
        if not content.data:
            raise DataError(f"{prefix}: the file is empty (0 bytes), so it has no rows")
        parsed = self.parse(content.data)
        lineage = FileLineage(
            name=self.label,
            path=mask_text(self.location),
            format=self.format,
            rows=parsed.frame.height,
            sha256=content.sha256,
            bytes=len(content.data),
        )
        return SourceData(self.label, parsed.frame, lineage, parsed.line_offset, parsed.lines)

    @abstractmethod
    def parse(self, data: bytes) -> Parsed:
        """The rows of the file's (non-empty) content, refused with :meth:`describe` and a line."""

    def text(self, data: bytes, delimiter: str | None = None) -> str:
        """The content decoded with the source's encoding (see :func:`decoding.decode`)."""
        return decode(data, self.source.encoding, self.describe(), delimiter, self.encoding_option)
