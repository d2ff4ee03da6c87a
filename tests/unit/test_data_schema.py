"""Checking data against the schema: every problem names the file, row, column and expectation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlship.data.schema import coerce_frame
from mlship.data.sources import read_rows
from mlship.errors import DataError
from mlship.spec.models import Column

COLUMNS = [
    Column(name="id", type="string", role="id", nullable=False),
    Column(name="age", type="integer"),
    Column(name="income", type="float", nullable=False),
    Column(name="active", type="boolean"),
    Column(name="plan", type="category"),
    Column(name="joined", type="datetime", role="ignore"),
]


def _csv(tmp_path: Path, text: str) -> pd.DataFrame:
    path = tmp_path / "in.csv"
    path.write_text(text)
    return read_rows(path, "csv").frame.to_pandas()


def test_values_get_their_declared_types(tmp_path: Path) -> None:
    raw = _csv(
        tmp_path,
        "id,age,income,active,plan,joined,extra\n"
        "a,31,10.5,yes,gold,2024-01-02,x\n"
        "b,,7,FALSE,,2024-02-03T10:00:00,y\n",
    )
    frame = coerce_frame(raw, COLUMNS, "in.csv", csv_lines=True)
    assert list(frame.columns) == [c.name for c in COLUMNS]
    assert str(frame["age"].dtype) == "Int64"
    assert frame["age"].isna().tolist() == [False, True]
    assert frame["income"].tolist() == [10.5, 7.0]
    assert frame["active"].tolist() == [True, False]
    assert frame["plan"].isna().tolist() == [False, True]
    assert frame["joined"].dt.year.tolist() == [2024, 2024]


def test_missing_columns_are_named_with_what_the_file_has(tmp_path: Path) -> None:
    raw = _csv(tmp_path, "id,age\na,1\n")
    with pytest.raises(DataError) as info:
        coerce_frame(raw, COLUMNS, "in.csv")
    message = str(info.value)
    assert "in.csv: missing column(s) 'income', 'active', 'plan', 'joined'" in message
    assert "the file has: id, age" in message


def test_unparsable_values_name_row_line_column_and_type(tmp_path: Path) -> None:
    raw = _csv(
        tmp_path,
        "id,age,income,active,plan,joined\n"
        "a,31,10,yes,gold,2024-01-02\n"
        "b,thirty,10,maybe,gold,not a date\n"
        "c,4.5,,no,gold,2024-01-02\n",
    )
    with pytest.raises(DataError) as info:
        coerce_frame(raw, COLUMNS, "customers.csv", csv_lines=True)
    message = str(info.value)
    assert message.startswith("customers.csv: 5 problem(s)")
    assert "row 2 (line 3), column 'age': 'thirty' is not an integer" in message
    assert "row 2 (line 3), column 'active': 'maybe' is not a boolean" in message
    assert "row 2 (line 3), column 'joined': 'not a date' is not a date/time" in message
    assert "row 3 (line 4), column 'age': '4.5' is not an integer (it has a fraction)" in message
    assert "row 3 (line 4), column 'income': is empty, but the column is not nullable" in message


def test_many_bad_rows_are_summarised(tmp_path: Path) -> None:
    rows = "".join(f"r{i},x,1,yes,a,2024-01-01\n" for i in range(12))
    raw = _csv(tmp_path, "id,age,income,active,plan,joined\n" + rows)
    with pytest.raises(DataError, match=r"\.\.\. and 7 more rows in column 'age'"):
        coerce_frame(raw, COLUMNS, "in.csv")


def test_parquet_sources_keep_types_and_are_still_checked(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pd.DataFrame(
        {
            "id": ["a", "b"],
            "age": [1.0, 2.5],
            "income": [1, 2],
            "active": [True, False],
            "plan": ["x", None],
            "joined": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    ).to_parquet(path)
    raw = read_rows(path, "parquet").frame.to_pandas()
    with pytest.raises(DataError, match=r"row 2, column 'age': 2\.5 is not an integer"):
        coerce_frame(raw, COLUMNS, str(path))


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_rows(tmp_path / "nope.csv", "csv")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    # Scoring reads files with ingest's readers, so the message is ingest's.
    with pytest.raises(DataError, match=r"broken\.parquet: is not a valid Parquet file"):
        read_rows(broken, "parquet")


def test_declared_value_formats_apply_to_scored_files(tmp_path: Path) -> None:
    """Scoring reads a column written as its training data was: null tokens, digit groups,
    decimal mark, percent, a date/time format and a zone."""
    values = {"null_values": ["n/a", "-"], "thousands": ".", "decimal": ","}
    columns = [
        Column.model_validate({"name": "n", "type": "integer", "values": values}),
        Column.model_validate(
            {"name": "x", "type": "float", "values": {**values, "percent": "fraction"}}
        ),
        Column.model_validate({"name": "ok", "type": "boolean", "values": {"null_values": ["-"]}}),
        Column.model_validate({"name": "at", "type": "datetime",
                               "values": {"format": "%d/%m/%Y %H:%M", "timezone": "Europe/Paris"}}),
        Column.model_validate({"name": "s", "type": "string", "values": {"null_values": ["-"]}}),
    ]  # fmt: skip
    raw = _csv(
        tmp_path,
        'n,x,ok,at,s\n1.234,"12,5%",yes,02/07/2024 10:00,a\nn/a,-,-,01/01/2024 00:00,-\n',
    )
    frame = coerce_frame(raw, columns, "in.csv", csv_lines=True)
    assert frame["n"].tolist()[0] == 1234 and pd.isna(frame["n"].iloc[1])
    assert frame["x"].iloc[0] == pytest.approx(0.125) and pd.isna(frame["x"].iloc[1])
    assert bool(frame["ok"].iloc[0]) is True
    assert pd.isna(frame["ok"].iloc[1])
    assert frame["at"].tolist() == [
        pd.Timestamp("2024-07-02 08:00", tz="UTC"),
        pd.Timestamp("2023-12-31 23:00", tz="UTC"),
    ]
    assert frame["s"].iloc[0] == "a"
    bad = _csv(tmp_path, "n,x,ok,at,s\n12.34,1,yes,2024-07-02,a\n")
    with pytest.raises(DataError) as refused:
        coerce_frame(bad, columns, "in.csv", csv_lines=True)
    assert str(refused.value) == (
        "in.csv: 2 problem(s)\n  row 1 (line 2), column 'n': '12.34' is not an integer\n"
        "  row 1 (line 2), column 'at': '2024-07-02' is not a date/time"
    )
