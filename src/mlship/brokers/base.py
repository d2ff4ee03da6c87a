"""One interface for the message brokers a stream is read from and written to.

Delivery is at least once, as every broker worth running gives it: a consumer in a group gets
events, works on them, writes what they produced somewhere durable, and only then acknowledges
them. A consumer that dies before acknowledging leaves its events pending; after
``claim_idle_ms`` without an acknowledgement they are given to another consumer of the group (Redis
Streams claims them with ``XAUTOCLAIM``, NATS JetStream redelivers them after its ``ack_wait``).
So every event is worked on at least once, and sometimes twice: writes that must happen once are
made idempotent by the event's id (:meth:`Broker.publish` drops a message whose key it has
already taken).

The implementations (``redis_streams.py``, ``nats_jetstream.py``) pass one behavioural test suite
(``tests/unit/test_brokers_contract.py``); code above this layer sees only these types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Event:
    """One message of a stream, as a consumer got it."""

    id: str
    """The broker's id of the message: a Redis stream entry id (``1733500000000-0``), a JetStream
    stream sequence as text. Stable across redeliveries: the key of idempotent writes."""
    position: int
    """Where the message was appended, increasing in append order within one stream (the
    arrival order that point-in-time features replay)."""
    appended_at: datetime
    """When the broker took it (UTC): where end-to-end latency starts."""
    fields: Mapping[str, Any]
    """The event's payload: a JSON object's members, or a Redis entry's fields (text values)."""
    deliveries: int = 1
    """How many times the group has delivered it, this one included: above 1, a redelivery."""
    text_values: bool = False
    """True when every value came as text (a Redis entry's flat fields), to be typed by the
    reader's schema as a CSV's values are."""
    problem: str | None = None
    """Why the payload could not be read (not JSON, not an object); ``fields`` is then empty
    and the event belongs in a dead-letter stream with this reason."""


@dataclass(frozen=True)
class Message:
    """A message to append, with the key that makes appending it twice append it once."""

    key: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Backlog:
    """How far a group is behind its stream."""

    undelivered: int
    """Messages appended that no consumer of the group has been given yet."""
    pending: int
    """Messages given to a consumer and not acknowledged yet."""


class Consumer(Protocol):
    """One member of a consumer group, reading one stream."""

    def fetch(self, count: int, block_ms: int) -> list[Event]:
        """Up to ``count`` events: first those another consumer left pending longer than the
        group's claim timeout, then new ones; waits up to ``block_ms`` when there are none."""
        ...

    def ack(self, events: Sequence[Event]) -> None:
        """Acknowledge ``events``: the group will not deliver them again."""
        ...

    def backlog(self) -> Backlog: ...

    def close(self) -> None: ...


class Broker(Protocol):
    """A connection to one broker (a Redis server, a NATS server with JetStream)."""

    url: str
    """Where it is, without credentials (for messages and metrics labels)."""

    def consumer(self, stream: str, group: str, name: str, *, claim_idle_ms: int) -> Consumer:
        """A consumer called ``name`` in ``group`` (created if missing, reading from the start
        of the stream), which takes over others' events pending longer than ``claim_idle_ms``."""
        ...

    def append(self, stream: str, fields: Mapping[str, Any]) -> str:
        """Append one event as a producer does (not deduplicated); its id."""
        ...

    def publish(self, stream: str, messages: Sequence[Message]) -> int:
        """Append ``messages``, each at most once per key (a key already taken is skipped);
        how many were appended. Returns only once the broker holds them durably."""
        ...

    def read(self, stream: str, after: int | None, count: int) -> list[Event]:
        """Up to ``count`` messages after ``position`` ``after`` (from the start when None), in
        append order, without a group: for landing the history and for tests."""
        ...

    def close(self) -> None: ...
