"""Parquet files: the types the file declares; rows are numbered, a Parquet file has no lines."""

from __future__ import annotations

import io

import polars as pl

from mlship.data.readers.files import FileReader, Parsed
from mlship.data.readers.messages import first_line
from mlship.errors import DataError


class ParquetReader(FileReader):
    """A Parquet file; ``encoding`` and ``delimiter`` do not apply."""

    format = "parquet"

    def parse(self, data: bytes) -> Parsed:
        try:
            return Parsed(pl.read_parquet(io.BytesIO(data)))
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise DataError(
                f"{self.describe()}: is not a valid Parquet file (damaged, truncated or another "
                f"format): {first_line(exc)}"
            ) from None
