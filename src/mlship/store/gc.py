"""Garbage collection of the artifact store: what nothing refers to, old dataset versions, and
the retention rules that move old artifacts to the cold tier.

An artifact goes only when no row of the metadata refers to it (:mod:`mlship.store.references`)
and it was written before the cut-off: a command that has stored an artifact but not yet
recorded the row naming it is younger than any sensible cut-off, so a collection running beside
it never takes its work away. Dataset versions beyond the newest ``keep`` of a pipeline that no
run and no model version uses are dropped from the metadata first, in one transaction, and their
artifacts then count as unreferenced like any other: a crash in between leaves artifacts that the
next collection finds, never a row that names a deleted artifact.

Tiering (``[[gc.rules]]`` with ``action = "tier"``) moves artifacts that are still referenced,
so it deletes nothing a reader needs: the stores read from either tier. An artifact moves when
every dataset version, model version or run of the rule's kind that names it is older than the
rule's age and beyond the newest ``keep_versions`` of its group; one a newer holder still names
stays where it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from mlship.errors import ConfigError
from mlship.prices import GB, Prices
from mlship.retention import GcRule, parse_age
from mlship.store.artifacts import Stored
from mlship.store.clock import utcnow
from mlship.store.metadata import MetadataStore
from mlship.store.references import (
    Holder,
    drop_datasets,
    holders,
    referenced,
    unused_datasets,
)

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

    def tier(self, sha256: str) -> bool: ...


@dataclass(frozen=True)
class Doomed:
    """An artifact collection deletes, and why."""

    sha256: str
    size: int
    written: datetime
    why: str
    cold: bool = False


@dataclass(frozen=True)
class Moved:
    """A referenced artifact a tiering rule moves to the cold tier."""

    sha256: str
    size: int
    written: datetime
    what: str


@dataclass(frozen=True)
class DroppedDataset:
    """A dataset version retention drops from the metadata."""

    id: int
    data_hash: str
    pipeline: str | None
    created_at: datetime


@dataclass(frozen=True)
class ColdTier:
    """The price catalog's storage class that prices the cold tier."""

    key: str
    name: str
    gb_month: float


@dataclass(frozen=True)
class Plan:
    """What a collection deletes, moves and keeps, and what the bytes cost a month."""

    artifacts: tuple[Doomed, ...]
    datasets: tuple[DroppedDataset, ...]
    kept: int
    kept_young: int
    price_gb_month: float
    currency: str
    tiered: tuple[Moved, ...] = ()
    hot_bytes: int = 0
    cold_bytes: int = 0
    cold: ColdTier | None = None

    @property
    def size(self) -> int:
        return sum(a.size for a in self.artifacts)

    @property
    def tier_size(self) -> int:
        return sum(m.size for m in self.tiered)

    @property
    def cold_price(self) -> float:
        return self.cold.gb_month if self.cold is not None else self.price_gb_month

    @property
    def monthly_saving(self) -> float:
        """What deleting saves: each artifact at the price of the tier it is in."""
        hot = sum(a.size for a in self.artifacts if not a.cold)
        return hot / GB * self.price_gb_month + (self.size - hot) / GB * self.cold_price

    @property
    def tier_saving(self) -> float:
        """What moving the tiered bytes to the cold tier saves a month."""
        return self.tier_size / GB * (self.price_gb_month - self.cold_price)

    @property
    def after(self) -> tuple[int, int]:
        """Bytes in the usual tier and in the cold one once the plan is carried out."""
        deleted_hot = sum(a.size for a in self.artifacts if not a.cold)
        deleted_cold = self.size - deleted_hot
        return (
            self.hot_bytes - deleted_hot - self.tier_size,
            self.cold_bytes - deleted_cold + self.tier_size,
        )


@dataclass(frozen=True)
class Outcome:
    """What :func:`apply` did."""

    deleted: int
    tiered: int


def collected_store(settings: Settings) -> CollectedStore:
    """The workspace's artifact store with neither key nor signer: collection reads nothing
    out, it lists, measures, moves and deletes (and a status check asks what exists)."""
    from mlship.store.artifacts import LocalArtifactStore

    if settings.artifact_url is not None:
        from mlship.store.s3 import S3ArtifactStore

        return S3ArtifactStore.from_settings(settings, None, signer=None, allow_plaintext=True)
    return LocalArtifactStore(
        settings.artifact_root_resolved, None, signer=None, cold=settings.cold_root_resolved
    )


def cold_tier(settings: Settings) -> ColdTier:
    """The storage class of ``gc.cold_class`` in the price catalog (with ``[catalog]``'s
    corrections); ConfigError naming the setting when the catalog has no such class."""
    from mlship.price_catalog import shipped_catalog, with_overrides

    catalog = with_overrides(shipped_catalog(), settings.catalog)
    wanted = settings.gc.cold_class
    for storage in catalog.storage:
        if storage.key == wanted:
            return ColdTier(storage.key, storage.name, storage.gb_month)
    known = ", ".join(sorted(s.key for s in catalog.storage))
    raise ConfigError(
        f"gc.cold_class {wanted!r} is not a storage class of the price catalog; it has: {known} "
        "(or add it under [catalog.storage.NAME])"
    )


def plan(
    metadata: MetadataStore,
    store: CollectedStore,
    *,
    older_than: timedelta,
    keep_versions: int | None,
    prices: Prices,
    rules: Iterable[GcRule] = (),
    cold: ColdTier | None = None,
) -> Plan:
    """What a collection would do now, changing nothing."""
    now = utcnow()
    cutoff = now - older_than
    rules = tuple(rules)
    with metadata.transaction() as session:
        dropped = {
            d.id: (d, cutoff)
            for d in (
                unused_datasets(session, keep_versions, cutoff) if keep_versions is not None else []
            )
        }
        for rule in rules:
            if rule.action == "delete" and rule.what == "datasets":
                rule_cutoff = now - rule.age
                for d in unused_datasets(session, rule.keep_versions, rule_cutoff):
                    dropped.setdefault(d.id, (d, rule_cutoff))
        datasets = tuple(
            DroppedDataset(d.id, d.data_hash, d.pipeline, d.created_at) for d, _ in dropped.values()
        )
        freed = {
            a: when
            for d, when in dropped.values()
            for a in (d.artifact_sha256, d.quarantine_sha256, d.profile_sha256)
            if a is not None
        }
        still = referenced(session, frozenset(d.id for d in datasets))
        movable = tiered_by_rules(holders(session), [r for r in rules if r.action == "tier"], now)
    doomed, moved, kept, young, hot, cold_bytes = [], [], 0, 0, 0, 0
    for sha256 in store.addresses():
        stored = store.stored(sha256)
        if stored.cold:
            cold_bytes += stored.size
        else:
            hot += stored.size
        if sha256 in still:
            kept += 1
            if sha256 in movable and not stored.cold:
                moved.append(Moved(sha256, stored.size, stored.written, movable[sha256]))
            continue
        if stored.written > freed.get(sha256, cutoff):
            young += 1
            continue
        why = "an old dataset version's" if sha256 in freed else "referenced by nothing"
        doomed.append(Doomed(sha256, stored.size, stored.written, why, stored.cold))
    return Plan(
        tuple(doomed),
        datasets,
        kept,
        young,
        prices.storage_gb_month,
        prices.currency,
        tuple(moved),
        hot,
        cold_bytes,
        cold,
    )


def tiered_by_rules(found: list[Holder], rules: list[GcRule], now: datetime) -> dict[str, str]:
    """The artifacts the tiering ``rules`` move, each with the kind that moves it: named by an
    old holder of the rule's kind and by no holder of that kind the rule keeps."""
    moving: dict[str, str] = {}
    staying: set[str] = set()
    for rule in rules:
        cutoff = now - rule.age
        groups: dict[str, list[Holder]] = {}
        for holder in found:
            if holder.kind == rule.what:
                groups.setdefault(holder.group, []).append(holder)
        for members in groups.values():
            members.sort(key=lambda h: h.created, reverse=True)
            for rank, holder in enumerate(members):
                if rank < rule.keep_versions or holder.created > cutoff:
                    staying.update(holder.addresses)
                else:
                    moving.update(dict.fromkeys(holder.addresses, rule.what))
    return {a: what for a, what in moving.items() if a not in staying}


def apply(metadata: MetadataStore, store: CollectedStore, planned: Plan) -> Outcome:
    """Carry out ``planned``: the dataset rows go in one transaction, then each artifact that
    is still unreferenced (checked again, after the rows are gone) is deleted, then the
    tiered ones move (each copied, checked, and only then removed from where it was)."""
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
    tiered = sum(1 for moved in planned.tiered if store.tier(moved.sha256))
    return Outcome(deleted, tiered)


__all__ = [
    "ColdTier",
    "CollectedStore",
    "Doomed",
    "DroppedDataset",
    "Moved",
    "Outcome",
    "Plan",
    "apply",
    "cold_tier",
    "collected_store",
    "parse_age",
    "plan",
    "tiered_by_rules",
]
