"""The high-water marks of incremental pipelines behave the same on every backend: SQLite,
PostgreSQL, and a client of a real server over each.

Marks move only from where they were read (a compare-and-set on their serial), a move asked
again with the same values answers the same (a retry after a lost answer), a move by anyone else
is refused with the same error everywhere, and a move to a dataset that is not stored is refused.
"""

from __future__ import annotations

import hashlib

import pytest

from mlship.errors import NotFoundError
from mlship.store.entities import Dataset, IngestMarks
from mlship.store.repositories import MarksMoved
from mlship.workspace import Workspace
from tests.backends import Backend, unique
from tests.contract import People

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", "postgresql", "http-sqlite", "http-postgresql"], indirect=True
)


@pytest.fixture
def people(backend: Backend) -> People:
    return People.of(backend)


def _dataset(ws: Workspace, pipeline: str, content: str) -> Dataset:
    artifact = ws.artifacts.put_bytes(f"rows of {content}".encode())
    found, _ = ws.datasets.get_or_add_dataset(
        hashlib.sha256(content.encode()).hexdigest(), artifact.sha256, 2, [], [],
        pipeline=pipeline,
    )  # fmt: skip
    return found


def _marks(dataset: Dataset, offset: int) -> dict[str, object]:
    return {
        "spec": "d" * 64,
        "dataset": dataset.data_hash,
        "sources": {"visits": {"kind": "append", "bytes": offset, "lines": 3, "sha256": "x"}},
    }


def test_marks_start_absent_and_move_once_per_serial(people: People) -> None:
    pipeline = unique("growing")
    assert people.alice.marks.ingest_marks(pipeline) is None
    first = _dataset(people.alice, pipeline, unique("first"))
    moved = people.alice.marks.advance_marks(
        pipeline, serial=0, dataset_id=first.id, marks=_marks(first, 120)
    )
    assert isinstance(moved, IngestMarks)
    assert (moved.pipeline, moved.serial, moved.dataset_id) == (pipeline, 1, first.id)
    assert moved.marks == _marks(first, 120) and moved.updated_by == "alice"
    assert moved.updated_at.utcoffset() is not None
    assert people.vera.marks.ingest_marks(pipeline) == moved

    second = _dataset(people.alice, pipeline, unique("second"))
    again = people.alice.marks.advance_marks(
        pipeline, serial=1, dataset_id=second.id, marks=_marks(second, 300)
    )
    assert (again.serial, again.dataset_id, again.marks["sources"]["visits"]["bytes"]) == (
        2,
        second.id,
        300,
    )


def test_a_move_asked_again_answers_the_same(people: People) -> None:
    pipeline = unique("retried")
    dataset = _dataset(people.alice, pipeline, unique("rows"))
    marks = _marks(dataset, 64)
    once = people.alice.marks.advance_marks(pipeline, serial=0, dataset_id=dataset.id, marks=marks)
    twice = people.alice.marks.advance_marks(pipeline, serial=0, dataset_id=dataset.id, marks=marks)
    assert twice == once and twice.serial == 1


def test_a_move_from_a_stale_serial_is_refused_everywhere_alike(people: People) -> None:
    pipeline = unique("raced")
    first = _dataset(people.alice, pipeline, unique("a"))
    other = _dataset(people.alice, pipeline, unique("b"))
    people.alice.marks.advance_marks(
        pipeline, serial=0, dataset_id=first.id, marks=_marks(first, 10)
    )
    with pytest.raises(
        MarksMoved,
        match=rf"^the marks of {pipeline} moved while this ingest ran \(now at move 1, it read "
        r"them at move 0\)",
    ):
        people.admin.marks.advance_marks(
            pipeline, serial=0, dataset_id=other.id, marks=_marks(other, 20)
        )
    with pytest.raises(MarksMoved):
        people.admin.marks.advance_marks(
            pipeline, serial=5, dataset_id=other.id, marks=_marks(other, 20)
        )
    stored = people.alice.marks.ingest_marks(pipeline)
    assert stored is not None and (stored.serial, stored.dataset_id) == (1, first.id)


def test_marks_need_a_stored_dataset(people: People) -> None:
    pipeline = unique("nowhere")
    with pytest.raises(NotFoundError, match=r"^no dataset with id 987654321$"):
        people.alice.marks.advance_marks(pipeline, serial=0, dataset_id=987654321, marks={})
    assert people.alice.marks.ingest_marks(pipeline) is None
