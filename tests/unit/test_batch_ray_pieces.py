"""How ``mlship predict --executor ray`` cuts a Parquet dataset into pieces, and reads one back
with each row's file and number (no Ray needed: this is the driver's and the actor's own code)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlship.errors import DataError
from mlship.serve.batch_ray import PART, ROW, Piece, cut_pieces, parquet_files, read_piece


def _write(path: Path, start: int, rows: int, group: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"n": range(start, start + rows)})
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=group)


def test_pieces_follow_row_groups_and_never_exceed_the_chunk(tmp_path: Path) -> None:
    _write(tmp_path / "b" / "part-1.parquet", 0, 250, group=100)  # groups of 100, 100, 50
    _write(tmp_path / "a.parquet", 1000, 30, group=30)
    (tmp_path / "notes.txt").write_text("not data")
    files = parquet_files(tmp_path)
    assert files == [tmp_path / "a.parquet", tmp_path / "b" / "part-1.parquet"]
    pieces = cut_pieces(files, chunk_rows=60)
    assert pieces == [
        Piece(0, 0, 30),
        Piece(1, 0, 60), Piece(1, 60, 40),
        Piece(1, 100, 60), Piece(1, 160, 40),
        Piece(1, 200, 50),
    ]  # fmt: skip


def test_a_piece_is_read_with_its_file_and_row_numbers(tmp_path: Path) -> None:
    _write(tmp_path / "p.parquet", 0, 250, group=100)
    raw = read_piece(tmp_path / "p.parquet", Piece(3, 160, 40))
    assert raw["n"].tolist() == list(range(160, 200))
    assert raw[ROW].tolist() == list(range(161, 201))
    assert set(raw[PART]) == {3}


def test_nothing_to_score_is_refused_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"holds no \.parquet files"):
        parquet_files(tmp_path)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: is not a valid Parquet file"):
        cut_pieces(parquet_files(tmp_path), 10)
