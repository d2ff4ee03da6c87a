"""Live traffic of a model, read back from the prediction logs as a typed frame.

The servers and ``mlship predict`` log one row per scored record (see
:mod:`mlship.monitor.predlog`), with the record and the answer as JSON. Monitoring wants them as
columns: this module reads the parts of every prediction log in the workspace's log store (every
deployment, every replica, batch scoring; ``store/logstore.py``) with Polars (only the rows of
the wanted model and window leave the Parquet reader), decodes the
records with the types of the model's signature, and numbers each record within its request, so
that a label sent later for ``(request id, row)`` finds its prediction.

Which rows count as traffic: ``route`` (answers a server gave), ``stream`` (events ``mlship
stream run`` scored) and ``batch`` (``mlship predict``). ``shadow`` rows are the same inputs
scored again by another version, so they are kept for the per-version figures but left out of
the inputs whose drift is measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import polars as pl

from mlship.monitor import predlog
from mlship.monitor.window import Window
from mlship.store.logread import load_parts, scan_sources
from mlship.store.logstore import LocalLogStore, LogStore, prediction_logs
from mlship.store.parts import PART_GLOB, PLAIN, Sealing, part_sources
from mlship.train.signature import Signature

ANSWERED = ("route", "batch", predlog.STREAM_ROLE)
"""Roles of rows that are answers someone received."""

SCORED = (*ANSWERED, "shadow")

PREDICTION = "prediction"
"""Name of the column holding the model's answer in traffic and reference frames."""

_LOG_COLUMNS = [
    "request_id", "at", "deployment", "model", "version", "role", "latency_ms", "input", "output",
]  # fmt: skip

_DTYPES: dict[str, pl.DataType] = {
    "integer": pl.Int64(),
    "float": pl.Float64(),
    "string": pl.String(),
    "category": pl.String(),
    "boolean": pl.Boolean(),
    "datetime": pl.String(),
}


def log_parts(home: Path) -> list[Path]:
    """Every prediction-log part under ``home`` (all deployments and batch scoring)."""
    return sorted((home / "predictions").glob(f"*/{PART_GLOB}"))


def log_sources(
    logs: Path | LogStore, sealing: Sealing = PLAIN, since: datetime | None = None
) -> list[Path] | list[IO[bytes]]:
    """What a scan of every prediction log in ``logs`` (a store, or a home directory) opens:
    the parts written at or after ``since``, each row once (see ``store/logread.py``)."""
    store = LocalLogStore(logs) if isinstance(logs, Path) else logs
    return scan_sources(load_parts(store, prediction_logs(store), sealing, since))


def input_dtype(signature: Signature) -> pl.Struct:
    """The struct a logged input record decodes to."""
    return pl.Struct({column.name: _DTYPES[column.type] for column in signature.inputs})


def prediction_dtype(signature: Signature) -> pl.DataType:
    """Regression answers are numbers; class labels keep the type of the model's classes."""
    if signature.task == "regression":
        return pl.Float64()
    classes = signature.classes or []
    if classes and all(isinstance(c, bool) for c in classes):
        return pl.Boolean()
    if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return pl.Int64()
    if classes and all(isinstance(c, (int, float)) for c in classes):
        return pl.Float64()
    return pl.String()


@dataclass(frozen=True)
class Traffic:
    """Decoded traffic of one model: one row per scored record.

    Columns: ``request_id``, ``row`` (the record's index within its request), ``at``, ``version``,
    ``role``, ``latency_ms``, one column per signature input, ``prediction`` and, for classifiers
    that give them, ``proba:<class>`` columns.
    """

    model: str
    frame: pl.DataFrame
    signature: Signature

    @property
    def answered(self) -> pl.DataFrame:
        """Rows whose answer someone received (no shadows)."""
        return self.frame.filter(pl.col("role").is_in(ANSWERED))

    @property
    def inputs(self) -> pl.DataFrame:
        """The answered records' input columns and prediction, for drift and quality."""
        names = [column.name for column in self.signature.inputs]
        return self.answered.select([*names, PREDICTION])

    def versions(self) -> list[int]:
        return sorted(self.frame.get_column("version").unique().to_list())

    def primary_version(self) -> int | None:
        """The version that answered most rows (the newest on a tie): what rules judge."""
        answered = self.answered
        if answered.is_empty():
            return None
        counts = answered.group_by("version").len().sort(["len", "version"], descending=True)
        return int(counts.get_column("version")[0])


def scan_log(parts: Sequence[Path] | Sequence[IO[bytes]], sealing: Sealing = PLAIN) -> pl.LazyFrame:
    """The parts as one lazy frame in the log's current schema: columns added to the log since
    a part was written read as null there. Encrypted files are decrypted with ``sealing``;
    parts given as bytes are read as they are (``log_sources`` decrypted them)."""
    paths = [part for part in parts if isinstance(part, Path)]
    sources: list[Path] | list[IO[bytes]]
    if len(paths) == len(parts):
        sources = part_sources(paths, sealing)
    else:
        sources = [part for part in parts if not isinstance(part, Path)]
    return pl.scan_parquet(sources, schema=_log_schema(), missing_columns="insert")


def _log_schema() -> pl.Schema:
    """The prediction log's columns as Polars types (from its Arrow schema, the one source)."""
    return pl.from_arrow(predlog.SCHEMA.empty_table()).schema  # type: ignore[union-attr]


def _scan(
    parts: Sequence[Path] | Sequence[IO[bytes]], model: str, sealing: Sealing
) -> pl.LazyFrame:
    return (
        scan_log(parts, sealing)
        .select(_LOG_COLUMNS)
        .filter((pl.col("model") == model) & pl.col("role").is_in(SCORED))
    )


def _windowed(lazy: pl.LazyFrame, window: Window | None, now: datetime) -> pl.DataFrame:
    if window is not None and window.seconds is not None:
        since = now - timedelta(seconds=window.seconds)
        lazy = lazy.filter(pl.col("at") >= since)
    # A request logged twice (retried on another replica) counts once: its last logging; a
    # streamed event delivered twice, its first.
    frame = lazy.filter(predlog.counted_once()).collect()
    # Number each record within its request (and role: a shadow repeats the request's records).
    # Parts are named by time and rows keep their order inside a part, so ``at`` then file order
    # is the order records were logged in.
    frame = frame.with_row_index("_order").sort(["at", "_order"])
    frame = frame.with_columns(
        pl.int_range(pl.len()).over(["request_id", "role"]).cast(pl.Int64).alias("row")
    )
    if window is not None and window.rows is not None:
        answered = frame.filter(pl.col("role").is_in(ANSWERED)).tail(window.rows)
        keys = answered.select("request_id").unique()
        # The newest N answered rows, and the shadow rows of the same requests.
        shadows = frame.filter(pl.col("role") == "shadow").join(keys, on="request_id")
        frame = pl.concat([answered, shadows]).sort(["at", "_order"])
    return frame.drop("_order")


def _decode(frame: pl.DataFrame, signature: Signature) -> pl.DataFrame:
    outputs = pl.Struct(
        {
            PREDICTION: prediction_dtype(signature),
            "probabilities": pl.Struct({str(c): pl.Float64() for c in signature.classes or []}),
        }
    )
    decoded = frame.with_columns(
        pl.col("input").str.json_decode(input_dtype(signature)).alias("_input"),
        pl.col("output").str.json_decode(outputs).alias("_output"),
    )
    columns = [
        pl.col("request_id"),
        pl.col("row"),
        pl.col("at"),
        pl.col("version").cast(pl.Int64),
        pl.col("role"),
        pl.col("latency_ms"),
        *(
            pl.col("_input").struct.field(column.name).alias(column.name)
            for column in signature.inputs
        ),
        pl.col("_output").struct.field(PREDICTION).alias(PREDICTION),
        *(
            pl.col("_output").struct.field("probabilities").struct.field(str(c)).alias(f"proba:{c}")
            for c in signature.classes or []
        ),
    ]
    typed = decoded.select(columns)
    datetimes = [c.name for c in signature.inputs if c.type == "datetime"]
    if datetimes:
        typed = typed.with_columns(
            pl.col(name).str.to_datetime(time_zone="UTC", strict=False) for name in datetimes
        )
    return typed


def read_traffic(
    logs: Path | LogStore,
    model: str,
    signature: Signature,
    *,
    window: Window | None = None,
    now: datetime | None = None,
    parts: Sequence[Path] | None = None,
    sealing: Sealing = PLAIN,
) -> Traffic:
    """The traffic of ``model`` in ``window`` (all of it when None), decoded with ``signature``,
    from every prediction log of ``logs`` (a log store, or a home directory).

    Records are decoded with the signature of the version being monitored: versions of one model
    that take different inputs are compared on the columns of that one (missing ones read as
    null, which the quality checks report).
    """
    at = now or datetime.now(UTC)
    since = None
    if window is not None and window.seconds is not None:
        since = at - timedelta(seconds=window.seconds)
    found = list(parts) if parts is not None else log_sources(logs, sealing, since)
    empty = _empty(signature)
    if not found:
        return Traffic(model, empty, signature)
    frame = _windowed(_scan(found, model, sealing), window, at)
    if frame.is_empty():
        return Traffic(model, empty, signature)
    return Traffic(model, _decode(frame, signature), signature)


def _empty(signature: Signature) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {
        "request_id": pl.String(),
        "row": pl.Int64(),
        "at": pl.Datetime("us", "UTC"),
        "version": pl.Int64(),
        "role": pl.String(),
        "latency_ms": pl.Float64(),
    }
    for column in signature.inputs:
        schema[column.name] = (
            pl.Datetime("us", "UTC") if column.type == "datetime" else _DTYPES[column.type]
        )
    schema[PREDICTION] = prediction_dtype(signature)
    for c in signature.classes or []:
        schema[f"proba:{c}"] = pl.Float64()
    return pl.DataFrame(schema=schema)


def read_request_log(
    logs: Path | LogStore,
    model: str,
    *,
    since: datetime | None = None,
    parts: Sequence[Path] | None = None,
    sealing: Sealing = PLAIN,
) -> pl.DataFrame:
    """The columns operational health reads (no records), for every row of ``model`` logged at
    or after ``since``: answers, shadows and refused or failed requests (role ``error``)."""
    found = list(parts) if parts is not None else log_sources(logs, sealing, since)
    columns = ["request_id", "at", "model", "version", "role", "latency_ms", "status"]
    if not found:
        return pl.DataFrame(schema=_log_schema()).select(columns)
    lazy = scan_log(found, sealing).select(["deployment", *columns])
    lazy = lazy.filter(pl.col("model") == model)
    if since is not None:
        lazy = lazy.filter(pl.col("at") >= since)
    lazy = lazy.filter(predlog.counted_once()).select(columns)
    # Parts written before the status column existed hold answers only.
    return lazy.with_columns(pl.col("status").fill_null(200).cast(pl.Int16)).collect()
