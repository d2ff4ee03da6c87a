"""What every batch scoring job does around the scoring, wherever the rows are scored (in this
process, in batches, or on Ray): log the answers under one batch id, write them atomically and
record the job's usage in the ledger.

``mlship predict`` and its Ray executor both do these steps; keeping them here means a batch scored
on Ray is logged, written and billed exactly as one scored locally.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from mlship.monitor.predlog import PredictionLog
    from mlship.prices import Usage
    from mlship.store.entities import ModelVersion
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
