"""The dataset pages' reads in SQL: one page of datasets with the count of all, and the runs
that trained on one dataset, newest first.

Both are cut by the database (``ORDER BY ... LIMIT``) on an index (``ix_datasets_created_at``,
``ix_runs_dataset_id``), so a team's thousandth dataset version or ten-thousandth run costs a
page what the first did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from mlship.store import entities
from mlship.store.entities import from_row
from mlship.store.metadata import MetadataStore
from mlship.store.tables import Dataset, Run, as_utc


@dataclass(frozen=True)
class DatasetSlice:
    """Datasets of one page, newest first, and how many there are in all."""

    datasets: list[entities.Dataset]
    total: int


@dataclass(frozen=True)
class DatasetUse:
    """A run that trained on a dataset: what the dataset page lists of it."""

    run_id: str
    pipeline: str
    status: str
    owner: str
    started_at: datetime
    best_candidate: str | None


@dataclass(frozen=True)
class DatasetUses:
    runs: list[DatasetUse]
    total: int


def page_of_datasets(
    store: MetadataStore, *, pipeline: str | None, offset: int, limit: int
) -> DatasetSlice:
    """``limit`` datasets from ``offset``, newest first (of ``pipeline`` only, when given)."""
    query = select(Dataset)
    count = select(func.count()).select_from(Dataset)
    if pipeline is not None:
        query = query.where(Dataset.pipeline == pipeline)
        count = count.where(Dataset.pipeline == pipeline)
    query = query.order_by(Dataset.created_at.desc(), Dataset.id.desc()).offset(offset).limit(limit)
    with store.transaction() as session:
        total = int(session.scalar(count) or 0)
        found = [from_row(entities.Dataset, row) for row in session.scalars(query)]
    return DatasetSlice(found, total)


def pipelines_with_datasets(store: MetadataStore, limit: int = 500) -> list[str]:
    """The pipelines that have datasets (at most ``limit``), by name: the list's filter."""
    query = (
        select(Dataset.pipeline)
        .where(Dataset.pipeline.is_not(None))
        .distinct()
        .order_by(Dataset.pipeline)
        .limit(limit)
    )
    with store.transaction() as session:
        return [name for name in session.scalars(query) if name]


def runs_of_dataset(store: MetadataStore, dataset_id: int, limit: int = 20) -> DatasetUses:
    """The newest ``limit`` runs trained on the dataset, and how many there are in all."""
    query = (
        select(Run.id, Run.pipeline, Run.status, Run.owner, Run.started_at, Run.best_candidate)
        .where(Run.dataset_id == dataset_id)
        .order_by(Run.started_at.desc(), Run.id.desc())
        .limit(limit)
    )
    count = select(func.count()).select_from(Run).where(Run.dataset_id == dataset_id)
    with store.transaction() as session:
        total = int(session.scalar(count) or 0)
        runs = [
            DatasetUse(
                row.id,
                row.pipeline,
                row.status,
                row.owner,
                as_utc(row.started_at),
                row.best_candidate,
            )
            for row in session.execute(query)
        ]
    return DatasetUses(runs, total)
