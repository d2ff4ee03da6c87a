"""One behaviour for every message broker mlship reads: Redis Streams and NATS JetStream.

Each broker is a real server (``tests.brokers``), reached through ``open_broker`` as a stream
spec's URL reaches it. Only the bad payloads reach past the interface, with each broker's own
client, because what matters is what a consumer does with bytes mlship did not write.
A consumer that dies is a real process killed with SIGKILL while it holds events.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlship
from mlship.brokers.base import Broker, Consumer, Event, Message
from mlship.brokers.redis_streams import id_of, position_of
from mlship.brokers.url import open_broker
from mlship.errors import BrokerError
from tests.brokers import nats_server, redis_server
from tests.killing import Running, kill_and_check_nothing_survives

CLAIM_MS = 1000
"""The claim timeout of the tests that wait for one."""
LONG_CLAIM_MS = 600_000
"""A claim timeout no test reaches: nothing is claimed or redelivered."""
DEADLINE_S = 60.0
"""How long a test waits for what must come; never reached when the brokers work."""
SECRET = "hunter2-not-shown"


@dataclass
class Server:
    kind: str
    url: str

    def raw_append(self, stream: str, payloads: list[bytes]) -> None:
        """Append ``payloads`` as they are, with the broker's own client (as another producer
        would): a Redis entry's ``data`` field, a JetStream message's body."""
        if self.kind == "redis":
            client = redis.Redis.from_url(self.url)
            try:
                for payload in payloads:
                    client.xadd(stream, {"data": payload})
            finally:
                client.close()
            return

        async def publish() -> None:
            connection = await nats.connect(self.url)
            try:
                jetstream = connection.jetstream()
                for payload in payloads:
                    await jetstream.publish(stream, payload)
            finally:
                await connection.close()

        asyncio.run(publish())


@pytest.fixture(params=["redis", "nats"])
def server(request: pytest.FixtureRequest) -> Server:
    return Server(request.param, request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def broker(server: Server) -> Iterator[Broker]:
    opened = open_broker(server.url)
    yield opened
    opened.close()


def _name(prefix: str = "events") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _collect(
    consumers: list[Consumer], wanted: int, *, count: int = 3, ack: bool = False
) -> list[tuple[int, Event]]:
    """Fetch in turn from ``consumers`` until ``wanted`` events came: (consumer index, event).
    With ``ack``, each batch is acknowledged at once, as a consumer that keeps up does (one that
    holds events past the claim timeout has them claimed back)."""
    got: list[tuple[int, Event]] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < wanted:
        assert time.monotonic() < deadline, f"only {len(got)} of {wanted} events came"
        for index, consumer in enumerate(consumers):
            events = consumer.fetch(count, block_ms=100)
            if ack:
                consumer.ack(events)
            got.extend((index, event) for event in events)
    return got


def _nothing_more(consumer: Consumer) -> None:
    for _ in range(3):
        assert consumer.fetch(10, block_ms=100) == []


def test_appended_events_are_read_back_in_order_with_increasing_positions(
    broker: Broker,
) -> None:
    stream = _name()
    records = [{"n": n, "name": f"customer {n}", "charges": n * 1.5} for n in range(7)]
    ids = [broker.append(stream, record) for record in records]

    events = broker.read(stream, None, 100)

    assert [e.id for e in events] == ids
    assert [dict(e.fields) for e in events] == records
    positions = [e.position for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert all(e.problem is None and not e.text_values for e in events)
    assert all(e.appended_at.tzinfo is not None for e in events)
    assert [e.id for e in broker.read(stream, positions[1], 3)] == ids[2:5]
    assert [e.id for e in broker.read(stream, positions[4], 100)] == ids[5:]
    assert broker.read(stream, positions[-1], 100) == []
    assert broker.read(_name("never-written"), None, 10) == []


def test_fetched_positions_are_the_read_positions(broker: Broker) -> None:
    stream = _name()
    for n in range(4):
        broker.append(stream, {"n": n})
    consumer = broker.consumer(stream, "scorers", "one", claim_idle_ms=LONG_CLAIM_MS)

    fetched = [event for _, event in _collect([consumer], 4)]

    read = broker.read(stream, None, 10)
    assert [(e.id, e.position, e.appended_at) for e in fetched] == [
        (e.id, e.position, e.appended_at) for e in read
    ]
    assert all(e.deliveries == 1 for e in fetched)


def test_two_consumers_of_a_group_never_get_the_same_event(broker: Broker) -> None:
    stream = _name()
    ids = {broker.append(stream, {"n": n}) for n in range(30)}
    first = broker.consumer(stream, "scorers", "first", claim_idle_ms=LONG_CLAIM_MS)
    second = broker.consumer(stream, "scorers", "second", claim_idle_ms=LONG_CLAIM_MS)

    got = _collect([first, second], 30)

    by_first = {e.id for index, e in got if index == 0}
    by_second = {e.id for index, e in got if index == 1}
    assert len(got) == 30
    assert by_first | by_second == ids
    assert not by_first & by_second
    assert by_first and by_second, "one consumer took everything"
    _nothing_more(first)
    _nothing_more(second)


def test_a_waiting_fetch_gets_an_event_appended_while_it_waits(broker: Broker) -> None:
    stream = _name()
    consumer = broker.consumer(stream, "scorers", "one", claim_idle_ms=LONG_CLAIM_MS)
    assert consumer.fetch(10, block_ms=0) == []
    appended: list[str] = []
    waiting = threading.Event()

    def append_later() -> None:
        waiting.wait(DEADLINE_S)
        time.sleep(0.3)  # so that the fetch is waiting, most likely; either way it must get it
        appended.append(broker.append(stream, {"n": 1}))

    producer = threading.Thread(target=append_later)
    producer.start()
    waiting.set()
    got = consumer.fetch(10, block_ms=int(DEADLINE_S * 1000))
    producer.join(DEADLINE_S)

    assert [e.id for e in got] == appended
    consumer.ack(got)
    assert consumer.fetch(10, block_ms=0) == []


def test_another_group_gets_every_event_again(broker: Broker) -> None:
    stream = _name()
    ids = [broker.append(stream, {"n": n}) for n in range(5)]
    scorers = broker.consumer(stream, "scorers", "a", claim_idle_ms=LONG_CLAIM_MS)
    landers = broker.consumer(stream, "landers", "a", claim_idle_ms=LONG_CLAIM_MS)

    assert [e.id for _, e in _collect([scorers], 5)] == ids
    assert [e.id for _, e in _collect([landers], 5)] == ids


def test_acknowledged_events_are_never_delivered_again(broker: Broker) -> None:
    stream = _name()
    for n in range(5):
        broker.append(stream, {"n": n})
    consumer = broker.consumer(stream, "scorers", "one", claim_idle_ms=CLAIM_MS)
    events = [e for _, e in _collect([consumer], 5, count=10)]
    consumer.ack(events)
    late = broker.append(stream, {"n": 5})

    time.sleep(2 * CLAIM_MS / 1000)  # past the claim timeout: only unacknowledged come back
    other = broker.consumer(stream, "scorers", "other", claim_idle_ms=CLAIM_MS)
    again = _collect([other, consumer], 1, count=10)

    assert [e.id for _, e in again] == [late]
    ((index, event),) = again
    [other, consumer][index].ack([event])
    consumer.ack(events)  # twice: harmless
    time.sleep(2 * CLAIM_MS / 1000)
    _nothing_more(other)
    _nothing_more(consumer)
    assert (consumer.backlog().undelivered, consumer.backlog().pending) == (0, 0)


def test_unacknowledged_events_of_a_live_consumer_are_claimed_after_the_timeout(
    broker: Broker,
) -> None:
    stream = _name()
    ids = [broker.append(stream, {"n": n}) for n in range(3)]
    slow = broker.consumer(stream, "scorers", "slow", claim_idle_ms=CLAIM_MS)
    held = [e for _, e in _collect([slow], 3, count=10)]
    assert [e.id for e in held] == ids

    other = broker.consumer(stream, "scorers", "other", claim_idle_ms=CLAIM_MS)
    claimed = [e for _, e in _collect([other], 3, count=10)]

    assert sorted(e.id for e in claimed) == sorted(ids)
    assert all(e.deliveries >= 2 for e in claimed)
    assert [dict(e.fields) for e in sorted(claimed, key=lambda e: e.position)] == [
        {"n": n} for n in range(3)
    ]


DOOMED = """
import json, sys, time
from mlship.brokers.url import open_broker

url, stream, group, claim_ms, wanted = sys.argv[1:]
broker = open_broker(url)
consumer = broker.consumer(stream, group, "doomed", claim_idle_ms=int(claim_ms))
held = []
while len(held) < int(wanted):
    held.extend(consumer.fetch(int(wanted) - len(held), block_ms=1000))
print("HELD " + json.dumps([event.id for event in held]), flush=True)
time.sleep(600)
"""


def test_a_killed_consumers_events_are_fetched_by_another_after_the_claim_timeout(
    server: Server, broker: Broker
) -> None:
    stream = _name()
    ids = [broker.append(stream, {"n": n}) for n in range(8)]
    env = dict(os.environ)
    source = str(Path(mlship.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    doomed = Running.command(
        [sys.executable, "-c", DOOMED, server.url, stream, "scorers", str(CLAIM_MS), "5"],
        cwd=Path.cwd(),
        env=env,
    )
    doomed.wait_for("the held events", lambda: "HELD " in doomed.output)
    held = json.loads(doomed.output.split("HELD ", 1)[1].splitlines()[0])
    assert held == ids[:5]

    kill_and_check_nothing_survives(doomed, signal.SIGKILL)
    survivor = broker.consumer(stream, "scorers", "survivor", claim_idle_ms=CLAIM_MS)
    got = [e for _, e in _collect([survivor], 8, count=4, ack=True)]

    assert sorted(e.id for e in got) == sorted(ids)
    deliveries = {e.id: e.deliveries for e in got}
    assert all(deliveries[i] >= 2 for i in held), deliveries
    assert all(deliveries[i] == 1 for i in ids[5:]), deliveries
    backlog = survivor.backlog()
    assert (backlog.undelivered, backlog.pending) == (0, 0)


def test_a_key_is_published_once(server: Server, broker: Broker) -> None:
    stream = _name("predictions")

    first = broker.publish(
        stream,
        [Message("e-1", {"p": 0.1}), Message("e-2", {"p": 0.2}), Message("e-1", {"p": 9.9})],
    )
    second = broker.publish(stream, [Message("e-2", {"p": 0.2}), Message("e-3", {"p": 0.3})])
    other = open_broker(server.url)
    try:
        third = other.publish(stream, [Message("e-3", {"p": 0.3}), Message("e-4", {"p": 0.4})])
    finally:
        other.close()

    assert (first, second, third) == (2, 1, 1)
    assert [dict(e.fields) for e in broker.read(stream, None, 100)] == [
        {"p": 0.1},
        {"p": 0.2},
        {"p": 0.3},
        {"p": 0.4},
    ]
    assert broker.publish(stream, []) == 0


def test_two_connections_publishing_the_same_keys_at_once_append_each_once(
    server: Server,
) -> None:
    stream = _name("predictions")
    messages = [Message(f"event-{n}", {"n": n}) for n in range(40)]
    brokers = [open_broker(server.url), open_broker(server.url)]
    appended: list[int] = []
    start = threading.Barrier(2)

    def publish(broker: Broker) -> None:
        start.wait()
        for n in range(0, len(messages), 5):
            appended.append(broker.publish(stream, messages[n : n + 5]))

    threads = [threading.Thread(target=publish, args=(b,)) for b in brokers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_S)
    try:
        assert sum(appended) == 40
        read = brokers[0].read(stream, None, 1000)
        assert sorted(e.fields["n"] for e in read) == list(range(40))
    finally:
        for broker in brokers:
            broker.close()


def test_the_backlog_counts_undelivered_and_pending_events(broker: Broker) -> None:
    stream = _name()
    for n in range(6):
        broker.append(stream, {"n": n})
    consumer = broker.consumer(stream, "scorers", "one", claim_idle_ms=LONG_CLAIM_MS)
    assert _counts(consumer) == (6, 0)

    fetched = [e for _, e in _collect([consumer], 4, count=4)]
    assert len(fetched) == 4
    assert _counts(consumer) == (2, 4)

    consumer.ack(fetched[:3])
    assert _counts(consumer) == (2, 1)

    rest = [e for _, e in _collect([consumer], 2, count=10)]
    broker.append(stream, {"n": 6})
    assert _counts(consumer) == (1, 3)

    consumer.ack([fetched[3], *rest])
    assert _counts(consumer) == (1, 0)


def _counts(consumer: Consumer) -> tuple[int, int]:
    backlog = consumer.backlog()
    return backlog.undelivered, backlog.pending


BAD_PAYLOADS: list[tuple[bytes, str]] = [
    (b"not json", "not valid JSON (Expecting value at line 1 column 1)"),
    (b"[1, 2, 3]", "a JSON array, expected an object"),
    (b'"just text"', "a JSON string, expected an object"),
    (b"42", "a JSON number, expected an object"),
    (b"null", "JSON null, expected an object"),
    (b"\xff\xfe{}", "not UTF-8 text (byte 0xff at offset 0)"),
    (b'{"a": 1', "not valid JSON"),
    (b'{"a": NaN}', "NaN is not a JSON number"),
    (b"", "not valid JSON"),
]


def test_payloads_that_are_not_json_objects_are_events_with_a_problem(
    server: Server, broker: Broker
) -> None:
    stream = _name()
    good = broker.append(stream, {"ok": True})
    server.raw_append(stream, [payload for payload, _ in BAD_PAYLOADS] + [b'{"ok": false}'])
    consumer = broker.consumer(stream, "scorers", "one", claim_idle_ms=LONG_CLAIM_MS)

    fetched = [e for _, e in _collect([consumer], len(BAD_PAYLOADS) + 2, count=20)]
    read = broker.read(stream, None, 100)

    place = "data" if server.kind == "redis" else "body"
    for events in (fetched, read):
        assert events[0].id == good and events[0].fields == {"ok": True}
        assert events[-1].problem is None and events[-1].fields == {"ok": False}
        for event, (payload, reason) in zip(events[1:-1], BAD_PAYLOADS, strict=True):
            assert event.problem is not None, payload
            assert event.problem.startswith(f"{place}: "), event.problem
            assert reason in event.problem, (payload, event.problem)
            assert event.fields == {}
    consumer.ack(fetched)
    assert _counts(consumer) == (0, 0)


def test_a_redis_entry_of_flat_fields_is_read_as_text(redis_url: str) -> None:
    stream = _name()
    client = redis.Redis.from_url(redis_url)
    try:
        client.xadd(stream, {"customer_id": "c-1", "monthly_charges": "70.5"})
        client.xadd(stream, {"customer_id": b"c-\xff", "n": "1"})
        client.xadd(stream, {"data": '{"a": 1}', "extra": "x"})
    finally:
        client.close()
    broker = open_broker(redis_url)
    try:
        flat, bad, mixed = broker.read(stream, None, 10)
    finally:
        broker.close()

    assert flat.text_values and flat.problem is None
    assert flat.fields == {"customer_id": "c-1", "monthly_charges": "70.5"}
    assert bad.problem == "field 'customer_id': not UTF-8 text (byte 0xff at offset 2)"
    assert bad.fields == {}
    assert mixed.text_values and mixed.fields == {"data": '{"a": 1}', "extra": "x"}


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    first=st.tuples(st.integers(0, 2**45), st.integers(0, 2**20 - 1)),
    second=st.tuples(st.integers(0, 2**45), st.integers(0, 2**20 - 1)),
)
def test_redis_positions_keep_the_order_of_entry_ids(
    first: tuple[int, int], second: tuple[int, int]
) -> None:
    ids = [f"{ms}-{seq}" for ms, seq in (first, second)]
    positions = [position_of(entry_id) for entry_id in ids]

    assert [id_of(position) for position in positions] == ids
    assert (positions[0] < positions[1]) == (first < second)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
JSON_OBJECTS = st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=6)


def test_any_json_object_round_trips_through_append_and_fetch(broker: Broker) -> None:
    stream = _name()
    consumer = broker.consumer(stream, "scorers", "one", claim_idle_ms=LONG_CLAIM_MS)

    @settings(
        derandomize=True,
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(fields=JSON_OBJECTS)
    def round_trip(fields: dict[str, Any]) -> None:
        appended = broker.append(stream, fields)
        (event,) = [e for _, e in _collect([consumer], 1, count=1)]
        consumer.ack([event])
        assert event.id == appended
        assert event.problem is None
        assert event.fields == fields
        assert json.dumps(event.fields, sort_keys=True) == json.dumps(fields, sort_keys=True)

    round_trip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _refused(url: str) -> str:
    """The message of ``open_broker(url)``'s error, checked to show no credentials anywhere
    (the message, the repr, the printed traceback)."""
    with pytest.raises(BrokerError) as raised:
        open_broker(url, timeout_s=2.0)
    printed = "".join(traceback.format_exception(raised.value))
    for text in (str(raised.value), repr(raised.value), printed):
        assert SECRET not in text, text
    return str(raised.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            f"kafka://user:{SECRET}@broker:9092/events",
            "stream source: 'kafka://broker:9092/events' is not a broker mlship reads; "
            "expected redis://, rediss://, nats:// or tls://",
        ),
        (
            "127.0.0.1:6379",
            "stream source: '127.0.0.1:6379' is not a broker mlship reads; "
            "expected redis://, rediss://, nats:// or tls://",
        ),
        (f"redis://:{SECRET}@/0", "stream source: 'redis:///0' names no host"),
        (f"nats://u:{SECRET}@host:port", "cannot be read as a URL; expected nats://HOST:PORT"),
    ],
)
def test_an_address_that_is_not_a_broker_is_refused(url: str, message: str) -> None:
    assert message in _refused(url)


@pytest.mark.parametrize("kind", ["redis", "nats"])
def test_an_unreachable_server_is_named_without_credentials(kind: str) -> None:
    port = _free_port()
    if kind == "redis":
        url, shown = f"redis://:{SECRET}@127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/0"
    else:
        url, shown = f"nats://me:{SECRET}@127.0.0.1:{port}", f"nats://127.0.0.1:{port}"
    server = "Redis" if kind == "redis" else "NATS"

    assert _refused(url) == f"cannot reach the {server} server at {shown}: Connection refused"


def test_a_wrong_redis_password_is_refused_and_the_right_one_works() -> None:
    with redis_server(password="right-password") as url:
        host = url.removeprefix("redis://")
        message = _refused(f"redis://:{SECRET}@{host}")
        assert message == f"the Redis server at {url} refused the user name or password"
        assert "refused the user name or password" in _refused(url)

        broker = open_broker(f"redis://:right-password@{host}")
        try:
            assert broker.url == url
            broker.append("s", {"a": 1})
            assert [e.fields for e in broker.read("s", None, 10)] == [{"a": 1}]
        finally:
            broker.close()


def test_a_wrong_nats_password_is_refused_and_the_right_one_works() -> None:
    with nats_server(user="me", password="right-password") as url:
        host = url.removeprefix("nats://")
        message = _refused(f"nats://me:{SECRET}@{host}")
        assert message == f"the NATS server at {url} refused the user name, password or token"

        broker = open_broker(f"nats://me:right-password@{host}")
        try:
            assert broker.url == url
            broker.append("s", {"a": 1})
            assert [e.fields for e in broker.read("s", None, 10)] == [{"a": 1}]
        finally:
            broker.close()


def test_a_nats_server_without_jetstream_is_named() -> None:
    with nats_server(jetstream=False) as url:
        host = url.removeprefix("nats://")
        message = _refused(f"nats://me:{SECRET}@{host}")

    assert message == f"{url}: JetStream is not enabled on this server; start it with -js"


def test_a_message_that_is_not_json_is_refused_by_name(broker: Broker) -> None:
    from mlship.errors import DataError

    stream = _name("out")
    with pytest.raises(DataError) as raised:
        broker.publish(stream, [Message("k", {"id": "e-1", "p": float("nan")})])
    assert str(raised.value) == (
        f"stream {stream!r}: a message that is not JSON: field 'p': "
        "NaN and infinities are not JSON numbers"
    )
    with pytest.raises(DataError, match=r"a message that is not JSON: field 'when': Object of"):
        broker.append(stream, {"n": 1, "when": object()})
    assert broker.read(stream, None, 10) == []
