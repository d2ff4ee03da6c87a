"""Garbage collection of the artifact store: what nothing refers to, and old dataset versions.

An artifact goes only when no row of the metadata refers to it (:mod:`mlship.store.references`)
and it was written before the cut-off: a command that has stored an artifact but not yet
recorded the row naming it is younger than any sensible cut-off, so a collection running beside
it never takes its work away. Dataset versions beyond the newest ``keep`` of a pipeline that no
run and no model version uses are dropped from the metadata first, in one transaction, and their
artifacts then count as unreferenced like any other: a crash in between leaves artifacts that the
next collection finds, never a row that names a deleted artifact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from mlship.prices import GB, Prices
from mlship.store.artifacts import Stored
from mlship.store.clock import utcnow
from mlship.store.metadata import MetadataStore
from mlship.store.references import drop_datasets, referenced, unused_datasets

if TYPE_CHECKING:
    from mlship.config import Settings

MONTH_SECONDS = 30 * 24 * 3600
"""The month storage prices are quoted per (the 30 days clouds bill a GB-month by)."""


class CollectedStore(Protocol):
    """What collection needs of an artifact store: the local store and object storage."""

    def addresses(self) -> Iterator[str]: ...

    def stored(self, sha256: str) -> Stored: ...

    def delete(self, sha256: str) -> None: ...

    def exists(self, sha256: str) -> bool: ...


@dataclass(frozen=True)
class Doomed:
    """An artifact collection deletes, and why."""

    sha256: str
    size: int
    written: datetime
    why: str


@dataclass(frozen=True)
class DroppedDataset:
    """A dataset version retention drops from the metadata."""

    id: int
    data_hash: str
    pipeline: str | None
    created_at: datetime


@dataclass(frozen=True)
class Plan:
    """What a collection deletes, what it keeps, and what the deleted bytes cost a month."""

    artifacts: tuple[Doomed, ...]
    datasets: tuple[DroppedDataset, ...]
    kept: int
    kept_young: int
    price_gb_month: float
    currency: str

    @property
    def size(self) -> int:
        return sum(a.size for a in self.artifacts)

    @property
    def monthly_saving(self) -> float:
        return self.size / GB * self.price_gb_month


def collected_store(settings: Settings) -> CollectedStore:
    """The workspace's artifact store with neither key nor signer: collection reads nothing
    out, it lists, measures and deletes (and a status check asks what exists)."""
    from mlship.store.artifacts import LocalArtifactStore

    if settings.artifact_url is not None:
        from mlship.store.s3 import S3ArtifactStore

        return S3ArtifactStore.from_settings(settings, None, signer=None, allow_plaintext=True)
    return LocalArtifactStore(settings.artifact_root_resolved, None, signer=None)


def parse_age(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` or ``0``: how old an artifact must be to be collected."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    cleaned = text.strip().lower()
    if cleaned == "0":
        return timedelta(0)
    number, unit = cleaned[:-1], cleaned[-1:]
    if unit not in units or not number.isdigit():
        raise ValueError(
            f"--older-than {text!r}: expected a whole number and a unit, like 90d, 12h, 30m or 0"
        )
    return timedelta(seconds=int(number) * units[unit])


def plan(
    metadata: MetadataStore,
    store: CollectedStore,
    *,
    older_than: timedelta,
    keep_versions: int | None,
    prices: Prices,
) -> Plan:
    """What a collection would do now, changing nothing."""
    cutoff = utcnow() - older_than
    with metadata.transaction() as session:
        dropped = (
            unused_datasets(session, keep_versions, cutoff) if keep_versions is not None else []
        )
        datasets = tuple(
            DroppedDataset(d.id, d.data_hash, d.pipeline, d.created_at) for d in dropped
        )
        freed = {
            a
            for d in dropped
            for a in (d.artifact_sha256, d.quarantine_sha256, d.profile_sha256)
            if a is not None
        }
        still = referenced(session, frozenset(d.id for d in datasets))
    doomed, kept, young = [], 0, 0
    for sha256 in store.addresses():
        if sha256 in still:
            kept += 1
            continue
        stored = store.stored(sha256)
        if stored.written > cutoff:
            young += 1
            continue
        why = "an old dataset version's" if sha256 in freed else "referenced by nothing"
        doomed.append(Doomed(sha256, stored.size, stored.written, why))
    return Plan(tuple(doomed), datasets, kept, young, prices.storage_gb_month, prices.currency)


def apply(metadata: MetadataStore, store: CollectedStore, planned: Plan) -> int:
    """Carry out ``planned``: the dataset rows go in one transaction, then each artifact that
    is still unreferenced (checked again, after the rows are gone) is deleted. Returns the
    number of artifacts deleted."""
    with metadata.transaction() as session:
        drop_datasets(session, [d.id for d in planned.datasets])
    with metadata.transaction() as session:
        names = referenced(session)
    deleted = 0
    for doomed in planned.artifacts:
        if doomed.sha256 in names:  # recorded since the plan was made
            continue
        store.delete(doomed.sha256)
        deleted += 1
    return deleted


__all__ = [
    "CollectedStore",
    "Doomed",
    "DroppedDataset",
    "Plan",
    "apply",
    "collected_store",
    "parse_age",
    "plan",
]
