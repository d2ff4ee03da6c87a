"""True labels that arrive after the prediction (delayed feedback), kept beside the prediction log.

A label names the prediction it belongs to by the request id the server answered with (and the
record's index within that request, 0 for one-record requests). Labels are kept as Parquet parts
in the ``feedback`` log of the workspace's log store (``<home>/feedback/``, the artifacts' object
storage or the tracking server: ``store/logstore.py``), one part per call, visible whole or not at
all: once ``POST /feedback`` or ``mlship monitor feedback`` says a label is stored, it is stored.
A later label for the same record replaces the earlier one (the one received last wins).

Labels are checked against the model's signature before anything is written: a class label must
be one of the model's classes, a regression label a finite number, and every problem names the
item (``feedback[3].label``) or the file row that holds it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from mlship.errors import DataError, StorageError
from mlship.store.failures import Place, is_storage_failure
from mlship.store.logread import load_parts, scan_sources
from mlship.store.logstore import FEEDBACK, LogStore, LogTarget, part_name
from mlship.store.parts import PLAIN, Sealing, sealed_part
from mlship.train.signature import Signature

SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("row", pa.int64()),
        ("label", pa.string()),
        ("received_at", pa.timestamp("us", tz="UTC")),
        ("source", pa.string()),
    ]
)
"""``label`` holds the label as JSON, so that ``"1"`` and ``1`` stay apart until compared."""


@dataclass(frozen=True)
class Label:
    request_id: str
    row: int
    label: Any


def feedback_directory(home: Path) -> Path:
    return home / FEEDBACK


def feedback_log(store: LogStore) -> LogTarget:
    """The log of labels in ``store``."""
    return LogTarget(store, FEEDBACK)


def check_label(value: Any, signature: Signature, where: str) -> Any:
    """``value`` as the model's task expects it, or a DataError naming ``where``."""
    if value is None:
        raise DataError(f"{where}: a label is required")
    if signature.task == "regression":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise DataError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise DataError(f"{where}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise DataError(f"{where}: expected a finite number, got {value!r}")
        return number
    classes = signature.classes or []
    for known in classes:  # labels from a CSV file are text: "1" is the class 1
        if value == known or str(value) == str(known):
            return known
    shown = ", ".join(repr(c) for c in classes)
    raise DataError(f"{where}: {value!r} is not a class of this model (classes: {shown})")


def check_labels(
    items: Sequence[Label],
    signature: Signature,
    where: Sequence[str] | None = None,
    separator: str = ".",
) -> list[Label]:
    """Every item checked (all problems reported at once, one per line).

    Item ``i`` is named ``where[i]`` (default ``feedback[i]``) and its fields are appended after
    ``separator``: ``feedback[3].label``, or ``labels.csv, row 4, column label`` for a file.
    """
    places = list(where) if where is not None else [f"feedback[{i}]" for i in range(len(items))]
    problems: list[str] = []
    checked: list[Label] = []
    for item, place in zip(items, places, strict=True):
        if not item.request_id:
            problems.append(f"{place}{separator}request_id: a request id is required")
            continue
        if item.row < 0:
            problems.append(f"{place}{separator}row: must be 0 or more, got {item.row}")
            continue
        try:
            value = check_label(item.label, signature, f"{place}{separator}label")
        except DataError as exc:
            problems.append(str(exc))
            continue
        checked.append(Label(item.request_id, item.row, value))
    if problems:
        raise DataError("\n".join(problems))
    return checked


class FeedbackStore:
    """Labels as Parquet parts of ``target`` (a log of a store, or a directory)."""

    def __init__(self, target: Path | LogTarget, sealing: Sealing = PLAIN) -> None:
        self.target = LogTarget.of(target)
        self.sealing = sealing

    def append(self, labels: Sequence[Label], source: str) -> int:
        """Store ``labels`` (already checked) as one part; how many were stored."""
        if not labels:
            return 0
        now = datetime.now(UTC)
        table = pa.Table.from_arrays(
            [
                pa.array([item.request_id for item in labels], pa.string()),
                pa.array([item.row for item in labels], pa.int64()),
                pa.array([orjson.dumps(item.label).decode() for item in labels], pa.string()),
                pa.array([now] * len(labels), pa.timestamp("us", tz="UTC")),
                pa.array([source] * len(labels), pa.string()),
            ],
            schema=SCHEMA,
        )
        name = part_name()
        try:
            self.target.store.put(self.target.log, name, sealed_part(table, self.sealing))
        except OSError as exc:
            directory = self.target.directory
            if not is_storage_failure(exc) or directory is None:
                raise
            place = Place("the labels' folder", directory, "MLSHIP_HOME")
            raise StorageError(place.describe(exc)) from None
        return len(labels)

    @property
    def where(self) -> str:
        """The log's folder, or its place in object storage or on a server."""
        return self.target.where


def read_labels(target: Path | LogTarget, sealing: Sealing = PLAIN) -> Any:
    """Every stored label as a Polars frame (``request_id``, ``row``, ``label`` as JSON text,
    ``received_at``), the newest label of each record only."""
    import polars as pl

    columns = ["request_id", "row", "label", "received_at"]
    log = LogTarget.of(target)
    loaded = load_parts(log.store, [log.log], sealing)
    if not loaded:
        return pl.from_arrow(SCHEMA.empty_table()).select(columns)  # type: ignore[union-attr]
    # Part names start with the time they were written, so the scan's order is arrival order;
    # the stable sort on the time received keeps it where a merged part holds older labels.
    return (
        pl.scan_parquet(scan_sources(loaded))
        .select(columns)
        .sort("received_at", maintain_order=True)
        .unique(["request_id", "row"], keep="last", maintain_order=True)
        .collect()
    )
