"""What every batch scoring job does around the scoring, wherever the rows are scored (in this
process, in batches, or on Ray): log the answers under one batch id, write them atomically and
record the job's usage in the ledger; and the scoring loop itself, once the rows are typed.

``mlship predict`` and its Ray executor both do these steps; keeping them here means a batch scored
on Ray is logged, written and billed exactly as one scored locally.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from mlship.monitor.predlog import PredictionLog
    from mlship.prices import Usage
    from mlship.store.entities import ModelVersion
    from mlship.train.model_io import LoadedModel
    from mlship.workspace import Workspace


@contextmanager
def batch_log(workspace: Workspace, enabled: bool) -> Iterator[tuple[PredictionLog | None, str]]:
    """The batch prediction log (None when it is turned off) and a fresh batch id. The log is
    closed on the way out, so what was scored is logged even when a later step fails."""
    from mlship.monitor.predlog import PredictionLog
    from mlship.store.logstore import PREDICTIONS, LogTarget

    target = LogTarget(workspace.logs, f"{PREDICTIONS}/batch")
    log = PredictionLog(target, "batch", sealing=workspace.sealing) if enabled else None
    try:
        yield log, f"batch-{uuid.uuid4().hex}"
    finally:
        if log is not None:
            log.close()


def record_batch(
    workspace: Workspace, usage: Usage, began: datetime, version: ModelVersion, predictions: int
) -> str | None:
    """Record the job's usage as one ``batch`` record; why it could not be, or None."""
    from mlship.costs.measured import measured_record, record_usage
    from mlship.store.entities import model_of

    record = measured_record(
        "batch", usage, began, datetime.now(UTC), model=model_of(version).name,
        version=version.version, stage=version.stage, requests=1, predictions=predictions,
    )  # fmt: skip
    return record_usage(workspace.logs, [record], workspace.sealing)


def write_answers(result: pd.DataFrame, output: Path, out_format: str) -> None:
    """Write the answers as one file (CSV or Parquet), by temp file + fsync + rename."""
    from mlship.store.artifacts import atomic_write

    buffer = io.BytesIO()
    if out_format == "csv":
        result.to_csv(buffer, index=False)
    else:
        result.to_parquet(buffer, index=False)
    atomic_write(output, [buffer.getvalue()])


def score_prepared(
    model: LoadedModel,
    raw: pd.DataFrame,
    frame: pd.DataFrame,
    chunk_rows: int,
    log: PredictionLog | None,
    batch_id: str,
    advance: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """The answers to ``frame`` (``raw`` as the model prepared it), ``chunk_rows`` at a time:
    ``raw``'s id columns, the prediction and one probability column per class; each chunk goes
    to the prediction ``log`` and to ``advance`` as it is scored."""
    import numpy as np
    import pandas as pd

    predictions: list[Any] = []
    probabilities: list[Any] = []
    for start in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[start : start + chunk_rows]
        began = time.perf_counter()
        labels, proba = model.predict(chunk)
        predictions.extend(labels)
        if proba is not None:
            probabilities.append(proba)
        if log is not None:
            _log_chunk(log, model, batch_id, chunk, labels, proba, began)
        if advance is not None:
            advance(len(chunk))
    result = pd.DataFrame(
        {name: raw[name].to_numpy() for name in model.signature.id_columns if name in raw}
    )
    result["prediction"] = predictions
    if probabilities and model.signature.classes:
        stacked = np.vstack(probabilities)
        for index, label in enumerate(model.signature.classes):
            result[f"proba_{label}"] = stacked[:, index]
    return result


def _log_chunk(
    log: PredictionLog,
    model: LoadedModel,
    batch_id: str,
    raw: pd.DataFrame,
    labels: Any,
    proba: Any,
    began: float,
) -> None:
    from mlship.monitor.predlog import Entry

    classes = [str(c) for c in model.signature.classes or []]
    outputs: list[dict[str, Any]] = []
    for index, label in enumerate(labels):
        output: dict[str, Any] = {"prediction": label.item() if hasattr(label, "item") else label}
        if proba is not None and classes:
            output["probabilities"] = dict(zip(classes, map(float, proba[index]), strict=True))
        outputs.append(output)
    seconds = time.perf_counter() - began
    inputs = [
        {str(k): v for k, v in row.items()}
        for row in raw.astype(object).where(raw.notna(), None).to_dict("records")
    ]
    log.append(Entry(batch_id, model.name, model.version, "batch", seconds * 1000, inputs, outputs))
