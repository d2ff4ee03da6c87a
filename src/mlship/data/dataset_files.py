"""Datasets as Parquet written batch by batch, hashed and read back without loading them whole.

An out-of-core ingest never holds its table: each validated batch is appended to a Parquet file
as its own row groups (at most ``ROW_GROUP_ROWS`` rows each, so a reader can stream it a group at
a time), the file is synced and renamed into place only when complete, and then stored as the
dataset's artifact like any other. Its content hash is :func:`mlship.data.versioning.frame_hash`
of the same rows, computed column by column and row group by row group
(:func:`file_frame_hash`), so a dataset has one address whichever path made it. A stored dataset
is read back lazily (:func:`scan_dataset`): column selections and filters are pushed down into
the Parquet reader.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import polars as pl

from mlship.store.staged_file import StagedFile

if TYPE_CHECKING:
    import pyarrow.parquet as pq

    from mlship.store.artifacts import ArtifactStore
    from mlship.store.entities import Dataset

ROW_GROUP_ROWS = 131_072
"""The largest row group written: small enough to stream, large enough to compress well."""


class PartWriter(StagedFile):
    """Appends frames of one schema to a Parquet file that appears at ``path`` only once
    :meth:`close` succeeds (temp file, fsync, rename); on an error it is removed.

    Frames after the first are cast to the first one's schema (a batch whose column is all
    null has no type of its own); a frame whose columns differ is refused.
    """

    def __init__(self, path: Path, group_rows: int | None = None) -> None:
        """``group_rows``: rows per row group (``ROW_GROUP_ROWS`` by default); small frames are
        held until they make one."""
        super().__init__(path, "part")
        self.rows = 0
        self.group_rows = group_rows or ROW_GROUP_ROWS
        self._writer: pq.ParquetWriter | None = None
        self._schema: pl.Schema | None = None
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0

    def write(self, frame: pl.DataFrame) -> None:
        import pyarrow.parquet as pq

        if self._schema is None:
            self._schema = frame.schema
            self._writer = pq.ParquetWriter(self.temp, frame.to_arrow().schema)
        elif frame.columns != list(self._schema):
            raise ValueError(f"columns {frame.columns} differ from {list(self._schema)}")
        else:
            frame = frame.cast(self._schema)
        if frame.height:
            self._pending.append(frame)
            self._pending_rows += frame.height
        self.rows += frame.height
        if self._pending_rows >= self.group_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        assert self._writer is not None
        table = pl.concat(self._pending).to_arrow()
        self._pending, self._pending_rows = [], 0
        self._writer.write_table(table, row_group_size=self.group_rows)

    def _finish(self) -> None:
        """An empty file when nothing was written."""
        if self._writer is None:
            pl.DataFrame().write_parquet(self.temp)
        else:
            self._flush()
            self._writer.close()

    def _discard(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _as_pandas(column: pl.Series, nulls_anywhere: bool) -> pd.Series:
    """A slice of a column as pandas gives the whole column: an integer column with a null
    anywhere is float, a boolean one object."""
    values = column.to_pandas()
    if nulls_anywhere and not values.hasnans:
        if column.dtype.is_integer():
            return values.astype("float64")
        if column.dtype == pl.Boolean:
            return values.astype(object)
    return values


def file_frame_hash(path: Path) -> str:
    """:func:`~mlship.data.versioning.frame_hash` of the Parquet file's rows, read one column of
    one row group at a time (its memory is one column chunk, whatever the file's size)."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    nulls = pl.scan_parquet(path).select(pl.all().null_count()).collect().row(0)
    digest = hashlib.sha256()
    for name, null_count in zip(names, nulls, strict=True):
        if parquet.num_row_groups == 0:  # no rows: the dtype pandas gives an empty column
            empty = pl.from_arrow(parquet.schema_arrow.empty_table())
            assert isinstance(empty, pl.DataFrame)
            digest.update(f"{name}\0{empty.to_pandas()[name].dtype}\0".encode())
        for group in range(parquet.num_row_groups):
            series = pl.from_arrow(parquet.read_row_group(group, columns=[name]))
            assert isinstance(series, pl.DataFrame)
            values = _as_pandas(series.to_series(), null_count > 0)
            if group == 0:
                digest.update(f"{name}\0{values.dtype}\0".encode())
            digest.update(pd.util.hash_pandas_object(values, index=False).to_numpy().tobytes())
    digest.update(str(parquet.metadata.num_rows).encode())
    return digest.hexdigest()


def scan_dataset(dataset: Dataset, store: ArtifactStore) -> pl.LazyFrame:
    """A stored dataset as a LazyFrame: what a query selects and filters is all that is read.

    A plaintext artifact in a local store is scanned in place, after its bytes are checked
    against its address a block at a time; any other store hands its bytes over whole.
    """
    from mlship.store.artifacts import LocalArtifactStore

    sha256 = dataset.artifact_sha256
    if isinstance(store, LocalArtifactStore) and store.cipher is None:
        path = store.located(sha256)
        if path.is_file() and _sha256_of(path) == sha256:
            return pl.scan_parquet(path)
    return pl.read_parquet(io.BytesIO(store.get_bytes(sha256))).lazy()


def sample_dataset(
    dataset: Dataset, store: ArtifactStore, columns: Sequence[str], max_rows: int
) -> pd.DataFrame:
    """Of ``columns`` (those the dataset has, in that order), every k-th row, k chosen so that
    at most ``max_rows`` rows come back; every row when there are no more.

    Drift and monitoring references need a column's distribution, not every row of a table that
    may not fit in memory. The rows are read through :func:`scan_dataset` with the streaming
    engine, so only the selected columns are read and the table is never held whole (in a local
    plaintext store). An even spacing, rather than a random draw, keeps a table ordered in time
    represented from its first rows to its last.
    """
    lazy = scan_dataset(dataset, store)
    present = set(lazy.collect_schema().names())
    lazy = lazy.select([name for name in columns if name in present])
    step = -(-dataset.n_rows // max_rows) if max_rows > 0 else 1
    if step > 1:
        lazy = lazy.gather_every(step)
    return lazy.collect(engine="streaming").to_pandas()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(2**20):
            digest.update(block)
    return digest.hexdigest()
