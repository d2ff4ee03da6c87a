"""Typed profiles and lineage records: what is stored reads back as it was written.

A dataset's profile and its sources' lineage are typed inside mlship and JSON only where they are
stored. Datasets stored by earlier versions hold that JSON, so the typed records must read it and
write it back in exactly the same shape.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.data.dataset_profile import ColumnProfile, DatasetProfile, Histogram, TopValue
from mlship.data.lineage import FileLineage, QueryLineage, lineage_from_json
from mlship.data.profile import profile_frame, profile_of
from mlship.data.sources import read_source
from mlship.errors import DataError
from mlship.spec.data import Source

STORED = {
    "rows": 3,
    "columns": [
        {
            "name": "amount",
            "dtype": "Float64",
            "kind": "numeric",
            "count": 2,
            "missing": 1,
            "missing_share": 1 / 3,
            "distinct": 2,
            "min": 1.5,
            "max": 4.0,
            "mean": 2.75,
            "std": 1.7677669529663689,
            "zeros": 0,
            "infinite": 0,
            "quantiles": {
                "p01": 1.525,
                "p05": 1.625,
                "p25": 2.125,
                "p50": 2.75,
                "p75": 3.375,
                "p95": 3.875,
                "p99": 3.975,
            },
            "histogram": {"edges": [1.5, 2.75, 4.0], "counts": [1, 1]},
        },
        {
            "name": "city",
            "dtype": "String",
            "kind": "string",
            "count": 3,
            "missing": 0,
            "missing_share": 0.0,
            "distinct": 2,
            "top": [{"value": "Zürich", "count": 2}, {"value": "Bern", "count": 1}],
            "min_length": 4,
            "max_length": 6,
            "mean_length": 5.333333333333333,
        },
        {
            "name": "active",
            "dtype": "Boolean",
            "kind": "boolean",
            "count": 3,
            "missing": 0,
            "missing_share": 0.0,
            "distinct": 2,
            "true": 2,
            "false": 1,
        },
        {
            "name": "seen",
            "dtype": "Datetime(time_unit='us', time_zone='UTC')",
            "kind": "datetime",
            "count": 1,
            "missing": 2,
            "missing_share": 2 / 3,
            "distinct": 1,
            "min": "2024-01-01T00:00:00+00:00",
            "max": "2024-01-01T00:00:00+00:00",
            "histogram": {"edges": [], "counts": []},
        },
        {
            "name": "tags",
            "dtype": "List(Int64)",
            "kind": "other",
            "count": 3,
            "missing": 0,
            "missing_share": 0.0,
            "distinct": None,
        },
    ],
}
"""A profile in the shape mlship has always stored."""


def test_a_stored_profile_reads_back_typed_and_writes_back_unchanged() -> None:
    profile = DatasetProfile.from_json(json.loads(json.dumps(STORED)))
    assert profile.rows == 3
    amount, city, active, seen, tags = profile.columns
    assert amount.kind == "numeric" and amount.quantiles["p50"] == 2.75
    assert amount.histogram == Histogram((1.5, 2.75, 4.0), (1, 1))
    assert city.top == (TopValue("Zürich", 2), TopValue("Bern", 1))
    assert (active.true_count, active.false_count) == (2, 1)
    assert seen.min == "2024-01-01T00:00:00+00:00"
    assert tags.distinct is None and tags.histogram is None
    assert profile.column("city") is city and profile.column("nope") is None
    assert profile.to_json() == STORED
    assert json.dumps(profile.to_json(), sort_keys=True) == json.dumps(STORED, sort_keys=True)


def test_an_older_column_without_the_newer_fields_reads_with_defaults() -> None:
    column = ColumnProfile.from_json({"name": "x", "kind": "numeric", "count": 2})
    assert (column.infinite, column.zeros, column.quantiles) == (0, 0, {})
    assert column.histogram is None
    assert column.to_json()["histogram"] == {"edges": [], "counts": []}


cells = st.one_of(
    st.integers(-1000, 1000),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.text(alphabet="abé ,", max_size=4),
    st.booleans(),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),
)


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    rows = draw(st.integers(0, 8))
    columns = {}
    for index, kind in enumerate(draw(st.lists(st.sampled_from(range(5)), max_size=4))):
        values = draw(st.lists(st.one_of(st.none(), cells), min_size=rows, max_size=rows))
        kept = [v for v in values if v is not None]
        first = kept[0] if kept else None
        same = [v if type(v) is type(first) else None for v in values]
        if kind == 4:  # dates
            same = [
                None if v is None else (datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=i))
                for i, v in enumerate(values)
            ]
        columns[f"c{index}"] = pl.Series(same, strict=False)
    return pl.DataFrame(columns)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(frame=frames())
def test_every_computed_profile_survives_its_json(frame: pl.DataFrame) -> None:
    typed = profile_of(frame, bins=4, top=2)
    stored = json.loads(json.dumps(profile_frame(frame, bins=4, top=2), allow_nan=False))
    assert typed.to_json() == stored
    assert DatasetProfile.from_json(stored) == DatasetProfile.from_json(typed.to_json())
    assert DatasetProfile.from_json(stored).to_json() == stored


def test_source_lineage_is_typed_and_stored_as_before(tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text("id\n1\n2\n", encoding="utf-8")
    data = read_source(Source(path="orders.csv"), tmp_path)
    assert isinstance(data.origin, FileLineage)
    assert data.origin.location == str(tmp_path / "orders.csv")
    assert lineage_from_json(json.loads(json.dumps(data.lineage))) == data.origin
    record = {
        "name": "db",
        "kind": "query",
        "url": "sqlite:///x.db",
        "query": "SELECT 1",
        "format": "sql",
        "rows": 1,
    }
    query = lineage_from_json(record)
    assert query == QueryLineage("db", "sqlite:///x.db", "SELECT 1", 1)
    assert query.to_json() == record


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"name": "a", "kind": "file", "format": "csv"}, "has no 'path'"),
        ({"name": "a", "kind": "query", "url": "u", "query": "q"}, "has no 'rows'"),
        (
            {"name": "a", "path": "p", "format": "csv", "rows": "many", "sha256": "", "bytes": 1},
            "is malformed",
        ),
    ],
)
def test_a_stored_source_record_that_is_not_one_is_refused(
    record: dict[str, object], expected: str
) -> None:
    with pytest.raises(DataError, match=expected):
        lineage_from_json(record)
