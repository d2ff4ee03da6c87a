"""The high-water marks of incremental pipelines in SQL (the
:class:`~mlship.store.repositories.Marks` protocol).

One row per pipeline. Moving it is a compare-and-set on ``serial`` inside the caller's
transaction: of two ingests that read the same marks, the first to commit moves them and the
other is refused, instead of both adding their rows to the same previous dataset. A move asked
again with the same values after it was made (its commit's answer was lost) finds its own work
and answers the same, so the SQL store may run it again on a fresh connection.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from mlship.errors import MlshipError, NotFoundError
from mlship.store import entities
from mlship.store.entities import from_row
from mlship.store.repositories import MarksMoved
from mlship.store.tables import Dataset, IngestMark, utcnow


def read_marks(session: Session, pipeline: str) -> entities.IngestMarks | None:
    """The pipeline's marks, or None before its first incremental ingest."""
    row = session.get(IngestMark, pipeline)
    return None if row is None else from_row(entities.IngestMarks, row)


def move_marks(
    session: Session,
    pipeline: str,
    *,
    serial: int,
    dataset_id: int,
    marks: dict[str, Any],
    user: str,
) -> entities.IngestMarks:
    """Move the pipeline's marks from ``serial`` to ``serial + 1`` (see the module docstring)."""
    if serial < 0:
        raise MlshipError(f"a marks serial counts moves from 0; got {serial}")
    stored = _as_stored(marks)
    if session.get(Dataset, dataset_id) is None:
        raise NotFoundError(f"no dataset with id {dataset_id}")
    row = session.get(IngestMark, pipeline, with_for_update=True)
    current = 0 if row is None else row.serial
    if (
        row is not None
        and current == serial + 1
        and (row.dataset_id, row.marks) == (dataset_id, stored)
    ):
        return from_row(entities.IngestMarks, row)  # this very move, asked again
    if current != serial:
        raise MarksMoved(
            f"the marks of {pipeline} moved while this ingest ran (now at move {current}, it "
            f"read them at move {serial}): another ingest of {pipeline} committed first; run "
            "this one again to read what is new since"
        )
    if row is None:
        row = IngestMark(pipeline=pipeline, serial=0, dataset_id=dataset_id, marks={})
        session.add(row)
    row.serial = serial + 1
    row.dataset_id = dataset_id
    row.marks = stored
    row.updated_by = user
    row.updated_at = utcnow()
    session.flush()
    return from_row(entities.IngestMarks, row)


def _as_stored(marks: dict[str, Any]) -> dict[str, Any]:
    """``marks`` as the JSON column gives them back (so a repeated move compares equal)."""
    try:
        found: dict[str, Any] = json.loads(json.dumps(marks, sort_keys=True))
    except (TypeError, ValueError) as exc:
        raise MlshipError(f"marks must be JSON values: {exc}") from None
    return found
