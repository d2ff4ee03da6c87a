"""SQL query sources: the rows a query returns, with the types the database gives them.

The query runs through SQLAlchemy on the source's ``url`` (``${VAR}`` filled in from the
environment; a relative SQLite file is beside the spec) and its rows are fetched ``batch_rows`` at
a time through a server-side cursor where the driver has one. Reading never writes: a SQLite file
that is not there is refused rather than created, and the transaction is rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import CursorResult

from mlship.data.lineage import QueryLineage
from mlship.data.readers.base import Batch, SourceData, SourceReader
from mlship.data.readers.database import check_sqlite_file, database_url, db_message
from mlship.data.readers.location import ProgressHook
from mlship.data.readers.masking import mask, mask_text, secrets_of
from mlship.data.readers.messages import first_line
from mlship.data.readers.values import column, objects_as_text, stack
from mlship.errors import DataError


@dataclass(frozen=True)
class _Result:
    """A running query: its column names, and its rows as frames of at most ``batch_rows``."""

    columns: list[str]
    frames: Iterator[pl.DataFrame]


class QueryReader(SourceReader):
    """A ``query`` run on the database at ``url``."""

    format = "sql"

    def describe(self) -> str:
        try:
            shown = database_url(self._raw_url, self.label, self.base_dir).render_as_string(
                hide_password=True
            )
        except DataError:  # a URL that cannot be completed is named as written
            shown = mask_text(self._raw_url)
        return f"{self.label} ({shown})"

    def read(self, on_progress: ProgressHook | None = None) -> SourceData:
        with self._run(on_progress) as result:
            frame = stack(list(result.frames), result.columns)
        lineage = QueryLineage(
            name=self.label, url=self._shown_url(), query=self._query, rows=frame.height
        )
        return SourceData(self.label, frame, lineage, None)

    def batches(self, on_progress: ProgressHook | None = None) -> Iterator[Batch]:
        """The rows as the database hands them out; a column's type may differ between
        batches (all null in one, or mixed in one only): :meth:`read` reconciles them."""
        with self._run(on_progress) as result:
            done = 0
            for frame in result.frames:
                places = pl.int_range(done + 1, done + 1 + frame.height, eager=True)
                yield Batch(frame, places.cast(pl.Int64), "row")
                done += frame.height

    @property
    def _raw_url(self) -> str:
        return self.source.url or ""

    @property
    def _query(self) -> str:
        return self.source.query or ""

    def _shown_url(self) -> str:
        url = database_url(self._raw_url, self.label, self.base_dir)
        return url.render_as_string(hide_password=True)

    @contextmanager
    def _run(self, hook: ProgressHook | None) -> Iterator[_Result]:
        """Connect and start the query in a transaction that is rolled back on leaving."""
        url = database_url(self._raw_url, self.label, self.base_dir)
        prefix = f"{self.label} ({url.render_as_string(hide_password=True)})"
        secrets = secrets_of(url)
        check_sqlite_file(url, prefix)
        try:
            engine = sa.create_engine(url, poolclass=sa.NullPool)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise DataError(
                f"{prefix}: no database driver for {url.drivername!r}: "
                f"{mask(first_line(exc), secrets)}"
            ) from None
        try:
            try:
                connection = engine.connect()
            except sa.exc.SQLAlchemyError as exc:
                raise DataError(
                    f"{prefix}: cannot connect to the database: {db_message(exc, secrets)}"
                ) from None
            with connection:
                try:
                    result = connection.execution_options(
                        yield_per=self.batch_rows, no_parameters=True
                    ).exec_driver_sql(self._query)
                except sa.exc.SQLAlchemyError as exc:
                    raise _failed(prefix, exc, secrets) from None
                if not result.returns_rows:
                    raise DataError(f"{prefix}: the query returns no rows; expected a SELECT")
                columns = list(result.keys())
                _check_columns(columns, prefix)
                yield _Result(columns, self._frames(result, columns, prefix, secrets, hook))
        finally:
            engine.dispose()

    def _frames(
        self,
        result: CursorResult[Any],
        columns: list[str],
        prefix: str,
        secrets: list[str],
        hook: ProgressHook | None,
    ) -> Iterator[pl.DataFrame]:
        done = 0
        try:
            for rows in result.partitions(self.batch_rows):
                frame = _batch_frame(rows, columns)
                done += len(rows)
                if hook:
                    hook(done, None)
                yield frame
        except sa.exc.SQLAlchemyError as exc:
            raise _failed(prefix, exc, secrets) from None


def _failed(prefix: str, exc: sa.exc.SQLAlchemyError, secrets: list[str]) -> DataError:
    return DataError(f"{prefix}: the query failed: {db_message(exc, secrets)}")


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
        [column(name, list(values_of)) for name, values_of in zip(columns, values, strict=True)]
    )
    return objects_as_text(frame)
