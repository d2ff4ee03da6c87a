"""Windows, lateness and aggregations of stream features, with values worked out by hand."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.streams.aggregates import Point, aggregate
from mlship.streams.offline import offline_features
from mlship.streams.online import OnlineFeatures
from mlship.streams.windows import is_late, watermark, window_of
from tests.streamfeatures import BASE, event, feature_spec


def test_a_tumbling_window_holds_its_start_and_not_its_end() -> None:
    assert window_of(BASE + 60, 600, 600) == (BASE, BASE + 600)
    assert window_of(BASE, 600, 600) == (BASE, BASE + 600)
    assert window_of(BASE + 600, 600, 600) == (BASE + 600, BASE + 1200)
    assert window_of(BASE - 0.5, 600, 600) == (BASE - 600, BASE)


def test_a_sliding_window_is_the_latest_one_holding_the_time() -> None:
    # 1h every 10m: the window ending at the next 10-minute mark
    assert window_of(BASE + 3700, 3600, 600) == (BASE + 600, BASE + 4200)
    assert window_of(BASE + 4200, 3600, 600) == (BASE + 1200, BASE + 4800)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    st.floats(min_value=-6e10, max_value=2.5e11, allow_nan=False),
    st.sampled_from([(0.001, 0.001), (0.3, 0.1), (600.0, 600.0), (3600.0, 600.0), (86400.0, 60.0)]),
)
def test_an_event_is_always_in_its_own_window(time: float, shape: tuple[float, float]) -> None:
    size, slide = shape
    start, end = window_of(time, size, slide)
    assert start <= time < end
    assert end - slide <= time


def test_lateness_against_the_watermark() -> None:
    assert watermark(None, 5) is None
    assert watermark(BASE + 100, 5) == BASE + 95
    assert not is_late(BASE + 600, 60, None)
    assert not is_late(BASE + 600, 60, BASE + 659)
    assert is_late(BASE + 600, 60, BASE + 660)


def points(*values: object) -> list[Point]:
    return [Point(BASE + i, i, value) for i, value in enumerate(values)]  # type: ignore[arg-type]


def test_empty_windows() -> None:
    assert [aggregate(agg, []) for agg in ("count", "sum", "distinct_count")] == [0, 0, 0]
    assert [aggregate(agg, []) for agg in ("mean", "min", "max", "last")] == [None] * 4
    only_missing = points(None, math.nan)
    assert aggregate("count", only_missing) == 2
    assert aggregate("sum", only_missing) == 0
    assert aggregate("mean", only_missing) is None


def test_sums_and_means_do_not_depend_on_order() -> None:
    values = [1e16, 1.0, -1e16, 0.1, 0.2]
    assert aggregate("sum", points(*values)) == 1.3
    assert aggregate("sum", points(*reversed(values))) == 1.3
    assert aggregate("mean", points(*values)) == 1.3 / 5
    # an intermediate sum beyond the floats' range, a result within it
    assert aggregate("sum", points(1e308, 1e308, -1e308)) == 1e308
    assert aggregate("mean", points(1e308, 1e308)) == 1e308
    assert aggregate("sum", points(1e308, 1e308)) == math.inf


def test_numbers_as_text_and_what_counts_as_distinct() -> None:
    assert aggregate("mean", points("1.5", 2, "2.5e0")) == 2.0
    assert aggregate("min", points("10", 9.5)) == 9.5
    # 1 and 1.0 are one number; the text "1" is another value
    assert aggregate("distinct_count", points(1, 1.0, "1", None, "a", "a")) == 3


def test_last_is_the_latest_in_event_time_then_position() -> None:
    window = [Point(BASE + 5, 1, "b"), Point(BASE + 9, 2, "c"), Point(BASE + 9, 0, "a")]
    assert aggregate("last", window) == "c"
    assert aggregate("last", [*window, Point(BASE + 10, 3, None)]) == "c"


def test_a_value_that_is_not_a_number_is_refused_by_numeric_aggregates() -> None:
    with pytest.raises(ValueError, match="is not a number"):
        aggregate("sum", points("abc"))
    with pytest.raises(ValueError, match="is not a number"):
        aggregate("max", points(True))


HAND = [
    # position, seconds after BASE, amount
    (1, 60, 10),
    (2, 300, 20),
    (3, 1300, 30),
    (4, 2000, None),
    (5, 100, 1000),  # the watermark is at 1995: its windows closed at 600 (+60s lateness)
    (6, 1990, 40),  # out of order, within its window's lateness: in time
]
EXPECTED = [
    # count in 10m tumbling, mean in 1h every 10m, late
    (1, 10.0, False),
    (2, 15.0, False),
    (1, 20.0, False),
    (1, 20.0, False),
    (2, 15.0, True),  # scored with its window's values, never added to it
    (2, 25.0, False),  # (10 + 20 + 30 + 40) / 4: the late 1000 is not in it
]
FEATURES = [
    {"name": "events_10m", "agg": "count", "window": {"size": "10m"}},
    {
        "name": "amount_1h_mean",
        "agg": "mean",
        "column": "amount",
        "window": {"size": "1h", "slide": "10m"},
    },
]


def test_hand_computed_online_and_offline(redis_url: str) -> None:
    spec = feature_spec(FEATURES, max_delay="5s", allowed_lateness="1m", redis_url=redis_url)
    events = [
        event(p, {"customer_id": "c1", "ts": BASE + t, "amount": amount}) for p, t, amount in HAND
    ]
    online = OnlineFeatures(spec, redis_url)
    try:
        results = online.apply(events[:3]) + online.apply(events[3:])
    finally:
        online.close()
    got = [(r.values["events_10m"], r.values["amount_1h_mean"], r.late) for r in results]
    assert got == EXPECTED
    assert [r.problem for r in results] == [None] * 6

    table = pa.table(
        {
            "id": [e.id for e in events],
            "position": [e.position for e in events],
            "customer_id": ["c1"] * 6,
            "ts": [BASE + t for _, t, _ in HAND],
            "amount": [amount for _, _, amount in HAND],
        }
    )
    offline = offline_features(table, spec).to_pylist()
    assert [(r["events_10m"], r["amount_1h_mean"], r["late"]) for r in offline] == EXPECTED
