"""Every cost item of a workspace over a window, as the report, the budgets and the cost alert
rules all read them: training runs, the usage ledger and storage, with notes on what could not
be measured. One function, so the three never disagree on a figure."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.costs.items import CostItem
    from mlship.costs.storage import SizeOf
    from mlship.store.artifacts import ArtifactStore
    from mlship.workspace import Workspace

RUNS_READ = 1000
"""The most runs read, newest first: the most a tracking server lists at once."""

DATASETS_READ = 1000
"""The most dataset versions measured, newest first (as many as a server lists)."""


def _sizes(store: ArtifactStore) -> SizeOf | None:
    """How to measure an artifact in ``store``; None for a tracking server's, which does not
    say (model versions still count, with the size recorded when they were registered)."""
    from mlship.store.artifacts import LocalArtifactStore
    from mlship.store.s3 import S3ArtifactStore

    if not isinstance(store, LocalArtifactStore | S3ArtifactStore):
        return None
    measured = store

    def size_of(sha256: str) -> int | None:
        try:
            return measured.stored(sha256).size
        except (MlshipError, OSError):
            return None  # collected meanwhile, or never stored: nothing kept to bill

    return size_of


def workspace_costs(
    workspace: Workspace, since: datetime, now: datetime, measured_since: datetime | None = None
) -> tuple[list[CostItem], list[str]]:
    """The cost items of ``workspace`` from ``since`` to ``now``, and notes on what was left
    out; runs started after ``measured_since`` (``since`` when not given) without a measured
    usage are noted."""
    from mlship.costs.ledger import read_usage
    from mlship.costs.report import gather
    from mlship.costs.storage import class_prices
    from mlship.price_catalog import shipped_catalog, with_overrides
    from mlship.store.clock import as_utc

    settings = workspace.settings
    catalog = with_overrides(shipped_catalog(), settings.catalog)
    runs = workspace.runs.list_runs(RUNS_READ)
    datasets = workspace.datasets.list_datasets(DATASETS_READ)
    size_of = _sizes(workspace.artifacts)
    items, notes = gather(
        runs=runs,
        models=workspace.catalogue.list_models(),
        datasets=datasets,
        records=read_usage(workspace.logs, workspace.sealing, since),
        logs=workspace.logs,
        size_of=size_of or (lambda sha256: None),
        prices=settings.prices,
        price_of=class_prices(settings.prices.storage_gb_month, catalog.storage),
        since=since,
        now=now,
    )
    if len(runs) == RUNS_READ and as_utc(runs[-1].started_at) >= since:
        notes.append(f"only the newest {RUNS_READ} runs were read: use a shorter --since")
    if len(datasets) == DATASETS_READ:
        notes.append(f"only the newest {DATASETS_READ} dataset versions were measured")
    if size_of is None:
        notes.append(
            "the tracking server does not give artifact sizes: datasets and reports are left "
            "out of storage (model versions count, at their recorded size)"
        )
    unmeasured_from = measured_since or since
    if any(run.cpu_seconds is None and as_utc(run.started_at) >= unmeasured_from for run in runs):
        notes.append("runs without a measured usage (running or cut short) are left out")
    return items, notes
