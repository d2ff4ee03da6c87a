"""The source-reader protocol: what every format's reader answers, and what it hands back.

A reader is made for one source of the spec (its settings and the folder paths are relative to)
and answers three questions, one method each:

- :meth:`SourceReader.describe`: how messages name the source, ``label (location)``, password
  masked. Every :class:`~mlship.errors.DataError` a reader raises starts with it, so a spec with
  many sources says which one is broken and where.
- :meth:`SourceReader.read`: the whole source as :class:`SourceData`: raw values, lineage, and
  each row's physical place (its line in a file, or its row number in a result).
- :meth:`SourceReader.batches`: the same rows in :class:`Batch` pieces of at most
  ``batch_rows``, each with its rows' places; stacked, they are what :meth:`read` returns.

A new format is one subclass (see :mod:`mlship.data.readers.files` for the file formats, which
share opening, hashing and decoding); ``read_source`` picks the class from the source.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import polars as pl

from mlship.data.lineage import SourceLineage
from mlship.data.readers.location import BLOCK_BYTES, ProgressHook
from mlship.spec.data import Source

BATCH_ROWS = 10_000
"""Rows are handed out (and, for queries, fetched and reported) in batches of this many."""

Unit = Literal["line", "row", "event"]


@dataclass(frozen=True)
class SourceData:
    """One source as read: its raw values, where they came from, and how rows map to lines."""

    label: str
    frame: pl.DataFrame
    origin: SourceLineage
    line_offset: int | None
    """CSV only: data row ``i`` (0-based) is on file line ``i + line_offset``. None when that does
    not hold for every row (a quoted value spans lines) and for other formats."""
    lines: pl.Series | None = None
    """The file line of each row when ``line_offset`` cannot say it (JSON, JSON lines, a CSV
    whose quoted values span lines); None for Parquet and queries, whose rows are numbered."""
    events: pl.Series | None = None
    """The broker's id of each row's event, for a landed stream: its place."""
    first_row: int = 1
    """The number of the first row, when rows are numbered: a batch of a file read in parts
    starts where the previous one ended."""

    @property
    def lineage(self) -> dict[str, object]:
        """The lineage as stored with the dataset (see :mod:`mlship.data.lineage`)."""
        return self.origin.to_json()

    @property
    def unit(self) -> Unit:
        """What a row's place is counted in: ``line`` of the file, ``row`` of the result, or the
        ``event`` of a stream."""
        if self.events is not None:
            return "event"
        return "line" if self.line_offset is not None or self.lines is not None else "row"

    def places(self) -> pl.Series:
        """Each row's line (or row number, from 1, or event id)."""
        if self.events is not None:
            return self.events
        if self.lines is not None:
            return self.lines
        start = self.line_offset if self.line_offset is not None else self.first_row
        return pl.int_range(start, start + self.frame.height, eager=True, dtype=pl.Int64)


@dataclass(frozen=True)
class Batch:
    """Consecutive rows of a source, each with its place (line, row number or event id, see
    ``unit``)."""

    frame: pl.DataFrame
    places: pl.Series
    unit: Unit


class SourceReader(ABC):
    """Reads one source of one format; see the module docstring for the protocol."""

    format: ClassVar[str]
    """The spec's name for the format (``format:``, and in the lineage)."""

    def __init__(
        self,
        source: Source,
        base_dir: Path,
        *,
        block_bytes: int = BLOCK_BYTES,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        if block_bytes < 1 or batch_rows < 1:
            raise ValueError(
                f"block_bytes and batch_rows must be positive, got {block_bytes}, {batch_rows}"
            )
        self.source = source
        self.base_dir = base_dir
        self.block_bytes = block_bytes
        self.batch_rows = batch_rows

    @property
    def label(self) -> str:
        """The source's name in the spec (or the file's stem)."""
        return self.source.label

    @abstractmethod
    def describe(self) -> str:
        """``label (location)``, password masked: how every message names this source."""

    @abstractmethod
    def read(self, on_progress: ProgressHook | None = None) -> SourceData:
        """The whole source."""

    def batches(self, on_progress: ProgressHook | None = None) -> Iterator[Batch]:
        """The source's rows in order, ``batch_rows`` at a time (none for an empty source).

        Files are parsed whole (a CSV's quoting and a JSON array's nesting are only known at the
        end), so their batches are slices of :meth:`read`; a query's are fetched one by one.
        """
        data = self.read(on_progress)
        places = data.places()
        for start in range(0, data.frame.height, self.batch_rows):
            yield Batch(
                data.frame.slice(start, self.batch_rows),
                places.slice(start, self.batch_rows),
                data.unit,
            )
