"""The landing loop on a real Redis server: a batch is acknowledged only once its part is
stored, a stop lands the batch in hand, and an unreadable event is acknowledged and counted
without being landed."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import redis

from mlship.brokers.base import Backlog, Broker, Consumer, Event
from mlship.brokers.url import open_broker
from mlship.store.logstore import LocalLogStore
from mlship.streams.history import read_history
from mlship.streams.landing import land


@pytest.fixture
def broker(redis_url: str) -> Iterator[Broker]:
    opened = open_broker(redis_url)
    yield opened
    opened.close()


class _StopsWhenHanded:
    """The real consumer, and a request to stop as soon as it has handed out events: the
    lander then holds a batch it has not written yet."""

    def __init__(self, consumer: Consumer, stop: threading.Event) -> None:
        self.consumer = consumer
        self.stop = stop

    def fetch(self, count: int, block_ms: int) -> list[Event]:
        events = self.consumer.fetch(count, block_ms)
        if events:
            self.stop.set()
        return events

    def ack(self, events: Sequence[Event]) -> None:
        self.consumer.ack(events)

    def backlog(self) -> Backlog:
        return self.consumer.backlog()

    def close(self) -> None:
        self.consumer.close()


def test_a_stop_lands_the_batch_in_hand_and_unreadable_events_are_counted(
    broker: Broker, redis_url: str, tmp_path: Path
) -> None:
    stream = f"land-{uuid.uuid4().hex[:8]}"
    for i in range(5):
        broker.append(stream, {"n": i})
    client = redis.Redis.from_url(redis_url)
    client.xadd(stream, {"data": "not json"})
    client.close()
    consumer = broker.consumer(stream, "scorers-land", "one", claim_idle_ms=60_000)
    stop = threading.Event()
    store = LocalLogStore(tmp_path / "home")

    landed = land(
        _StopsWhenHanded(consumer, stop), store, "clicks", part_events=1000,
        part_seconds=3600, stop=stop,
    )  # fmt: skip

    assert (landed.events, landed.parts, landed.unreadable) == (5, 1, 1)
    assert read_history(store, "clicks").events["position"].len() == 5
    assert consumer.backlog() == Backlog(undelivered=0, pending=0)


def test_a_part_the_store_refuses_leaves_its_events_unacknowledged(
    broker: Broker, tmp_path: Path
) -> None:
    stream = f"land-{uuid.uuid4().hex[:8]}"
    for i in range(3):
        broker.append(stream, {"n": i})
    consumer = broker.consumer(stream, "scorers-land", "one", claim_idle_ms=60_000)
    blocked = tmp_path / "home"
    blocked.mkdir()
    (blocked / "streams").write_text("a file where the folder of histories goes")

    with pytest.raises(OSError, match="streams"):
        land(consumer, LocalLogStore(blocked), "clicks", part_events=3, stop=threading.Event())

    assert consumer.backlog() == Backlog(undelivered=0, pending=3)
