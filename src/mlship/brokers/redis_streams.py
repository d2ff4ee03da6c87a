"""Redis Streams as a :class:`~mlship.brokers.base.Broker`: consumer groups, XACK, XAUTOCLAIM.

A group is a Redis consumer group, created (with ``MKSTREAM``) to read from the start of the
stream. :meth:`RedisConsumer.fetch` first claims, with ``XAUTOCLAIM``, the entries other
consumers of the group left unacknowledged for ``claim_idle_ms`` (a consumer that died), then
reads new ones with ``XREADGROUP >``; so a dead consumer's events are worked on by the living
ones, at least once.

Payloads: an entry whose only field is ``data`` carries a JSON object (what :meth:`append` and
:meth:`publish` write); any other entry is read as its flat fields, all text
(``Event.text_values``), as ``redis-cli XADD s * a 1 b x`` writes them. A payload that cannot be
read becomes an event with a ``problem``, never an exception.

Positions: an entry id ``MS-SEQ`` (milliseconds, then a sequence within the millisecond) is the
position ``MS * 2**20 + SEQ``: increasing in append order, and an ``int`` as the interface
wants. It holds for the ids Redis makes (``*``): a million entries in one millisecond is beyond
any server. An entry added with an explicit id whose sequence reaches 2**20 would break the
order; mlship never adds one.

Publishing once per key: :meth:`publish` runs a script that sets ``<stream>:published:<key>``
(``NX``, expiring after ``publish_ttl_s``, a week by default) and adds the entry only when the
key was new, in one atomic step, so two consumers publishing the same key (a redelivered event)
append it once. After the key expires the same key appends again: a redelivery later than that is
not deduplicated.

Durability: "held durably" means what the server's persistence gives. The test server writes an
append-only file fsynced on every write; a production Redis needs ``appendonly yes`` (and
``appendfsync always`` to lose nothing on a power cut, ``everysec`` for at most a second). With
replicas, a write is on the primary alone until they copy it; ``WAIT`` would bound that, and is
not issued here.

The client is redis-py's synchronous one; its pool makes a broker usable from several threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import redis
import redis.exceptions

from mlship.brokers.base import Backlog, Event, Message
from mlship.brokers.payload import read_object, write_object
from mlship.brokers.reasons import system_reason
from mlship.errors import BrokerError

SEQ_BITS = 20
"""Bits of a position that hold the sequence part of an entry id."""
READ_TIMEOUT_S = 30.0
"""How long an answer may take before the server is taken for gone (a broken connection is not
always noticed); a fetch waits at most ``MAX_BLOCK_MS`` so that it stays under it."""
MAX_BLOCK_MS = 20_000
PUBLISH_TTL_S = 7 * 24 * 3600
"""How long a published key is remembered by default: redeliveries come within minutes."""

_PUBLISH = """
local appended = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', KEYS[1], '*', 'data', ARGV[i])
    appended = appended + 1
  end
end
return appended
"""

Entry = tuple[bytes, dict[bytes, bytes]]


def position_of(entry_id: str) -> int:
    """The position of a Redis stream entry id ``MS-SEQ``."""
    ms, _, seq = entry_id.partition("-")
    return (int(ms) << SEQ_BITS) + int(seq or 0)


def id_of(position: int) -> str:
    """The entry id at ``position`` (the inverse of :func:`position_of`)."""
    return f"{position >> SEQ_BITS}-{position & ((1 << SEQ_BITS) - 1)}"


def event_of(entry_id: bytes, fields: dict[bytes, bytes] | None, deliveries: int = 1) -> Event:
    """An entry as an :class:`Event`; a payload that cannot be read gives a ``problem``."""
    text_id = entry_id.decode()
    ms = int(text_id.partition("-")[0])
    appended_at = datetime.fromtimestamp(ms / 1000, tz=UTC)
    values: dict[str, Any] = {}
    problem: str | None = None
    text_values = False
    if fields is not None and set(fields) == {b"data"}:
        values, problem = read_object(fields[b"data"], "data")
    elif fields:
        text_values = True
        for key, value in fields.items():
            try:
                values[key.decode("utf-8")] = value.decode("utf-8")
            except UnicodeDecodeError as exc:
                name = key.decode("utf-8", errors="replace")
                values, text_values = {}, False
                problem = (
                    f"field {name!r}: not UTF-8 text "
                    f"(byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
                )
                break
    else:
        problem = "the entry has no fields"
    return Event(
        id=text_id,
        position=position_of(text_id),
        appended_at=appended_at,
        fields=values,
        deliveries=deliveries,
        text_values=text_values,
        problem=problem,
    )


class RedisBroker:
    """A Redis server's streams; ``url`` is how it is named in messages (no credentials)."""

    def __init__(
        self, client: redis.Redis, url: str, *, publish_ttl_s: int = PUBLISH_TTL_S
    ) -> None:
        self._client = client
        self.url = url
        self.publish_ttl_s = publish_ttl_s
        self._publish = client.register_script(_PUBLISH)

    @classmethod
    def connect(cls, url: str, shown: str, *, timeout_s: float = 3.0) -> RedisBroker:
        """A broker on the server at ``url``, checked with a ``PING``; ``shown`` is ``url``
        without credentials, the only form errors carry."""
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=READ_TIMEOUT_S,
            socket_keepalive=True,
            health_check_interval=30,
        )
        broker = cls(client, shown)
        try:
            with broker.talking("reach"):
                client.ping()
        except BrokerError:
            client.close()
            raise
        return broker

    @contextlib.contextmanager
    def talking(self, doing: str = "use") -> Iterator[None]:
        """Turn redis-py's errors into a :class:`BrokerError` naming the server, without the
        exception chain (whose arguments may hold the URL with its password)."""
        try:
            yield
        except redis.exceptions.AuthenticationError:
            self._fail("the Redis server at {url} refused the user name or password")
        except redis.exceptions.ConnectionError as exc:
            if "WRONGPASS" in str(exc) or "NOAUTH" in str(exc):
                self._fail("the Redis server at {url} refused the user name or password")
            self._fail(f"cannot {doing} the Redis server at {{url}}: {_reason(exc)}")
        except redis.exceptions.TimeoutError as exc:
            self._fail(f"cannot {doing} the Redis server at {{url}}: timed out ({exc})")
        except redis.exceptions.ResponseError as exc:
            if str(exc).startswith(("WRONGPASS", "NOAUTH")):
                self._fail("the Redis server at {url} refused the user name or password")
            self._fail(f"the Redis server at {{url}} answered: {exc}")

    def _fail(self, message: str) -> NoReturn:
        raise BrokerError(message.format(url=self.url)) from None

    def consumer(self, stream: str, group: str, name: str, *, claim_idle_ms: int) -> RedisConsumer:
        with self.talking():
            try:
                self._client.xgroup_create(stream, group, id="0", mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise
        return RedisConsumer(self, stream, group, name, claim_idle_ms)

    def append(self, stream: str, fields: Mapping[str, Any]) -> str:
        data = write_object(fields, stream)
        with self.talking():
            entry_id = self._client.xadd(stream, {"data": data})
        return _text(entry_id)

    def publish(self, stream: str, messages: Sequence[Message]) -> int:
        if not messages:
            return 0
        keys = [stream, *(f"{stream}:published:{message.key}" for message in messages)]
        args: list[Any] = [self.publish_ttl_s]
        args.extend(write_object(message.fields, stream) for message in messages)
        with self.talking():
            appended = self._publish(keys=keys, args=args)
        return int(appended)

    def read(self, stream: str, after: int | None, count: int) -> list[Event]:
        start = "-" if after is None else f"({id_of(after)}"
        with self.talking():
            entries = _entries(self._client.xrange(stream, min=start, max="+", count=count))
        return [event_of(entry_id, fields) for entry_id, fields in entries]

    def close(self) -> None:
        self._client.close()

    # What the consumers use.

    @property
    def client(self) -> redis.Redis:
        return self._client


class RedisConsumer:
    """One consumer of a Redis consumer group.

    Closing it does not delete it from the group: that would drop its pending entries, which
    must stay to be claimed by another consumer (or by this one, restarted under its name).
    """

    def __init__(
        self, broker: RedisBroker, stream: str, group: str, name: str, claim_idle_ms: int
    ) -> None:
        self._broker = broker
        self.stream = stream
        self.group = group
        self.name = name
        self.claim_idle_ms = claim_idle_ms
        self._cursor = "0-0"
        """Where the next ``XAUTOCLAIM`` resumes its scan of the group's pending entries."""

    def fetch(self, count: int, block_ms: int) -> list[Event]:
        """Claimed entries first, then new ones; ``block_ms`` 0 does not wait, and no fetch
        waits longer than ``MAX_BLOCK_MS``."""
        client = self._broker.client
        with self._broker.talking():
            events = self._claim(count)
            if len(events) < count:
                read: Any = client.xreadgroup(
                    self.group,
                    self.name,
                    {self.stream: ">"},
                    count=count - len(events),
                    block=min(block_ms, MAX_BLOCK_MS) if block_ms > 0 and not events else None,
                )
                for _stream, entries in read or []:
                    events.extend(event_of(i, fields) for i, fields in _entries(entries))
        return events

    def _claim(self, count: int) -> list[Event]:
        client = self._broker.client
        answer: Any = client.xautoclaim(
            self.stream,
            self.group,
            self.name,
            min_idle_time=self.claim_idle_ms,
            start_id=self._cursor,
            count=count,
        )
        self._cursor = _text(answer[0])
        entries = _entries(answer[1])
        if not entries:
            return []
        pending: Any = client.xpending_range(
            self.stream,
            self.group,
            min=entries[0][0],
            max=entries[-1][0],
            count=len(entries) * 2 + 10,
            consumername=self.name,
        )
        times = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        return [
            event_of(entry_id, fields, max(2, times.get(_text(entry_id), 2)))
            for entry_id, fields in entries
        ]

    def ack(self, events: Sequence[Event]) -> None:
        if not events:
            return
        with self._broker.talking():
            self._broker.client.xack(self.stream, self.group, *(event.id for event in events))

    def backlog(self) -> Backlog:
        client = self._broker.client
        with self._broker.talking():
            groups: Any = client.xinfo_groups(self.stream)
            found = next((g for g in groups if _text(g["name"]) == self.group), None)
            if found is None:
                return Backlog(undelivered=0, pending=0)
            lag = found.get("lag")
            if lag is None:  # Redis cannot tell after deletions: count what is after the group
                lag = self._count_after(_text(found["last-delivered-id"]))
        return Backlog(undelivered=int(lag), pending=int(found["pending"]))

    def _count_after(self, last_id: str) -> int:
        counted, start = 0, f"({last_id}"
        while True:
            entries = _entries(
                self._broker.client.xrange(self.stream, min=start, max="+", count=10_000)
            )
            if not entries:
                return counted
            counted += len(entries)
            start = f"({_text(entries[-1][0])}"

    def close(self) -> None:
        """Nothing to release: the connections are the broker's."""


def _entries(raw: Any) -> list[Entry]:
    """Stream entries as redis-py returns them, without those deleted since (``None``)."""
    return [(entry_id, fields) for entry_id, fields in raw or [] if entry_id is not None]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _reason(exc: BaseException) -> str:
    """What the operating system said (``Connection refused``), else redis-py's message."""
    return system_reason(exc) or str(exc).rstrip(".")
