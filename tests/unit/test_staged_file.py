"""A file written piece by piece appears at its path only when complete, and an error leaves the
path as it was."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from mlship.data.dataset_files import PartWriter
from mlship.serve.batch_stream import AnswerWriter


def test_answers_appear_only_when_complete(tmp_path: Path) -> None:
    output = tmp_path / "out" / "answers.csv"
    with AnswerWriter(output, "csv") as writer:
        writer.write(pd.DataFrame({"prediction": [1, 0]}))
        assert not output.exists()
        writer.write(pd.DataFrame({"prediction": [1]}))
    assert output.read_text() == "prediction\n1\n0\n1\n"
    assert [p.name for p in output.parent.iterdir()] == ["answers.csv"]


@pytest.mark.parametrize("out_format", ["csv", "parquet"])
def test_an_error_keeps_what_was_there(tmp_path: Path, out_format: str) -> None:
    output = tmp_path / f"answers.{out_format}"
    output.write_text("before")

    def scoring_fails() -> None:
        with AnswerWriter(output, out_format) as writer:
            writer.write(pd.DataFrame({"prediction": [1, 0]}))
            raise RuntimeError("scoring failed")

    with pytest.raises(RuntimeError):
        scoring_fails()
    assert output.read_text() == "before"
    assert list(tmp_path.iterdir()) == [output]


def test_parts_are_parquet_row_groups_and_vanish_on_error(tmp_path: Path) -> None:
    path = tmp_path / "clean.parquet"
    with PartWriter(path, group_rows=2) as writer:
        writer.write(pl.DataFrame({"a": [1, 2, 3]}))
        writer.write(pl.DataFrame({"a": [None]}, schema={"a": pl.Int64}))
    assert pl.read_parquet(path)["a"].to_list() == [1, 2, 3, None]

    failed = tmp_path / "failed.parquet"
    writer = PartWriter(failed)
    writer.write(pl.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match="differ"):
        writer.write(pl.DataFrame({"b": [1]}))
    writer.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.parquet"]


def test_parquet_answers_keep_the_first_batch_schema(tmp_path: Path) -> None:
    output = tmp_path / "answers.parquet"
    with AnswerWriter(output, "parquet") as writer:
        writer.write(pd.DataFrame({"id": ["a"], "proba": [0.25]}))
        writer.write(pd.DataFrame({"id": ["b", "c"], "proba": [0.5, 1.0]}))
    found = pl.read_parquet(output)
    assert found.to_dict(as_series=False) == {"id": ["a", "b", "c"], "proba": [0.25, 0.5, 1.0]}
