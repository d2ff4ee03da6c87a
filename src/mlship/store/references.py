"""Every artifact address the metadata refers to, and the dataset versions nothing uses.

Garbage collection deletes only what no row names, so this walk errs towards keeping: besides
the columns that hold an artifact's sha256, any 64-hex string anywhere in a run's details, a
dataset's validation or a model version's JSON fields counts as a reference (a scored model kept
by a refitting run is named only there, and a record added later is covered without a change
here). A hash that names no artifact costs nothing but one set entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlship.store.tables import Dataset, IngestCache, IngestMark, ModelVersion, Run, as_utc

_HEX = frozenset("0123456789abcdef")


def _addresses_in(value: Any) -> Iterator[str]:
    """Every string in a JSON value that has the shape of a sha256 address."""
    if isinstance(value, str):
        if len(value) == 64 and set(value) <= _HEX:
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _addresses_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _addresses_in(item)


def referenced(session: Session, without: frozenset[int] = frozenset()) -> frozenset[str]:
    """The addresses of every artifact a dataset, run or model version refers to, leaving out
    the datasets whose ids are in ``without`` (the ones a collection is about to drop)."""
    found: set[str] = set()
    for dataset in session.scalars(select(Dataset)):
        if dataset.id in without:
            continue
        found.update(
            a
            for a in (dataset.artifact_sha256, dataset.quarantine_sha256, dataset.profile_sha256)
            if a is not None
        )
        found.update(_addresses_in(dataset.validation))
    for report, details in session.execute(select(Run.report_sha256, Run.details)):
        if report is not None:
            found.add(report)
        found.update(_addresses_in(details))
    for version in session.scalars(select(ModelVersion)):
        found.add(version.artifact_sha256)
        found.update(_addresses_in([version.signature, version.metrics, version.tags]))
    return frozenset(found)


def named(session: Session) -> frozenset[str]:
    """The addresses the metadata's artifact columns hold: each must be stored, unlike the
    hash-shaped strings :func:`referenced` also keeps (which may name no artifact)."""
    found: set[str] = set()
    for row in session.execute(
        select(Dataset.artifact_sha256, Dataset.quarantine_sha256, Dataset.profile_sha256)
    ):
        found.update(a for a in row if a is not None)
    found.update(a for a in session.scalars(select(Run.report_sha256)) if a is not None)
    found.update(session.scalars(select(ModelVersion.artifact_sha256)))
    return frozenset(found)


@dataclass(frozen=True)
class Holder:
    """A dataset version, model version or run, as retention sees it: the artifacts of one kind
    it names, the group whose newest ``keep_versions`` stay (a pipeline, a model) and when it
    was made."""

    kind: str
    group: str
    created: datetime
    addresses: tuple[str, ...]


def holders(session: Session) -> list[Holder]:
    """Every dataset version (data, quarantine, profile), model version (model) and run
    (report), with the artifacts it names in its own columns."""
    found = [
        Holder(
            "datasets",
            d.pipeline or "",
            as_utc(d.created_at),
            tuple(a for a in (d.artifact_sha256, d.quarantine_sha256, d.profile_sha256) if a),
        )
        for d in session.scalars(select(Dataset))
    ]
    found += [
        Holder("models", str(model), as_utc(created), (address,))
        for model, created, address in session.execute(
            select(ModelVersion.model_id, ModelVersion.created_at, ModelVersion.artifact_sha256)
        )
    ]
    found += [
        Holder("reports", pipeline, as_utc(started), (report,))
        for pipeline, started, report in session.execute(
            select(Run.pipeline, Run.started_at, Run.report_sha256)
        )
        if report is not None
    ]
    return found


def unused_datasets(session: Session, keep: int, before: datetime) -> list[Dataset]:
    """Dataset versions no run, no model version and no incremental pipeline's marks use,
    beyond the ``keep`` newest of their pipeline and created before ``before``: the ones
    retention may drop."""
    used_ids = {i for i in session.scalars(select(Run.dataset_id)) if i is not None}
    used_ids.update(session.scalars(select(IngestMark.dataset_id)))  # the next increment's base
    used_hashes = set(session.scalars(select(ModelVersion.dataset_hash)))
    by_pipeline: dict[str | None, list[Dataset]] = {}
    for dataset in session.scalars(select(Dataset).order_by(Dataset.created_at.desc())):
        by_pipeline.setdefault(dataset.pipeline, []).append(dataset)
    unused = []
    for versions in by_pipeline.values():
        for dataset in versions[keep:]:
            if dataset.id in used_ids or dataset.data_hash in used_hashes:
                continue
            if as_utc(dataset.created_at) < before:
                unused.append(dataset)
    return unused


def drop_datasets(session: Session, ids: list[int]) -> None:
    """Remove dataset rows and the ingest-cache entries that point at them (the caller's
    transaction makes it all or nothing)."""
    if not ids:
        return
    for entry in session.scalars(select(IngestCache).where(IngestCache.dataset_id.in_(ids))):
        session.delete(entry)
    session.flush()
    for dataset in session.scalars(select(Dataset).where(Dataset.id.in_(ids))):
        session.delete(dataset)


__all__ = ["Holder", "drop_datasets", "holders", "named", "referenced", "unused_datasets"]
