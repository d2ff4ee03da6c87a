"""The mark logic of incremental ingest: what a growing file or table adds since its mark, a
rewritten file noticed, the overlap of change times, rows replaced by key, and specs refused."""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from mlship.config import Settings
from mlship.data.growing import Rewritten, read_increment
from mlship.data.incremental import Growth, is_incremental, merge
from mlship.errors import DataError
from mlship.spec.data import Source
from mlship.spec.models import PipelineSpec
from mlship.store.entities import Dataset
from mlship.workspace import Workspace

HEADER = "id,amount\n"


def _csv(tmp_path: Path, text: str) -> Source:
    (tmp_path / "rows.csv").write_text(text)
    return Source(path="rows.csv", incremental={"mode": "append"})


def test_a_growing_csv_gives_only_its_new_whole_lines_with_their_own_line_numbers(
    tmp_path: Path,
) -> None:
    source = _csv(tmp_path, HEADER + "1,10\n2,20\n")
    first = read_increment(source, tmp_path, None)
    assert first.data.frame["id"].to_list() == ["1", "2"]
    assert first.mark["bytes"] == len(HEADER + "1,10\n2,20\n") and first.mark["lines"] == 3
    with (tmp_path / "rows.csv").open("a") as handle:
        handle.write("3,30\n4,40\n5,5")  # the last line is still being written
    second = read_increment(source, tmp_path, first.mark)
    assert second.data.frame["id"].to_list() == ["3", "4"]
    assert second.data.places().to_list() == [4, 5]  # the lines of the file, not of the part
    assert second.read["waiting_bytes"] == len("5,5")
    nothing = read_increment(source, tmp_path, second.mark)
    assert nothing.data.frame.is_empty() and nothing.mark == second.mark


def test_a_rewritten_file_is_told_apart_from_a_grown_one(tmp_path: Path) -> None:
    source = _csv(tmp_path, HEADER + "1,10\n2,20\n")
    mark = read_increment(source, tmp_path, None).mark
    (tmp_path / "rows.csv").write_text(HEADER + "1,11\n2,20\n3,30\n")
    with pytest.raises(Rewritten, match=r"no longer starts with the 20 bytes read up to the last"):
        read_increment(source, tmp_path, mark)
    (tmp_path / "rows.csv").write_text(HEADER + "1,10\n")
    with pytest.raises(Rewritten, match=r"is shorter than the 20 bytes read"):
        read_increment(source, tmp_path, mark)


def test_json_lines_grow_and_keep_their_columns_when_nothing_is_new(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"id": 1, "kind": "a"}\n')
    source = Source(path="events.jsonl", incremental={"mode": "append"})
    first = read_increment(source, tmp_path, None)
    with path.open("a") as handle:
        handle.write('\n{"id": 2, "kind": "b"}\n')
    second = read_increment(source, tmp_path, first.mark)
    assert second.data.frame["id"].to_list() == [2] and second.data.places().to_list() == [3]
    empty = read_increment(source, tmp_path, second.mark)
    assert empty.data.frame.columns == ["id", "kind"] and empty.data.frame.is_empty()


def _table(tmp_path: Path, rows: list[tuple[int, str]]) -> None:
    with sqlite3.connect(tmp_path / "db.sqlite") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, changed TEXT)")
        conn.executemany("INSERT OR REPLACE INTO t VALUES (?, ?)", rows)


def test_change_times_are_read_again_over_the_overlap_written_as_the_database_writes_them(
    tmp_path: Path,
) -> None:
    _table(tmp_path, [(1, "2026-01-01 10:00:00"), (2, "2026-01-01 10:10:00")])
    source = Source(
        url="sqlite:///db.sqlite",
        query="SELECT id, changed FROM t;",
        key=["id"],
        incremental={"updated_at": "changed", "overlap": "5m"},
    )
    first = read_increment(source, tmp_path, None)
    assert first.mark["shown"] == "2026-01-01 10:10:00"
    _table(tmp_path, [(3, "2026-01-01 10:07:00")])  # committed late, with an earlier time
    second = read_increment(source, tmp_path, first.mark)
    assert second.read["read_from"] == "'2026-01-01 10:05:00'"
    assert second.data.frame["id"].to_list() == [3, 2]  # ordered by change time
    assert second.mark == first.mark  # nothing newer than the mark: it stays


def test_an_increasing_key_reads_past_its_mark_only(tmp_path: Path) -> None:
    _table(tmp_path, [(1, "x"), (2, "y")])
    source = Source(
        url="sqlite:///db.sqlite",
        query="SELECT id, changed FROM t",
        incremental={"key": "id"},
    )
    first = read_increment(source, tmp_path, None)
    _table(tmp_path, [(3, "z"), (1, "changed below the mark")])
    second = read_increment(source, tmp_path, first.mark)
    assert second.data.frame["id"].to_list() == [3]
    assert (second.read["from"], second.read["to"]) == ("2", "3")
    gone = Source(
        url="sqlite:///db.sqlite",
        query="SELECT changed FROM t",
        incremental={"key": "id"},
    )
    no_id = r"returns no column 'id', which `incremental` reads the source by; it returns: changed$"
    with pytest.raises(DataError, match=no_id):
        read_increment(gone, tmp_path, None)


def _stored(workspace: Workspace, frame: pl.DataFrame) -> Dataset:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    sha = workspace.artifacts.put_bytes(buffer.getvalue()).sha256
    return Dataset(
        id=1,
        data_hash="f" * 64,
        artifact_sha256=sha,
        n_rows=frame.height,
        n_columns=frame.width,
        columns=[],
        sources=[],
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_rows_changed_again_replace_their_older_copy_and_are_counted(tmp_path: Path) -> None:
    workspace = Workspace.open(Settings(home=tmp_path / "ws", user="tester"))
    try:
        before = pl.DataFrame({"id": [1, 2, 3], "amount": [1.0, 2.0, 3.0]})
        previous = _stored(workspace, before)
        growth = Growth("p", 1, previous, {}, "d", replaced_by=("id",))
        new = pl.DataFrame({"id": [2, 3, 4], "amount": [2.0, 30.0, 4.0]})
        merged, record = merge(growth, new, workspace)
        assert merged.to_dicts() == [
            {"id": 1, "amount": 1.0},
            {"id": 2, "amount": 2.0},
            {"id": 3, "amount": 30.0},
            {"id": 4, "amount": 4.0},
        ]
        assert (record["rows_added"], record["rows_replaced"], record["rows_unchanged"]) == (
            1,
            1,
            1,
        )
        assert record["previous"] == "f" * 64 and record["deletions"] == "unsupported"
        appended, _ = merge(Growth("p", 1, previous, {}, "d"), new, workspace)
        assert appended.height == 6
        with pytest.raises(DataError, match=r"the new rows' columns \(id Int64\) differ"):
            merge(growth, new.select("id"), workspace)
    finally:
        workspace.close()


def _spec(sources: list[dict[str, object]], **extra: object) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "p",
            "task": "classification",
            "sources": sources,
            "columns": [
                {"name": "id", "type": "integer"},
                {"name": "y", "type": "category", "role": "target"},
            ],
            "models": [{"estimator": "logistic_regression"}],
            "metric": "accuracy",
            **extra,
        }
    )


def test_specs_that_cannot_simply_add_rows_are_refused() -> None:
    growing: dict[str, object] = {"name": "a", "path": "a.csv", "incremental": {"mode": "append"}}
    assert not is_incremental(_spec([{"path": "a.csv"}]))
    assert is_incremental(_spec([growing]))
    with pytest.raises(DataError, match=r"source\(s\) b have no `incremental`, but a do"):
        is_incremental(_spec([growing, {"name": "b", "path": "b.csv"}]))
    with pytest.raises(ValueError, match=r"needs the source's `key`"):
        Source(url="sqlite://", query="SELECT 1", incremental={"updated_at": "t"})
    with pytest.raises(ValueError, match=r"reads the new lines of a growing CSV or JSON-lines"):
        Source(path="a.parquet", incremental={"mode": "append"})
    with pytest.raises(ValueError, match=r"which utf-16 does not write alone; convert the file"):
        Source(path="a.csv", encoding="utf-16", incremental={"mode": "append"})
    with pytest.raises(ValueError, match=r"needs exactly one of `mode: append`"):
        Source(path="a.csv", incremental={"mode": "append", "key": "id"})


def test_a_folder_gives_the_rows_of_its_new_files_and_notices_a_changed_one(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "2026-01-01.csv").write_text(HEADER + "1,10\n2,20\n")
    source = Source(path="exports/*.csv", incremental={"mode": "append"})
    first = read_increment(source, tmp_path, None)
    assert first.data.frame["id"].to_list() == ["1", "2"]
    (folder / "2026-01-02.csv").write_text(HEADER + "3,30\n")
    (folder / "notes.txt").write_text("not matched")
    second = read_increment(source, tmp_path, first.mark)
    assert second.data.frame["id"].to_list() == ["3"] and second.data.places().to_list() == [2]
    assert second.read["files"] == [str(folder / "2026-01-02.csv")]
    assert (second.read["from"], second.read["to"]) == ("1 file(s)", "2 file(s)")
    (folder / "2026-01-01.csv").unlink()
    gone = read_increment(source, tmp_path, second.mark)
    assert gone.data.frame.is_empty() and gone.read["missing"] == [str(folder / "2026-01-01.csv")]
    (folder / "2026-01-02.csv").write_text(HEADER + "3,31\n")
    with pytest.raises(Rewritten, match=r"2026-01-02.csv was read by an earlier ingest and has"):
        read_increment(source, tmp_path, gone.mark)


SPEC = """\
name: grow
task: classification
sources:
  - {name: rows, path: rows.csv, incremental: {mode: append}}
columns:
  - {name: id, type: integer, role: id}
  - {name: amount, type: float, checks: [{min: MIN}]}
  - {name: y, type: category, role: target}
models:
  - {estimator: logistic_regression}
metric: accuracy
"""


def _rows(first: int, last: int) -> str:
    return "".join(f"{i},{i * 1.5},{'a' if i % 2 else 'b'}\n" for i in range(first, last))


def test_a_changed_data_spec_starts_over_and_a_stale_read_cannot_move_the_marks(
    tmp_path: Path,
) -> None:
    from mlship.data.incremental import commit, read_growth
    from mlship.data.ingest import ingest
    from mlship.spec import load_spec
    from mlship.store.repositories import MarksMoved

    (tmp_path / "rows.csv").write_text("id,amount,y\n" + _rows(0, 20))
    spec = tmp_path / "grow.yaml"
    spec.write_text(SPEC.replace("MIN", "0"))
    workspace = Workspace.open(Settings(home=tmp_path / "ws", user="tester", n_jobs=1))
    try:
        first = ingest(load_spec(spec), workspace)
        stale = read_growth(load_spec(spec), workspace, lambda _: None)
        with (tmp_path / "rows.csv").open("a") as handle:
            handle.write(_rows(20, 30))
        second = ingest(load_spec(spec), workspace)
        assert second.validation["increment"]["previous"] == first.dataset.data_hash
        assert second.dataset.n_rows == 30
        with pytest.raises(MarksMoved, match=r"^the marks of grow moved while this ingest ran"):
            commit(stale, first.dataset, workspace)

        told: list[str] = []
        spec.write_text(SPEC.replace("MIN", "-1"))
        growth = read_growth(load_spec(spec), workspace, told.append)
        assert growth.previous is None and growth.restarted
        assert told == [
            "Reading every source from its start: the data spec changed since the last ingest"
        ]
        third = ingest(load_spec(spec), workspace)
        increment = third.validation["increment"]
        assert (increment["restarted"], increment["rows_read"], third.dataset.n_rows) == (
            "the data spec changed since the last ingest",
            30,
            30,
        )
    finally:
        workspace.close()


def test_a_table_that_gave_no_row_yet_is_read_from_its_start(tmp_path: Path) -> None:
    _table(tmp_path, [])
    source = Source(
        url="sqlite:///db.sqlite",
        query="SELECT id, changed FROM t",
        incremental={"key": "id"},
    )
    empty = read_increment(source, tmp_path, None)
    assert empty.data.frame.is_empty() and "literal" not in empty.mark
    _table(tmp_path, [(1, "x")])
    assert read_increment(source, tmp_path, empty.mark).data.frame["id"].to_list() == [1]


def test_retention_keeps_the_dataset_the_marks_point_at(tmp_path: Path) -> None:
    from mlship.data.ingest import ingest
    from mlship.spec import load_spec
    from mlship.store.references import unused_datasets

    (tmp_path / "rows.csv").write_text("id,amount,y\n" + _rows(0, 10))
    spec = tmp_path / "grow.yaml"
    spec.write_text(SPEC.replace("MIN", "0"))
    workspace = Workspace.open(Settings(home=tmp_path / "ws", user="tester", n_jobs=1))
    try:
        first = ingest(load_spec(spec), workspace).dataset
        with (tmp_path / "rows.csv").open("a") as handle:
            handle.write(_rows(10, 12))
        second = ingest(load_spec(spec), workspace).dataset
        with workspace.metadata.transaction() as session:
            later = datetime(2100, 1, 1, tzinfo=UTC)
            dropped = {d.id for d in unused_datasets(session, keep=0, before=later)}
        assert first.id in dropped and second.id not in dropped
    finally:
        workspace.close()


def test_a_key_mixing_numbers_and_text_is_refused_rather_than_skipping_rows(
    tmp_path: Path,
) -> None:
    with sqlite3.connect(tmp_path / "db.sqlite") as conn:
        conn.execute("CREATE TABLE t (id INTEGER, v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, "a"), (99, "b"), ("n/a", "c")])
    source = Source(
        url="sqlite:///db.sqlite", query="SELECT id, v FROM t", incremental={"key": "id"}
    )
    with pytest.raises(DataError, match=r"column 'id' mixes numbers and text \(e.g. 'n/a'\)"):
        read_increment(source, tmp_path, None)
