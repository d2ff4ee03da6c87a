"""Stream features offline, from a table of events: its kinds, duplicates and refusals."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from mlship.errors import DataError
from mlship.streams.offline import offline_features
from tests.streamfeatures import BASE, feature_spec

FEATURES = [
    {"name": "events_10m", "agg": "count", "window": {"size": "10m"}},
    {
        "name": "amount_1h_mean",
        "agg": "mean",
        "column": "amount",
        "window": {"size": "1h", "slide": "5m"},
    },
    {"name": "plan_last", "agg": "last", "column": "plan", "window": {"size": "1h"}},
]
SPEC = feature_spec(FEATURES)
EVENTS = {
    "id": ["3-0", "1-0", "2-0", "1-0", "4-0"],
    "position": [3, 1, 2, 1, 4],
    "customer_id": ["c1", "c1", "c2", "c1", "c1"],
    "ts": [BASE + 200, BASE + 100, BASE + 150, BASE + 100, BASE + 10],
    "amount": [4.0, 2.0, None, 2.0, 8.0],
    "plan": ["pro", "basic", None, "basic", "team"],
}
# by position: 1 (c1), 2 (c2), 3 (c1), 4 (c1, 190s behind: in time)
EXPECTED = [
    ("1-0", 1, 2.0, "basic"),
    ("2-0", 1, None, None),
    ("3-0", 2, 3.0, "pro"),
    ("4-0", 3, 14.0 / 3, "pro"),
]


def _rows(table: pa.Table) -> list[tuple[object, ...]]:
    return [
        (r["id"], r["events_10m"], r["amount_1h_mean"], r["plan_last"]) for r in table.to_pylist()
    ]


def test_one_row_per_id_in_position_order_from_any_kind_of_table() -> None:
    arrow = offline_features(pa.table(EVENTS), SPEC)
    assert _rows(arrow) == EXPECTED
    assert arrow.column_names[-5:] == [
        "events_10m",
        "amount_1h_mean",
        "plan_last",
        "late",
        "problem",
    ]
    assert arrow.schema.field("events_10m").type == pa.int64()
    from_polars = offline_features(pl.DataFrame(EVENTS), SPEC)
    assert isinstance(from_polars, pl.DataFrame)
    assert _rows(from_polars.to_arrow()) == EXPECTED
    from_pandas = offline_features(pd.DataFrame(EVENTS), SPEC)
    assert isinstance(from_pandas, pd.DataFrame)
    assert _rows(pa.Table.from_pandas(from_pandas, preserve_index=False)) == EXPECTED


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": None}, "id: no such column in the events; expected id, position and the events'"),
        ({"position": None}, "position: no such column in the events"),
        ({"late": [False] * 5}, "late: the events already have a column of that name"),
        ({"events_10m": [1] * 5}, "events_10m: the events already have a column of that name"),
        ({"position": ["3", "1", "2", "1", "4"]}, "position: row 1: '3' is not a whole number"),
    ],
)
def test_tables_it_cannot_use_are_refused_with_the_column(
    change: dict[str, object], message: str
) -> None:
    columns = {**EVENTS, **change}
    table = pa.table({name: values for name, values in columns.items() if values is not None})
    with pytest.raises(DataError) as caught:
        offline_features(table, SPEC)
    assert str(caught.value).startswith(message)


def test_something_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(DataError, match="events: expected a pyarrow Table or a polars or pandas"):
        offline_features([{"id": "1-0"}], SPEC)
