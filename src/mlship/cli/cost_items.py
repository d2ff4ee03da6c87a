"""Every cost item of a workspace over a window, as the report, the budgets and the cost alert
rules all read them: training runs, the usage ledger and storage, with notes on what could not
be measured. One function, so the three never disagree on a figure."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from mlship.errors import MlshipError

if TYPE_CHECKING:
    from mlship.costs.items import CostItem
    from mlship.costs.storage import ClassOf, SizeOf
    from mlship.store.artifacts import ArtifactStore
    from mlship.workspace import Workspace

RUNS_READ = 1000
"""The most runs read, newest first: the most a tracking server lists at once."""

DATASETS_READ = 1000
"""The most dataset versions measured, newest first (as many as a server lists)."""


def _measures(store: ArtifactStore, cold_class: str) -> tuple[SizeOf, ClassOf] | None:
    """How to measure an artifact in ``store``, and which class it is kept in (``cold_class``
    once ``mlship gc`` tiered it); None for a tracking server's store, which does not say
    (model versions still count, with the size recorded when they were registered). Each
    artifact is asked once (one HEAD in a bucket) for both."""
    from mlship.store.artifacts import LocalArtifactStore, Stored
    from mlship.store.s3 import S3ArtifactStore

    if not isinstance(store, LocalArtifactStore | S3ArtifactStore):
        return None
    measured = store
    seen: dict[str, Stored | None] = {}

    def stored(sha256: str) -> Stored | None:
        if sha256 not in seen:
            try:
                seen[sha256] = measured.stored(sha256)
            except (MlshipError, OSError):
                seen[sha256] = None  # collected meanwhile, or never stored: nothing to bill
        return seen[sha256]

    def size_of(sha256: str) -> int | None:
        found = stored(sha256)
        return found.size if found is not None else None

    def class_of(sha256: str) -> str | None:
        found = stored(sha256)
        return cold_class if found is not None and found.cold else None

    return size_of, class_of


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
    measures = _measures(workspace.artifacts, settings.gc.cold_class)
    items, notes = gather(
        runs=runs,
        models=workspace.catalogue.list_models(),
        datasets=datasets,
        records=read_usage(workspace.logs, workspace.sealing, since),
        logs=workspace.logs,
        size_of=measures[0] if measures else (lambda sha256: None),
        class_of=measures[1] if measures else None,
        prices=settings.prices,
        price_of=class_prices(settings.prices.storage_gb_month, catalog.storage),
        since=since,
        now=now,
    )
    if len(runs) == RUNS_READ and as_utc(runs[-1].started_at) >= since:
        notes.append(f"only the newest {RUNS_READ} runs were read: use a shorter --since")
    if len(datasets) == DATASETS_READ:
        notes.append(f"only the newest {DATASETS_READ} dataset versions were measured")
    if measures is None:
        notes.append(
            "the tracking server does not give artifact sizes: datasets and reports are left "
            "out of storage (model versions count, at their recorded size)"
        )
    unmeasured_from = measured_since or since
    if any(run.cpu_seconds is None and as_utc(run.started_at) >= unmeasured_from for run in runs):
        notes.append("runs without a measured usage (running or cut short) are left out")
    return items, notes
