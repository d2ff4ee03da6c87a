"""Ledger records of commands that measure themselves, and writing them without failing.

A command that runs once (``mlship predict``, a monitoring pass) measures its work with
:func:`mlship.train.cost.measure` and records it as one ledger record per model version it
worked for. The work is done by then, so a ledger that cannot be written costs a warning, never
the command: :func:`record_usage` says why instead of raising.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mlship.costs.ledger import USAGE, UsageRecord, this_process, write_usage
from mlship.errors import MlshipError
from mlship.prices import Usage
from mlship.store.logstore import LogStore
from mlship.store.parts import PLAIN, Sealing


def measured_record(
    kind: str,
    usage: Usage,
    started_at: datetime,
    ended_at: datetime,
    *,
    model: str | None = None,
    version: int | None = None,
    stage: str | None = None,
    deployment: str | None = None,
    requests: int = 0,
    predictions: int = 0,
) -> UsageRecord:
    """The record of one measured block of this process: its CPU time, and its peak memory held
    for its wall time (as a training run's memory is priced)."""
    host, pid = this_process()
    return UsageRecord(
        kind=kind,
        started_at=started_at,
        ended_at=max(ended_at, started_at),
        model=model,
        version=version,
        stage=stage,
        deployment=deployment,
        cpu_seconds=usage.cpu_seconds,
        memory_byte_seconds=usage.peak_memory_bytes * usage.wall_seconds,
        requests=requests,
        predictions=predictions,
        host=host,
        pid=pid,
    )


def record_usage(
    store: LogStore, records: Sequence[UsageRecord], sealing: Sealing = PLAIN
) -> str | None:
    """Append ``records`` to the ledger; None when written (or nothing to write), else why
    they could not be, for a warning."""
    try:
        write_usage(store, records, sealing)
    except (OSError, MlshipError) as exc:
        return f"the usage ledger at {store.location(USAGE)} cannot be written: {exc}"
    return None
