"""Batch scoring on Ray Data: ``mlship predict --executor ray``.

The answers must be the local ones, row for row, and a bad row must be named as the local command
names it (its file and row, or its line in a CSV). That shapes the plan:

* **The model travels as verified bytes.** The driver fetches the version's artifact, checks its
  signature and checksum (:meth:`Workspace.model_bytes`) and puts the bytes in the object store
  once. Each scoring actor checks the checksum again before it unpickles them, once per actor:
  nothing in a worker unpickles bytes that were not verified.
* **Parquet is read by the actors, in pieces whose rows are known.** A piece is a slice of one
  file (a row group, split further when it is larger than ``chunk_rows``); the driver only reads
  the files' footers to cut them. Ray Data's own ``read_parquet`` was not used: its blocks say
  which file they came from but not at which row, so a bad row could not be named and the
  output order could not be restored. The actor reads its slice with Polars, as the local command
  reads the file, so the values it types are the same.
* **Text formats are read once, on the driver**, by ingest's readers (encodings, delimiters,
  quoted values spanning lines and their line numbers are theirs), and handed to Ray Data in
  chunks with each row's number and line. Ray's CSV reader infers types, which would turn
  ``007`` into ``7`` before the signature sees it.
* **Order is restored by sorting** on (file, row), which every result carries; only the answers
  (id columns, prediction, probabilities) come back to the driver, which writes them by temp file
  and rename like the local command.

The prediction log gets what the local command logs (each scored chunk's typed inputs and its
answers), funnelled through the driver; the usage ledger gets one ``batch`` record with the
driver's measurement plus the CPU time the actors spent scoring.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlship.errors import DataError, MlshipError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from mlship.monitor.predlog import PredictionLog
    from mlship.prices import Usage
    from mlship.store.entities import ModelVersion
    from mlship.workspace import Workspace

PART = "__mlship_part"
"""The index of the file a row came from, in the job's file list."""
ROW = "__mlship_row"
"""The row's number in its file, from 1."""
LINE = "__mlship_line"
"""The row's line in its file (text formats; -1 for Parquet, which has no lines)."""
CPU = "__mlship_cpu"
"""The CPU seconds an actor spent on a batch (on its first row, 0 on the others)."""
MS = "__mlship_ms"
"""The milliseconds an actor spent on a batch, shared out over its rows."""
LOGGED = "__mlship_logged"
"""The row's typed inputs as the prediction log stores them (JSON), when logging."""
_CARRIED = (PART, ROW, LINE)
MESSAGE = "mlship_message"
"""Where an error raised in an actor keeps its message as written (see :meth:`Scorer.__call__`)."""
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class Piece:
    """Rows ``start`` to ``start + rows`` (from 0) of file number ``part``."""

    part: int
    start: int
    rows: int


@dataclass(frozen=True)
class ShippedModel:
    """What an actor needs to rebuild a version from its verified bytes."""

    name: str
    version: int
    sha256: str
    signature: dict[str, Any]
    data: Any
    """The ObjectRef of the artifact's bytes, nested so that the actor fetches it itself."""


@dataclass(frozen=True)
class RayScored:
    """What a job scored, for the command's summary."""

    rows: int
    ref: str
    seconds: float
    actors: int
    log: PredictionLog | None
    batch_id: str
    unrecorded: str | None


def parquet_files(path: Path) -> list[Path]:
    """The Parquet files of a dataset directory (searched recursively, in name order), or the
    file itself."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory")
    files = sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES
    )
    if not files:
        raise DataError(f"{path}: the directory holds no .parquet files; there is nothing to score")
    return files


def cut_pieces(files: Sequence[Path], chunk_rows: int) -> list[Piece]:
    """Slices of ``files`` along their row groups, none longer than ``chunk_rows``; only the
    footers are read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pieces: list[Piece] = []
    for part, file in enumerate(files):
        try:
            metadata = pq.ParquetFile(file).metadata
        except (pa.ArrowException, OSError) as exc:
            raise DataError(
                f"{file}: is not a valid Parquet file (damaged, truncated or another format): "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        start = 0
        for group in range(metadata.num_row_groups):
            group_rows = metadata.row_group(group).num_rows
            for offset in range(0, group_rows, chunk_rows):
                rows = min(chunk_rows, group_rows - offset)
                pieces.append(Piece(part, start + offset, rows))
            start += group_rows
    if not pieces:
        raise DataError(f"{files[0]}: no data rows; there is nothing to score")
    return pieces


def read_piece(file: Path, piece: Piece) -> pd.DataFrame:
    """A piece's rows as the local command reads the whole file (Polars, then pandas), with their
    file and row numbers."""
    import polars as pl

    try:
        frame = pl.scan_parquet(file).slice(piece.start, piece.rows).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"{file}: is not a valid Parquet file (damaged, truncated or another format): {first}"
        ) from None
    raw = frame.to_pandas()
    raw[PART] = piece.part
    raw[ROW] = range(piece.start + 1, piece.start + 1 + len(raw))
    raw[LINE] = -1
    return raw


class Scorer:
    """A Ray Data actor: rebuilds the model once from verified bytes, then types and scores the
    batches it is given (pieces of Parquet files to read, or rows the driver read)."""

    def __init__(self, shipped: ShippedModel, files: list[str], logging: bool) -> None:
        import ray
        from threadpoolctl import threadpool_limits

        from mlship.train.model_io import LoadedModel, unpickle_verified
        from mlship.train.signature import Signature

        threadpool_limits(limits=1)  # one CPU reserved per actor: no BLAS pool per core
        what = f"model {shipped.name}:{shipped.version}"
        data = ray.get(shipped.data)
        self.model = LoadedModel(
            name=shipped.name,
            version=shipped.version,
            pipeline=unpickle_verified(data, shipped.sha256, what, "the registry's"),
            signature=Signature.from_dict(shipped.signature),
        )
        self.files = files
        self.logging = logging

    def __call__(self, batch: pa.Table) -> pd.DataFrame:
        try:
            return self._answer(batch)
        except MlshipError as exc:
            # Ray Data appends its retry advice to the message on the way to the driver; the
            # message as written travels beside it, for the command to show.
            exc.__dict__[MESSAGE] = exc.args
            raise

    def _answer(self, batch: pa.Table) -> pd.DataFrame:
        import pandas as pd
        import polars as pl

        cpu, began = time.process_time(), time.perf_counter()
        if PART not in batch.column_names:  # pieces of Parquet files, to read here
            columns = (batch.column(name).to_pylist() for name in ("part", "start", "rows"))
            pieces = [Piece(int(p), int(s), int(r)) for p, s, r in zip(*columns, strict=True)]
            frames = [read_piece(Path(self.files[p.part]), p) for p in pieces]
            raw = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        else:  # rows the driver read, converted as the local command converts them
            raw = pl.DataFrame(batch).to_pandas()
        answers = [self._score(part) for part in _by_file(raw)]
        result = pd.concat(answers, ignore_index=True) if len(answers) > 1 else answers[0]
        result[CPU] = 0.0
        result.loc[0, CPU] = time.process_time() - cpu
        result[MS] = (time.perf_counter() - began) * 1000 / len(result)
        return result

    def _score(self, raw: pd.DataFrame) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        from mlship.data.schema import coerce_frame

        raw = raw.reset_index(drop=True)
        model = self.model
        lines = raw[LINE].tolist()
        frame = coerce_frame(
            raw.drop(columns=list(_CARRIED)),
            model.signature.inputs,
            self.files[int(raw[PART].iloc[0])],
            lines=lines if lines[0] >= 0 else None,
            rows=raw[ROW].tolist(),
        )
        labels, proba = model.predict(frame)
        result = pd.DataFrame(
            {name: raw[name].to_numpy() for name in model.signature.id_columns if name in raw}
        )
        result["prediction"] = labels
        if proba is not None and model.signature.classes:
            stacked = np.asarray(proba)
            for index, label in enumerate(model.signature.classes):
                result[f"proba_{label}"] = stacked[:, index]
        if self.logging:
            result[LOGGED] = _logged_inputs(frame)
        for name in _CARRIED:
            result[name] = raw[name].to_numpy()
        return result


def _by_file(batch: pd.DataFrame) -> Iterator[pd.DataFrame]:
    """The batch's rows of each file, in turn (a batch may join pieces of several files)."""
    parts = batch[PART].to_numpy()
    if (parts == parts[0]).all():
        yield batch
        return
    for part in dict.fromkeys(parts.tolist()):
        yield batch[batch[PART] == part]


def _logged_inputs(frame: pd.DataFrame) -> list[str]:
    """Each row's typed inputs, serialised as the prediction log serialises them."""
    import orjson

    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return [orjson.dumps({str(k): v for k, v in r.items()}, default=str).decode() for r in records]


def _text_chunks(path: Path, fmt: str, delimiter: str, encoding: str, chunk_rows: int) -> list[Any]:
    """A CSV or JSON file read by ingest's readers, in Arrow chunks carrying each row's number and
    line, for ``ray.data.from_arrow``."""
    import polars as pl

    from mlship.data.sources import read_rows

    data = read_rows(path, fmt, delimiter, encoding, "--encoding")
    rows = data.frame.height
    if data.unit == "line":
        lines = data.places().cast(pl.Int64)
    elif fmt == "csv":
        lines = pl.int_range(2, rows + 2, eager=True, dtype=pl.Int64)  # a row a line
    else:
        lines = pl.repeat(-1, rows, eager=True, dtype=pl.Int64)
    frame = data.frame.with_columns(
        pl.lit(0, dtype=pl.Int64).alias(PART),
        pl.int_range(1, rows + 1, dtype=pl.Int64).alias(ROW),
        lines.alias(LINE),
    )
    return [frame.slice(start, chunk_rows).to_arrow() for start in range(0, rows, chunk_rows)]


def _unwrap(exc: BaseException) -> MlshipError | None:
    """The mlship error a failed Ray job was raised for (Ray wraps a worker's exception in its
    own), if that is what it was."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        cause = getattr(current, "cause", None)  # a RayTaskError's original exception
        if isinstance(cause, BaseException):
            current = cause
        elif isinstance(current, MlshipError):
            current.args = current.__dict__.pop(MESSAGE, current.args)
            return current
        else:
            current = current.__cause__
    return None


def score_on_ray(
    workspace: Workspace,
    version: ModelVersion,
    input_path: Path,
    in_format: str,
    *,
    address: str | None,
    delimiter: str,
    encoding: str,
    chunk_rows: int,
    log: PredictionLog | None,
    batch_id: str,
) -> tuple[pd.DataFrame, float, int]:
    """Score ``input_path`` (a Parquet file or a directory of them, or a CSV/JSON file) with
    ``version`` on Ray; returns the answers in the file's order, the CPU seconds the actors spent
    and how many actors scored."""
    import pyarrow as pa
    import ray
    import ray.data

    from mlship.store.entities import model_of
    from mlship.train.executors import RayExecutor

    parquet = in_format == "parquet" or input_path.is_dir()
    files = parquet_files(input_path) if parquet else [input_path]
    pieces = cut_pieces(files, chunk_rows) if parquet else []
    chunks = [] if parquet else _text_chunks(input_path, in_format, delimiter, encoding, chunk_rows)
    data = workspace.model_bytes(version)
    with RayExecutor(address) as executor:
        shipped = ShippedModel(
            name=model_of(version).name,
            version=version.version,
            sha256=version.artifact_sha256,
            signature=version.signature,
            data=ray.put(data),
        )
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        # A worker's DataError reaches this driver as itself, not as "UDF failed".
        raise_original = context.raise_original_map_exception
        context.raise_original_map_exception = True
        if parquet:
            items = [{"part": p.part, "start": p.start, "rows": p.rows} for p in pieces]
            dataset = ray.data.from_items(items, override_num_blocks=len(items))
            batch_size = 1
        else:
            dataset = ray.data.from_arrow(chunks)
            batch_size = chunk_rows
        actors = max(1, min(executor.workers, len(pieces) or len(chunks)))
        scored = dataset.map_batches(
            Scorer,
            fn_constructor_args=(shipped, [str(f) for f in files], log is not None),
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
        )
        try:
            answers = scored.iter_batches(batch_format="pyarrow", batch_size=None)
            result = pa.concat_tables(list(answers), promote_options="default").to_pandas()
        except Exception as exc:
            error = _unwrap(exc)
            if error is not None:
                raise error from None
            raise
        finally:
            context.raise_original_map_exception = raise_original
    result = result.sort_values([PART, ROW], kind="stable").reset_index(drop=True)
    cpu = float(result[CPU].sum())
    if log is not None:
        _log_answers(log, shipped, result, batch_id, chunk_rows)
    helpers = [c for c in (*_CARRIED, CPU, MS, LOGGED) if c in result]
    return result.drop(columns=helpers), cpu, actors


def _log_answers(
    log: PredictionLog, shipped: ShippedModel, result: pd.DataFrame, batch_id: str, chunk_rows: int
) -> None:
    """Append the job's answers to the prediction log, ``chunk_rows`` an entry, as the local
    command does: inputs typed by the signature, and the time the actors spent on those rows."""
    import orjson

    from mlship.monitor.predlog import Entry

    classes = [str(c) for c in shipped.signature.get("classes") or []]
    for start in range(0, len(result), chunk_rows):
        chunk = result.iloc[start : start + chunk_rows]
        labels = chunk["prediction"].tolist()
        outputs: list[dict[str, Any]] = [{"prediction": label} for label in labels]
        if classes:
            columns = [chunk[f"proba_{c}"].astype(float).tolist() for c in classes]
            for index, output in enumerate(outputs):
                output["probabilities"] = {
                    c: v[index] for c, v in zip(classes, columns, strict=True)
                }
        inputs = [orjson.loads(text) for text in chunk[LOGGED]]
        latency = float(chunk[MS].sum())
        entry = Entry(batch_id, shipped.name, shipped.version, "batch", latency, inputs, outputs)
        log.append(entry)


def with_actor_cpu(usage: Usage, cpu_seconds: float) -> Usage:
    """The driver's measured usage plus the CPU time the actors reported."""
    return replace(usage, cpu_seconds=usage.cpu_seconds + cpu_seconds)


def predict_on_ray(
    ref: str,
    input_path: Path,
    in_format: str,
    output: Path,
    out_format: str,
    *,
    address: str | None,
    delimiter: str,
    encoding: str,
    chunk_rows: int,
    prediction_log: bool,
) -> RayScored:
    """``mlship predict --executor ray``: score, write the answers, log them and record the
    job's usage, as the local command does."""
    from mlship.registry.refs import resolve_version
    from mlship.serve.batch_job import batch_log, record_batch, write_answers
    from mlship.store.entities import model_of
    from mlship.train.cost import measure
    from mlship.workspace import Workspace

    workspace = Workspace.open()
    try:
        began = datetime.now(UTC)
        with measure() as used:
            version = resolve_version(workspace, ref)
            started = time.perf_counter()
            with batch_log(workspace, prediction_log) as (log, batch_id):
                result, actor_cpu, actors = score_on_ray(
                    workspace, version, input_path, in_format, address=address,
                    delimiter=delimiter, encoding=encoding, chunk_rows=chunk_rows, log=log,
                    batch_id=batch_id,
                )  # fmt: skip
            write_answers(result, output, out_format)
        usage = with_actor_cpu(used.usage, actor_cpu)
        unrecorded = record_batch(workspace, usage, began, version, len(result))
    finally:
        workspace.close()
    seconds = time.perf_counter() - started
    ref_text = f"{model_of(version).name}:{version.version}"
    return RayScored(len(result), ref_text, seconds, actors, log, batch_id, unrecorded)
