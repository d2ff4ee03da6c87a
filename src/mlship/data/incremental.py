"""Incremental ingest: a pipeline whose sources only grow reads what they added since its marks.

The new rows go through the whole ingest (typing, checks, quarantine) on their own; the clean
ones are then added to the dataset the marks belong to, and the result is stored as a new
dataset version that records what it added (:func:`merge`). Rows of an ``updated_at`` source
replace the rows with the same source ``key``: a row changed again is kept once, in its newest
form. Deleted rows are never seen and stay (the record says ``deletions: unsupported``).

The marks move only after the new dataset is stored (:func:`commit`), and only if nobody moved
them meanwhile (``Marks.advance_marks``): a crash in between leaves them where they were, so the
next ingest reads the same rows again instead of skipping them, and a dataset already stored is
found by its hash. A file rewritten rather than appended to, or a data spec changed since the
marks were set, starts over: every source is read from its beginning and the new version
replaces the previous one instead of extending it (the record says why).

No new rows at all is no new version: the ingest answers with the current dataset.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

from mlship.data.fingerprint import data_spec
from mlship.data.growing import Increment, Rewritten, read_increment
from mlship.data.readers import SourceData
from mlship.errors import DataError
from mlship.spec.loader import LoadedSpec
from mlship.spec.models import PipelineSpec
from mlship.store.context import HasArtifacts, HasDatasets, HasMarks
from mlship.store.entities import Dataset

DELETIONS = "unsupported"
"""What an incremental dataset says of rows deleted from its sources: they are not seen."""


class IncrementalStores(HasMarks, HasDatasets, HasArtifacts, Protocol):
    """Where the marks, the previous dataset and its rows are."""


@dataclass(frozen=True)
class Growth:
    """What the sources of an incremental pipeline added since its marks."""

    pipeline: str
    serial: int
    """How often the marks had moved when they were read (0: never)."""
    previous: Dataset | None
    """The dataset the new rows are added to; None on a first ingest or a restart."""
    increments: dict[str, Increment]
    spec_digest: str
    restarted: str | None = None
    replaced_by: tuple[str, ...] = ()
    """The columns that say which record a row is, when an ``updated_at`` source's new rows
    replace older copies."""

    @property
    def raw(self) -> dict[str, SourceData]:
        """The new rows of each source, as ingest reads a source."""
        return {label: found.data for label, found in self.increments.items()}

    @property
    def nothing_new(self) -> bool:
        """No source added a row since a previous dataset: there is no new version to make."""
        return self.previous is not None and all(
            found.data.frame.is_empty() for found in self.increments.values()
        )


def is_incremental(spec: PipelineSpec) -> bool:
    """Whether the spec reads growing sources; refused when it mixes them in a way whose rows
    could not simply be added to the previous dataset's."""
    growing = [s.label for s in spec.sources if s.incremental is not None]
    if not growing:
        return False
    whole = [s.label for s in spec.sources if s.incremental is None]
    reasons = []
    if whole:
        reasons.append(
            f"source(s) {', '.join(whole)} have no `incremental`, but {', '.join(growing)} do: "
            "new rows are added to the previous dataset's, so every source must only grow"
        )
    if spec.combine.method == "join" or spec.combine.conflicts is not None:
        reasons.append(
            "incremental sources are stacked (`combine: union` without `conflicts`): rows "
            "joined or resolved against rows of earlier ingests would not be seen again"
        )
    if spec.infer_columns:
        reasons.append(
            "incremental sources need declared columns (`infer: true` would type each ingest's "
            "new rows on their own)"
        )
    if reasons:
        raise DataError(f"{spec.name}: " + "; ".join(reasons))
    return True


def read_growth(
    loaded: LoadedSpec, stores: IncrementalStores, tell: Callable[[str], None]
) -> Growth:
    """Read what every source added since the pipeline's marks (everything on a first ingest, or
    when it has to start over, which ``tell`` says)."""
    spec = loaded.spec
    digest = _digest(spec)
    stored = stores.marks.ingest_marks(spec.name)
    serial = 0 if stored is None else stored.serial
    marks: dict[str, Any] = {}
    previous = None
    restarted = None
    if stored is not None:
        if stored.marks.get("spec") != digest:
            restarted = "the data spec changed since the last ingest"
        else:
            marks = dict(stored.marks.get("sources", {}))
            previous = stores.datasets.get_dataset(str(stored.marks["dataset"]))
    try:
        increments = _read(loaded, marks)
    except Rewritten as exc:
        restarted, previous = str(exc), None
        increments = _read(loaded, {})
    if restarted:
        tell(f"Reading every source from its start: {restarted}")
    for label, found in increments.items():
        if found.read.get("waiting_bytes"):
            tell(
                f"{label}: its last line has no newline yet ({found.read['waiting_bytes']} "
                "bytes); it is read once it is complete"
            )
    if previous is not None and all(found.data.frame.is_empty() for found in increments.values()):
        tell("No new rows in any source since the last ingest")
    keys = {
        name
        for source in spec.sources
        if source.incremental is not None and source.incremental.updated_at is not None
        for name in source.key or []
    }
    return Growth(spec.name, serial, previous, increments, digest, restarted, tuple(sorted(keys)))


def _read(loaded: LoadedSpec, marks: dict[str, Any]) -> dict[str, Increment]:
    return {
        source.label: read_increment(source, loaded.base_dir, marks.get(source.label))
        for source in loaded.spec.sources
    }


def merge(
    growth: Growth, clean: pl.DataFrame, stores: HasArtifacts
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The previous dataset's rows with the new clean rows added (replacing, for an
    ``updated_at`` source, the rows with the same key), and the record of what was added."""
    record: dict[str, Any] = {
        "previous": None if growth.previous is None else growth.previous.data_hash,
        "restarted": growth.restarted,
        "rows_read": sum(found.data.frame.height for found in growth.increments.values()),
        "rows_clean": clean.height,
        "sources": {label: found.read for label, found in growth.increments.items()},
        "deletions": DELETIONS,
    }
    if growth.previous is None:
        record.update(rows_added=clean.height, rows_replaced=0, rows_unchanged=0)
        return clean, record
    before = pl.read_parquet(
        io.BytesIO(stores.artifacts.get_bytes(growth.previous.artifact_sha256))
    )
    if before.schema != clean.schema:
        raise DataError(
            f"{growth.pipeline}: the new rows' columns ({_shown(clean.schema)}) differ from "
            f"those of dataset {growth.previous.data_hash[:12]} they would be added to "
            f"({_shown(before.schema)})"
        )
    keys = list(growth.replaced_by)
    if not keys:
        record.update(rows_added=clean.height, rows_replaced=0, rows_unchanged=0)
        return pl.concat([before, clean]), record
    known = clean.join(before, on=keys, how="semi", nulls_equal=True).height
    same = clean.join(before, on=clean.columns, how="semi", nulls_equal=True).height
    kept = before.join(clean.select(keys), on=keys, how="anti", nulls_equal=True)
    record.update(rows_added=clean.height - known, rows_replaced=known - same, rows_unchanged=same)
    return pl.concat([kept, clean]), record


def commit(growth: Growth, dataset: Dataset, stores: HasMarks) -> None:
    """Move the pipeline's marks past the rows read, now that ``dataset`` holds them."""
    stores.marks.advance_marks(
        growth.pipeline,
        serial=growth.serial,
        dataset_id=dataset.id,
        marks={
            "spec": growth.spec_digest,
            "dataset": dataset.data_hash,
            "sources": {label: found.mark for label, found in growth.increments.items()},
        },
    )


def _digest(spec: PipelineSpec) -> str:
    """What the marks hold for: the part of the spec that decides the dataset."""
    return hashlib.sha256(json.dumps(data_spec(spec), sort_keys=True).encode()).hexdigest()


def _shown(schema: pl.Schema) -> str:
    return ", ".join(f"{name} {dtype}" for name, dtype in schema.items())
