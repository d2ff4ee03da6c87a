"""Read a source file into a DataFrame without guessing types.

CSV values are read as text and typed later by :mod:`mlship.data.schema`, so an unparsable value is
reported with its row and column instead of silently turning a whole column into strings.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlship.errors import DataError


def read_source(path: Path, fmt: str, delimiter: str = ",") -> pd.DataFrame:
    """Read ``path`` as ``fmt`` (csv or parquet); raise :class:`DataError` naming the file."""
    if not path.is_file():
        raise DataError(f"source file {path} does not exist")
    try:
        if fmt == "csv":
            return pd.read_csv(
                path, dtype=str, sep=delimiter, keep_default_na=False, na_values=[""]
            )
        if fmt == "parquet":
            return pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path} as {fmt}: {exc}") from None
    raise DataError(f"unsupported source format {fmt!r} for {path}")
