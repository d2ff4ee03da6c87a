"""Batch scoring of a registered model on Spark executors (``mlship predict --executor spark``).

The model file is a pickle, and unpickling runs code, so it is never unpickled unverified: the
caller loads the version as every command does (its signature, then its checksum, checked), and
the very bytes it verified are broadcast. Each executor checks them against the version's
checksum again before unpickling, once per Python worker, and scores its partitions with the
model's own ``prepare`` and ``predict``: the answers are the local command's, row for row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlship.data.spark.read import read_spark_source
from mlship.data.spark.session import spark_message, spark_session
from mlship.errors import DataError, IntegrityError
from mlship.spec.data import Source
from mlship.spec.engine import SparkSettings

if TYPE_CHECKING:
    from mlship.train.model_io import LoadedModel

_INDEX = "_index"
_LOADED: dict[str, LoadedModel] = {}
"""Models unpickled in this Python worker, by checksum: a worker scores many batches."""


@dataclass(frozen=True)
class ModelPayload:
    """What an executor needs to rebuild a verified model: its bytes and what they must be."""

    name: str
    version: int
    sha256: str
    signature: dict[str, Any]
    data: bytes


def payload_of(
    model: LoadedModel, sha256: str, signature: dict[str, Any], data: bytes
) -> ModelPayload:
    """The payload of ``model``, whose ``data`` the caller fetched after verifying the version;
    refused unless the bytes are the ones the version's checksum names."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise IntegrityError(
            f"refusing to ship model {model.ref}: artifact checksum {actual} does not match the "
            f"registry's {sha256}"
        )
    return ModelPayload(model.name, model.version, sha256, signature, data)


def _model(payload: ModelPayload) -> LoadedModel:
    from mlship.train.model_io import LoadedModel, unpickle_verified
    from mlship.train.signature import Signature

    found = _LOADED.get(payload.sha256)
    if found is None:
        what = f"model {payload.name}:{payload.version}"
        pipeline = unpickle_verified(payload.data, payload.sha256, what, "the registry's")
        signature = Signature.from_dict(payload.signature)
        found = LoadedModel(payload.name, payload.version, pipeline, signature)
        _LOADED[payload.sha256] = found
    return found


def _prediction_type(model: LoadedModel) -> str:
    classes = model.signature.classes
    if model.signature.task == "regression" or not classes:
        return "double"
    if all(isinstance(c, bool) for c in classes):
        return "boolean"
    if all(isinstance(c, int) for c in classes):
        return "bigint"
    if all(isinstance(c, float) for c in classes):
        return "double"
    return "string"


def score_with_spark(
    model: LoadedModel,
    payload: ModelPayload,
    input_path: Path,
    fmt: str,
    delimiter: str,
    settings: SparkSettings | None = None,
) -> pd.DataFrame:
    """Predictions for every row of ``input_path``, scored by Spark executors, in file order:
    the id columns, ``prediction``, then ``proba_<class>`` for classifiers."""
    spark = spark_session(settings)
    source = Source(path=str(input_path), format=fmt, delimiter=delimiter)
    found = read_spark_source(spark, source, Path.cwd())
    if found.rows == 0:
        what = "a header but no data rows" if fmt == "csv" else "no data rows"
        raise DataError(f"{input_path}: the file has {what}; there is nothing to score")
    signature = model.signature
    ids = [name for name in signature.id_columns if name in found.frame.columns]
    classes = list(signature.classes or [])
    schema = found.frame.select(_INDEX, *ids).schema
    fields = [f"`{f.name}` {f.dataType.simpleString()}" for f in schema.fields]
    fields.append(f"prediction {_prediction_type(model)}")
    if classes:
        fields.extend(f"`proba_{label}` double" for label in classes)
    first = 2 if fmt == "csv" else 1
    shared = spark.sparkContext.broadcast(payload)
    origin = str(input_path)
    inputs = [c for c in found.frame.columns if c not in ("_source", "_row")]

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        loaded = _model(shared.value)
        for batch in batches:
            index = batch[_INDEX]
            raw = batch.drop(columns=[_INDEX]).reset_index(drop=True)
            lines = (index + first).tolist()
            frame = loaded.prepare(raw, origin, csv_lines=False, lines=lines)
            labels, proba = loaded.predict(frame)
            result = pd.DataFrame({_INDEX: index.to_numpy()})
            for name in ids:
                result[name] = raw[name].to_numpy()
            result["prediction"] = labels
            if proba is not None and classes:
                for position, label in enumerate(classes):
                    result[f"proba_{label}"] = proba[:, position]
            yield result

    scored = found.frame.select(*inputs).mapInPandas(score, ", ".join(fields))
    try:
        result = scored.orderBy(_INDEX).toPandas()
    except Exception as exc:  # an executor's failure, wrapped by Spark
        raise DataError(f"{input_path}: scoring with Spark failed: {spark_message(exc)}") from None
    finally:
        shared.unpersist()
    return result.drop(columns=[_INDEX])
