"""Reading a file in batches gives what reading it whole gives, and a dataset written in parts
has the hash of the same rows in memory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from mlship.data import dataset_files
from mlship.data.dataset_files import PartWriter, file_frame_hash
from mlship.data.readers import file_reader_for
from mlship.data.readers.batched import BatchTally, can_batch, file_batches
from mlship.data.versioning import frame_hash
from mlship.errors import DataError
from mlship.spec.data import Source


def _whole_and_batched(path: Path, block: int) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    reader = file_reader_for(Source(path=str(path)), path.parent)
    whole = reader.read()
    expected = whole.frame.with_columns(whole.places().alias("place"))
    tally = BatchTally()
    parts = [
        data.frame.with_columns(data.places().alias("place"))
        for data in file_batches(reader, "x", tally, block_bytes=block, batch_rows=7)
    ]
    return expected, pl.concat(parts), tally.rows


def test_csv_batches_are_cut_outside_quoted_values_and_keep_their_lines(tmp_path: Path) -> None:
    rows = ["id,text,n"]
    for i in range(300):
        text = f'"line one of {i}\nline two, with a comma"' if i % 17 == 0 else f"plain {i}"
        rows.append(f"{i},{text},{i * 3}")
    path = tmp_path / "quoted.csv"
    path.write_text("\n".join(rows) + "\n")
    whole, batched, counted = _whole_and_batched(path, block=200)
    assert batched.equals(whole)
    assert counted == 300


def test_parquet_batches_number_their_rows_from_where_they_start(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    pl.DataFrame({"a": list(range(50)), "b": [str(i) for i in range(50)]}).write_parquet(path)
    whole, batched, _ = _whole_and_batched(path, block=1)
    assert batched.equals(whole)
    assert batched["place"].to_list() == list(range(1, 51))


def test_a_short_row_in_a_later_block_is_named_by_its_line_in_the_file(tmp_path: Path) -> None:
    lines = ["a,b"] + [f"{i},{i}" for i in range(500)]
    lines[400] = "399"
    path = tmp_path / "short.csv"
    path.write_text("\n".join(lines) + "\n")
    reader = file_reader_for(Source(path=str(path)), tmp_path)
    with pytest.raises(DataError, match=r"line 401 has 1 field\(s\), but the header has 2"):
        list(file_batches(reader, "x", BatchTally(), block_bytes=256))


def test_utf16_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes("a\n1\n".encode("utf-16"))
    reader = file_reader_for(Source(path=str(path), encoding="utf-16"), tmp_path)
    assert can_batch(reader) == "a utf-16 file cannot be cut at line ends byte-wise"


def test_a_dataset_written_in_parts_has_the_in_memory_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = pl.DataFrame(
        {
            "n": [1, 2, None, 4, 5, 6, 7],
            "flag": [True, None, False, True, True, False, True],
            "text": ["x", None, "z", "q", "w", "e", "r"],
            "kind": pl.Series(list("mnmnmnm"), dtype=pl.Categorical),
            "day": [dt.date(2026, 1, i) for i in range(1, 8)],
            "x": [1.5, None, 2.0, 3.0, 4.0, 5.0, 6.0],
            "whole": list(range(7)),
        }
    )
    monkeypatch.setattr(dataset_files, "ROW_GROUP_ROWS", 2)
    path = tmp_path / "parts.parquet"
    with PartWriter(path) as writer:
        for start, length in ((0, 1), (1, 2), (3, 4)):  # the first part has no nulls at all
            writer.write(frame.slice(start, length))
    assert file_frame_hash(path) == frame_hash(frame.to_pandas())
    assert pl.read_parquet(path).equals(frame)


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "never.parquet"

    def interrupted() -> None:
        with PartWriter(path) as writer:
            writer.write(pl.DataFrame({"a": [1]}))
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted()
    assert list(tmp_path.iterdir()) == []


def _plan(tmp_path: Path, extra: str, sources: str = "") -> tuple[object, str | None]:
    from mlship.data.stream_ingest import stream_plan
    from mlship.spec.loader import load_spec

    (tmp_path / "a.csv").write_text("id,x,y\n1,2,yes\n2,3,no\n")
    (tmp_path / "b.csv").write_text("id,z\n1,2\n")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        "name: p\ntask: classification\nsources:\n  - {name: a, path: a.csv}\n" + sources
        + "columns:\n  - {name: id, type: string, role: id}\n"
        + f"  - {{name: x, type: float{extra}}}\n"
        + "  - {name: y, type: category, role: target}\n"
        + "models: [{name: m, estimator: logistic_regression}]\nmetric: accuracy\n"
    )  # fmt: skip
    return stream_plan(load_spec(spec), 0)


def test_what_needs_every_row_is_read_whole_with_a_reason(tmp_path: Path) -> None:
    reader, why = _plan(tmp_path, "")
    assert reader is not None and why is None
    reader, why = _plan(tmp_path, ", checks: [{outliers: {method: iqr, threshold: 3}}]")
    assert reader is None
    assert why is not None and "is read whole: the outliers check of 'x'" in why
    joined = (
        "  - {name: b, path: b.csv}\n"
        "combine: {method: join, base: a, joins: [{source: b, on: [id]}]}\n"
    )
    reader, why = _plan(tmp_path, "", joined)
    assert reader is None
    assert why is not None and "combines several sources" in why


@pytest.mark.parametrize("rows", [10, 1_000, 1_001])
def test_a_dataset_sample_is_every_kth_row_of_the_columns_asked_for(
    tmp_path: Path, rows: int
) -> None:
    from mlship.store.artifacts import LocalArtifactStore
    from mlship.store.entities import Dataset

    frame = pl.DataFrame({"i": range(rows), "x": [i * 0.5 for i in range(rows)], "s": "a"})
    path = tmp_path / "table.parquet"
    frame.write_parquet(path, row_group_size=128)
    store = LocalArtifactStore(tmp_path / "artifacts", signer=None)
    ref = store.put_file(path)
    dataset = Dataset(
        id=1, data_hash="h", artifact_sha256=ref.sha256, n_rows=rows, n_columns=3,
        columns=[], sources=[], created_at=dt.datetime.now(dt.UTC),
    )  # fmt: skip
    sample = dataset_files.sample_dataset(dataset, store, ["x", "absent", "i"], max_rows=100)
    assert list(sample.columns) == ["x", "i"]  # the order asked for; an absent column left out
    step = -(-rows // 100)
    assert sample["i"].tolist() == list(range(0, rows, step))
    assert len(sample) <= 100
    assert sample["x"].tolist() == [i * 0.5 for i in range(0, rows, step)]
