"""The online feature state in a real Redis: its layout, redeliveries, problems and trimming."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import redis

from mlship.errors import StorageError
from mlship.streams.offline import offline_features
from mlship.streams.online import FeatureResult, OnlineFeatures
from tests.streamfeatures import BASE, event, feature_spec

FEATURES = [
    {"name": "events_10m", "agg": "count", "window": {"size": "10m"}},
    {
        "name": "amount_1h_sum",
        "agg": "sum",
        "column": "amount",
        "window": {"size": "1h", "slide": "10m"},
    },
    {"name": "plan_last", "agg": "last", "column": "plan", "window": {"size": "1h"}},
]


def test_one_hash_per_entity_keyed_by_event_id(redis_url: str) -> None:
    spec = feature_spec(FEATURES, redis_url=redis_url)
    online = OnlineFeatures(spec, redis_url)
    try:
        online.apply(
            [
                event(1, {"customer_id": "c1", "ts": BASE + 10, "amount": 2.5, "plan": "pro"}),
                event(2, {"customer_id": "c1", "ts": BASE + 20, "amount": 1}),
                event(3, {"customer_id": 42, "ts": BASE + 30, "amount": "3"}),
            ]
        )
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        assert spec.online_store is not None
        prefix = f"{spec.online_store.prefix}:features-test:"
        keys = sorted(client.scan_iter(match=prefix + "*"))
        assert [key.rsplit(":", 1)[1] for key in keys] == ["42", "c1"]
        assert keys[1] == online.key("c1")
        stored = client.hgetall(online.key("c1"))
        assert json.loads(stored["1-0"]) == [1, BASE + 10.0, False, None, [2.5, "pro"]]
        assert json.loads(stored["2-0"]) == [2, BASE + 20.0, False, BASE + 5.0, [1, None]]
        client.close()
    finally:
        online.close()


def test_a_redelivery_is_counted_once_and_scored_the_same(redis_url: str) -> None:
    spec = feature_spec(FEATURES, redis_url=redis_url)
    first = event(1, {"customer_id": "c1", "ts": BASE + 10, "amount": 2.0})
    second = event(2, {"customer_id": "c1", "ts": BASE + 20, "amount": 3.0})
    third = event(3, {"customer_id": "c1", "ts": BASE + 30, "amount": 4.0})
    one = OnlineFeatures(spec, redis_url)
    other = OnlineFeatures(spec, redis_url)  # another consumer of the group, same state
    try:
        [a, b] = one.apply([first, second])
        # the other consumer claims the second after the first died before acknowledging it
        [b_again, c] = other.apply([second, third])
        [a_again] = one.apply([first])
    finally:
        one.close()
        other.close()
    assert b_again == FeatureResult(values=b.values, late=False, replayed=True)
    assert a_again == FeatureResult(values=a.values, late=False, replayed=True)
    assert not b.replayed and not c.replayed
    assert c.values == {"events_10m": 3, "amount_1h_sum": 9.0, "plan_last": None}
    assert len(one.entries("c1")) == 3


def test_problems_are_said_and_nothing_is_stored(redis_url: str) -> None:
    spec = feature_spec(FEATURES, redis_url=redis_url)
    online = OnlineFeatures(spec, redis_url)
    try:
        results = online.apply(
            [
                event(1, {"ts": BASE}),
                event(2, {"customer_id": "c1", "ts": "yesterday"}),
                event(3, {"customer_id": "c1", "ts": BASE, "amount": "abc"}),
                event(4, {"customer_id": ["c1"], "ts": BASE}),
                event(5, {"customer_id": "c1", "ts": BASE, "amount": True}),
            ]
        )
        assert [r.problem for r in results] == [
            "customer_id: missing; features are per entity and need it",
            "ts: 'yesterday' is not a time; expected ISO 8601 or epoch seconds",
            "amount: 'abc' is not a number; amount_1h_sum (sum)",
            "customer_id: ['c1'] is not an entity; expected text or a number",
            "amount: True is not a number; amount_1h_sum (sum)",
        ]
        assert all(r.values == {} for r in results)
        assert online.entries("c1") == []
    finally:
        online.close()


def test_an_unreachable_store_is_named(redis_url: str) -> None:
    spec = feature_spec(FEATURES, redis_url=redis_url)
    online = OnlineFeatures(spec, "redis://someone:secret@127.0.0.1:1/0")
    with pytest.raises(StorageError) as caught:
        online.apply([event(1, {"customer_id": "c1", "ts": BASE})])
    assert str(caught.value).startswith("online features at redis://127.0.0.1:1/0: cannot read:")
    assert "secret" not in str(caught.value)
    online.close()


def test_trimming_bounds_the_state_and_changes_no_value(redis_url: str) -> None:
    """Two days of one customer's events, one every 7 minutes, some out of order and some late,
    with no margin: the state holds only the last hours and every value equals the offline one
    (which keeps everything the horizon allows)."""
    spec = feature_spec(FEATURES, max_delay="2m", allowed_lateness="1m", redis_url=redis_url)
    events = []
    for step in range(2 * 24 * 60 // 7):
        behind = {3: 90, 5: 1500, 11: 7200}.get(step % 13, 0)  # in order, late, very late
        events.append(
            event(
                step + 1,
                {
                    "customer_id": "c1",
                    "ts": BASE + step * 420 - behind,
                    "amount": step % 17 * 0.1,
                    "plan": ["basic", "pro"][step % 2],
                },
            )
        )
    online = OnlineFeatures(spec, redis_url, margin=0)
    largest = 0
    results: list[FeatureResult] = []
    try:
        for at in range(0, len(events), 9):
            results.extend(online.apply(events[at : at + 9]))
            largest = max(largest, len(online.entries("c1")))
    finally:
        online.close()
    table = pa.table(
        {
            "id": [e.id for e in events],
            "position": [e.position for e in events],
            "customer_id": [e.fields["customer_id"] for e in events],
            "ts": [e.fields["ts"] for e in events],
            "amount": [e.fields["amount"] for e in events],
            "plan": [e.fields["plan"] for e in events],
        }
    )
    offline = offline_features(table, spec).to_pylist()
    names = [f.name for f in spec.features]
    assert [(r.values, r.late) for r in results] == [
        ({name: row[name] for name in names}, row["late"]) for row in offline
    ]
    assert sum(r.late for r in results) > 20
    # horizon 2h (twice the largest window) + 1m lateness + 2m delay, an event every 7 minutes
    assert largest <= 25 + 9
    assert largest < len(events) / 10


def test_a_foreign_value_under_the_prefix_is_named(redis_url: str) -> None:
    spec = feature_spec(FEATURES, redis_url=redis_url)
    online = OnlineFeatures(spec, redis_url)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.hset(online.key("c1"), "9-0", "hello")
        with pytest.raises(StorageError) as caught:
            online.apply([event(10, {"customer_id": "c1", "ts": BASE})])
        assert str(caught.value) == (
            f"online features at {redis_url}: {online.key('c1')} field 9-0: 'hello' is not an "
            "entry [position, time, late, watermark, values]; another program writes under this "
            "prefix"
        )
    finally:
        client.close()
        online.close()
