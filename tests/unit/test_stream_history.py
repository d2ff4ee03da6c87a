"""A stream's landed history, on the local home and in S3-compatible object storage (a real
SeaweedFS): parts are whole and sealed, every event reads back once (a redelivered one landed
twice too) in position order, its payload exactly as received, and ranges by appended time or by
event time are half open. The ``stream:`` source reads the range as rows typed like JSON lines,
each row named by its event id, and refuses what it cannot read with a message saying what to do.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.brokers.base import Event
from mlship.config import Settings
from mlship.crypto.encryption import MAGIC
from mlship.data.readers import reader_for
from mlship.data.readers.values import as_text
from mlship.errors import DataError
from mlship.security.keyring import sealing as sealing_of
from mlship.spec.data import Source
from mlship.store.logstore import LocalLogStore, LogStore
from mlship.store.parts import PLAIN, Sealing
from mlship.store.s3 import S3Location, make_client
from mlship.store.s3logs import S3LogStore
from mlship.streams.history import history_log, read_history, write_part
from tests.objectstore import ObjectStore

NOV = datetime(2026, 11, 1, tzinfo=UTC)


def _event(
    position: int,
    fields: dict[str, Any],
    *,
    at: datetime | None = None,
    text: bool = False,
    deliveries: int = 1,
) -> Event:
    return Event(
        id=f"{1733500000000 + position}-0",
        position=position,
        appended_at=at or NOV + timedelta(hours=position),
        fields=fields,
        deliveries=deliveries,
        text_values=text,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LogStore:
    if request.param == "local":
        return LocalLogStore(tmp_path / "home")
    objects: ObjectStore = request.getfixturevalue("object_store")
    location = S3Location(objects.bucket, f"history-{secrets.token_hex(6)}")
    return S3LogStore(location, make_client(objects.settings()))


def _stream() -> str:
    return f"clicks-{secrets.token_hex(4)}"


def test_a_redelivered_event_reads_once_in_position_order_and_parts_are_sealed(
    store: LogStore, tmp_path: Path
) -> None:
    sealing = sealing_of(Settings(home=tmp_path / "keys", encrypt_artifacts=True))
    stream = _stream()
    events = [_event(i, {"n": i}) for i in range(6)]
    # Landed out of order, event 3 twice (its first lander died before acknowledging), and
    # event 5 twice within one batch.
    write_part(store, stream, [events[3], events[4], events[5], events[5]], sealing)
    write_part(store, stream, [events[0], events[1], events[2]], sealing)
    write_part(store, stream, [_event(3, {"n": 3}, deliveries=2)], sealing)

    parts = store.parts(history_log(stream))
    assert len(parts) == 3
    assert all(store.read(part).startswith(MAGIC) for part in parts)
    history = read_history(store, stream, sealing)
    assert history.events["position"].to_list() == list(range(6))
    assert [json.loads(p)["n"] for p in history.events["payload"]] == list(range(6))
    assert history.landed == 6 and history.parts == 3
    with pytest.raises(Exception, match="key"):
        read_history(store, stream, PLAIN)


def test_ranges_are_half_open_by_appended_time_and_by_event_time(store: LogStore) -> None:
    stream = _stream()
    times = ["2026-11-05T00:00:00Z", "1793923200", 1793923200 + 86400, "yesterday", None, 12.5]
    events = [
        _event(i, {"ts": ts} if ts is not None else {}, at=NOV + timedelta(days=i))
        for i, ts in enumerate(times)
    ]
    write_part(store, stream, events[:3], PLAIN)
    write_part(store, stream, events[3:], PLAIN)

    appended = read_history(
        store, stream, since=NOV + timedelta(days=1), until=NOV + timedelta(days=3)
    )
    assert appended.events["position"].to_list() == [1, 2]

    # 1793923200 is 2026-11-06T00:00:00Z; "yesterday" and a missing time are in no range.
    since, until = datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 7, tzinfo=UTC)
    by_time = read_history(store, stream, since=since, until=until, event_time="ts")
    assert by_time.events["position"].to_list() == [0, 1]
    assert by_time.first == datetime(1970, 1, 1, 0, 0, 12, 500000, tzinfo=UTC)
    everything = read_history(store, stream, event_time="ts")
    assert everything.events["position"].to_list() == [0, 1, 2, 5]


def test_a_part_is_named_after_its_newest_event_when_the_broker_clock_is_ahead(
    store: LogStore,
) -> None:
    stream = _stream()
    ahead = datetime.now(UTC) + timedelta(hours=2)
    write_part(store, stream, [_event(0, {"n": 0}, at=ahead)], PLAIN)
    found = read_history(store, stream, since=ahead - timedelta(seconds=1))
    assert found.events["position"].to_list() == [0]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    payloads=st.lists(
        st.dictionaries(st.text(max_size=8), json_values, max_size=5), min_size=1, max_size=6
    ),
    text=st.booleans(),
)
def test_payloads_read_back_exactly_as_received(
    payloads: list[dict[str, Any]], text: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    store = LocalLogStore(tmp_path_factory.mktemp("roundtrip"))
    events = [_event(i, payload, text=text) for i, payload in enumerate(payloads)]
    write_part(store, "payloads", events, PLAIN)
    history = read_history(store, "payloads")
    assert [json.loads(p) for p in history.events["payload"]] == payloads
    assert history.events["text_values"].to_list() == [text] * len(payloads)


# -- the stream: source ------------------------------------------------------------------


@dataclass(frozen=True)
class _Stores:
    logs: LogStore
    sealing: Sealing = PLAIN


STREAM_SPEC = """\
name: {name}
source: {{url: "redis://127.0.0.1:1/0", stream: clicks}}
{event_time}model: churn@production
output: {{stream: out}}
dead_letter: {{stream: dead}}
"""


def _project(tmp_path: Path, name: str, event_time: bool = False) -> Path:
    (tmp_path / "stream.yaml").write_text(
        STREAM_SPEC.format(name=name, event_time="event_time: {field: ts}\n" if event_time else "")
    )
    return tmp_path


def _source(**stream: Any) -> Source:
    return Source.model_validate({"name": "events", "stream": {"spec": "stream.yaml", **stream}})


def test_the_stream_source_types_rows_like_json_lines_and_names_them_by_event(
    store: LogStore, tmp_path: Path
) -> None:
    stream = _stream()
    base = _project(tmp_path, stream)
    events = [
        _event(0, {"age": 40, "plan": "pro"}),
        _event(1, {"age": "forty", "plan": "basic"}),
        _event(2, {"age": "52", "plan": "pro"}, text=True),  # a Redis entry: every value text
        _event(3, {"age": 33, "minutes": 1.5}),
    ]
    write_part(store, stream, events, PLAIN)
    write_part(store, stream, [events[1]], PLAIN)  # redelivered and landed again
    reader = reader_for(_source(since="2026-11-01"), base, stores=_Stores(store))
    data = reader.read()
    assert data.frame["age"].to_list() == ["40", "forty", "52", "33"]  # mixed: text, typed later
    assert data.frame["minutes"].to_list() == [None, None, None, 1.5]
    assert data.unit == "event"
    assert data.places().to_list() == [e.id for e in events]
    assert data.origin.kind == "stream" and data.origin.rows == 4

    cut = reader_for(
        _source(since="2026-11-01T01:00:00", until="2026-11-01T03:00:00Z"),
        base,
        stores=_Stores(store),
    )
    assert cut.read().places().to_list() == [events[1].id, events[2].id]


def test_the_fingerprint_changes_with_the_events_in_the_range_only(
    store: LogStore, tmp_path: Path
) -> None:
    stream = _stream()
    base = _project(tmp_path, stream)
    write_part(store, stream, [_event(i, {"n": i}) for i in range(3)], PLAIN)
    source = _source(since="2026-11-01", until="2026-11-02")
    first = reader_for(source, base, stores=_Stores(store)).fingerprint()  # type: ignore[attr-defined]
    write_part(store, stream, [_event(1, {"n": 1})], PLAIN)  # a duplicate: same data
    write_part(store, stream, [_event(30, {"n": 30})], PLAIN)  # outside the range
    assert reader_for(source, base, stores=_Stores(store)).fingerprint() == first  # type: ignore[attr-defined]
    write_part(store, stream, [_event(5, {"n": 5})], PLAIN)  # in the range
    assert reader_for(source, base, stores=_Stores(store)).fingerprint() != first  # type: ignore[attr-defined]


def test_a_stream_never_landed_an_empty_range_and_a_bad_range_are_refused(
    store: LogStore, tmp_path: Path
) -> None:
    stream = _stream()
    base = _project(tmp_path, stream, event_time=True)
    with pytest.raises(DataError, match=r"events .*never been landed.*mlship stream land"):
        reader_for(_source(), base, stores=_Stores(store)).read()
    write_part(store, stream, [_event(0, {"ts": "2026-11-05T00:00:00Z"})], PLAIN)
    with pytest.raises(DataError, match=r"no landed event timed by 'ts' in \[2026-12-01.*1 landed"):
        reader_for(_source(since="2026-12-01"), base, stores=_Stores(store)).read()
    with pytest.raises(DataError, match=r"since 2026-12-01.*is not before until 2026-11-01"):
        reader_for(
            _source(since="2026-12-01", until="2026-11-01"), base, stores=_Stores(store)
        ).read()
    assert reader_for(_source(since="3650d"), base, stores=_Stores(store)).read().frame.height == 1


def test_range_bounds_that_are_neither_dates_nor_ages_are_refused_in_the_spec() -> None:
    with pytest.raises(ValueError, match="'last week' is neither a date/time"):
        _source(since="last week")
    with pytest.raises(ValueError, match="exactly one of `path`"):
        Source.model_validate({"path": "a.csv", "stream": {"spec": "s.yaml"}})


FEATURES_SPEC = """\
name: {name}
source: {{url: "redis://127.0.0.1:1/0", stream: clicks}}
entity: customer_id
event_time: {{field: ts, max_delay: 0s}}
features:
  - {{name: clicks_1h, agg: count, window: {{size: 1h}}}}
  - {{name: spent_1h, agg: sum, column: amount, window: {{size: 1h}}}}
model: churn@production
output: {{stream: out}}
dead_letter: {{stream: dead}}
"""


def test_features_reach_back_before_since_and_unreadable_values_are_quarantined(
    tmp_path: Path,
) -> None:
    store = LocalLogStore(tmp_path / "home")
    stream = _stream()
    (tmp_path / "stream.yaml").write_text(FEATURES_SPEC.format(name=stream))
    hour = datetime(2026, 11, 3, 10, tzinfo=UTC)
    rows = [  # (customer, minutes into the hour, amount)
        ("A", 0, 1.5),
        ("B", 5, 10),
        ("A", 20, 2),
        ("A", 40, "abc"),
        ("A", 50, 4),
        ("A", 70, 8),  # the next hour's window
    ]
    events = [
        _event(i, {"customer_id": c, "ts": (hour + timedelta(minutes=m)).isoformat(), "amount": a})
        for i, (c, m, a) in enumerate(rows)
    ]
    write_part(store, stream, events, PLAIN)
    source = _source(since="2026-11-03T10:15:00Z", until="2026-11-03T12:00:00Z")
    data = reader_for(source, tmp_path, stores=_Stores(store)).read()
    assert data.places().to_list() == [e.id for e in events[2:]]
    # A's events before `since` still count in the windows of the ones after it; the one
    # whose amount is unreadable (a dead letter online) has no features and counts for none.
    assert data.frame["clicks_1h"].to_list() == [2, None, 3, 1]
    assert data.frame["spent_1h"].to_list() == [3.5, None, 7.5, 8.0]
    reasons = data.frame["_reasons"].to_list()
    assert reasons[0] is None and reasons[2] is None
    assert reasons[1] is not None
    assert (
        reasons[1] == f"events event {events[3].id}: amount: 'abc' is not a number, spent_1h (sum)"
    )


@settings(derandomize=True, max_examples=30, deadline=None)
@given(
    payloads=st.lists(
        st.dictionaries(st.sampled_from(["a", "b", "c"]), json_values, max_size=3),
        min_size=1,
        max_size=6,
    )
)
def test_the_stream_source_reads_any_payloads_one_row_per_event(
    payloads: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("anypayload")
    _project(root, "anything")
    store = LocalLogStore(root / "home")
    events = [_event(i, payload) for i, payload in enumerate(payloads)]
    write_part(store, "anything", events, PLAIN)
    reader = reader_for(_source(), root, stores=_Stores(store))
    if not any(payloads):
        with pytest.raises(DataError, match="landed events read have no fields"):
            reader.read()
        return
    data = reader.read()
    assert data.frame.height == len(payloads)
    assert data.places().to_list() == [e.id for e in events]
    for name in data.frame.columns:
        values = [payload.get(name) for payload in payloads]
        read = data.frame[name].to_list()
        assert [v is None for v in read] == [v is None for v in values]
        if data.frame[name].dtype == pl.String:  # mixed: each value as written
            assert read == [None if v is None else as_text(v) for v in values]
