"""Scoring a file larger than memory: read a batch, score it, append its answers, repeat.

``mlship predict`` switches to this when its input is a local CSV or Parquet file larger than
``stream_above``. The input is read by ingest's batch reader (:mod:`mlship.data.readers.batched`:
same parsing, same line numbers), each batch is checked against the model's signature and scored
``chunk_rows`` at a time, its answers logged and appended to a temporary output file that is
synced and renamed over ``output`` only when every row is scored. Peak memory is one batch and
its answers, whatever the input's size.

A row that does not match the signature stops the job with its row (and line) number, as in
memory, but only once its batch is reached: the batches before it have been scored and logged,
and the output file is not written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlship.serve.batch_job import score_prepared
from mlship.store.staged_file import StagedFile

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow.parquet as pq

    from mlship.monitor.predlog import PredictionLog
    from mlship.train.model_io import LoadedModel


def streams(path: Path, fmt: str, threshold: int) -> bool:
    """Whether ``mlship predict`` reads ``path`` in batches: a CSV or Parquet file larger than
    ``threshold`` bytes."""
    return fmt in ("csv", "parquet") and path.is_file() and path.stat().st_size > threshold


class AnswerWriter(StagedFile):
    """Appends answer frames to ``output`` (CSV with one header, or Parquet row groups) through a
    temporary file beside it, renamed into place by :meth:`close`; removed on an error."""

    def __init__(self, output: Path, out_format: str) -> None:
        super().__init__(output)
        self.format = out_format
        self._handle: Any = self.temp.open("wb") if out_format == "csv" else None
        self._parquet: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, answers: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.format == "csv":
            answers.to_csv(self._handle, index=False, header=self.rows == 0)
        else:
            table = pa.Table.from_pandas(answers, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.temp, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        self.rows += len(answers)

    def _finish(self) -> None:
        self._discard()  # every answer is already written: closing the handles finishes the file

    def _discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
        if self._parquet is not None:
            self._parquet.close()


def score_file(
    model: LoadedModel,
    path: Path,
    fmt: str,
    options: tuple[str, str],
    output: Path,
    out_format: str,
    *,
    chunk_rows: int,
    log: PredictionLog | None,
    batch_id: str,
    on_rows: Any = None,
) -> int:
    """Score ``path`` (``options``: its delimiter and encoding) batch by batch into ``output``;
    returns the number of rows scored. ``on_rows(n)`` is told as rows are scored."""
    from mlship.data.readers import file_reader_for
    from mlship.data.readers.batched import BatchTally, file_batches
    from mlship.errors import DataError
    from mlship.spec.data import Source

    delimiter, encoding = options
    source = Source(path=str(path), format=fmt, delimiter=delimiter, encoding=encoding)
    reader = file_reader_for(source, Path.cwd(), shown_as=str(path), encoding_option="--encoding")
    tally = BatchTally()
    with AnswerWriter(output, out_format) as writer:
        for data in file_batches(reader, "", tally):
            if data.frame.is_empty():
                continue
            places = data.places()
            first = tally.rows - data.frame.height + 1
            lines = places.to_list() if data.unit == "line" else None
            raw = data.frame.to_pandas()
            writer.write(
                score_batch(model, raw, str(path), lines, first, chunk_rows, log, batch_id)
            )
            if on_rows is not None:
                on_rows(writer.rows)
        if writer.rows == 0:
            what = "a header but no data rows" if fmt == "csv" else "no data rows"
            raise DataError(f"{path}: the file has {what}; there is nothing to score")
    return writer.rows


def score_batch(
    model: LoadedModel,
    raw: pd.DataFrame,
    origin: str,
    lines: list[int] | None,
    first_row: int,
    chunk_rows: int,
    log: PredictionLog | None,
    batch_id: str,
) -> pd.DataFrame:
    """One batch's answers: its id columns, the prediction and class probabilities, as
    ``mlship predict`` gives them for a file read whole (and logged the same way): both check
    the rows with :meth:`LoadedModel.prepare` and score them with
    :func:`mlship.serve.batch_job.score_prepared`."""
    frame = model.prepare(raw, origin, lines=lines, rows=first_row)
    return score_prepared(model, raw, frame, chunk_rows, log, batch_id)
