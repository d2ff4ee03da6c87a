"""NATS JetStream as a :class:`~mlship.brokers.base.Broker`: durable pull consumers and acks.

A stream of mlship's is a JetStream stream (file storage) named after it, with the characters
JetStream refuses in a name (``.``, ``*``, ``>``, path separators, white space) replaced by
``_``, taking one subject: the stream's name. It is created when first used. A group is a
durable pull consumer of that stream (explicit acks, ``ack_wait`` = the group's
``claim_idle_ms``, no limit on deliveries, from the first message); every :meth:`consumer` of
the group pulls from the same durable, which is how JetStream shares the load. JetStream itself
redelivers what a consumer left unacknowledged for ``ack_wait``, so a dead consumer's events go to
a living one with ``num_delivered`` above 1, the event's ``deliveries``. The group's ``ack_wait``
is set when the group is created; a consumer asking for another ``claim_idle_ms`` updates it.

Payloads: a message's body is a JSON object; any other body gives an event with a ``problem``.
Positions and ids are JetStream stream sequences.

Publishing once per key: :meth:`publish` sends the key as ``Nats-Msg-Id``; the server drops a
message whose id it has seen within the stream's ``duplicate_window`` (two hours by default, a
constructor argument, fixed when the stream is created) and says so (``PubAck.duplicate``), which
counts as not appended. A redelivery later than the window is not deduplicated.

Durability: a publish returns when the server has stored the message. A single server writes its
file store through the operating system and fsyncs it every ``sync_interval`` (two minutes by
default); to lose nothing on a power cut, set ``jetstream { sync_interval: always }`` (server
2.10+) or run the stream with replicas (R3 acknowledges after a quorum stored it).

nats-py is asyncio only. The interface is synchronous (the runner's loop is, and so is Redis's
client), so each broker runs its own event loop in a daemon thread and every call waits for a
coroutine on it (``asyncio.run_coroutine_threadsafe``).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from datetime import UTC
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    StorageType,
    StreamConfig,
)

from mlship.brokers.base import Backlog, Event, Message
from mlship.brokers.payload import read_object, write_object
from mlship.brokers.reasons import system_reason
from mlship.errors import BrokerError

DUPLICATE_WINDOW_S = 2 * 3600.0
"""How long JetStream remembers a published key by default: longer than any redelivery."""
MAX_ACK_PENDING = 20_000
"""Messages a group may have delivered and unacknowledged at once, all consumers together."""
_SLACK_S = 10.0
"""How much longer than the operation itself a call waits for the event loop's answer."""
_RECONNECTS = 60
_RECONNECT_WAIT_S = 2
"""nats-py's defaults: a broken connection is retried for two minutes."""
_REFUSED = re.compile(r"[\s.*>/\\]")

T = TypeVar("T")


def stream_name(stream: str) -> str:
    """The JetStream name of ``stream``: the characters JetStream refuses replaced by ``_``."""
    return _REFUSED.sub("_", stream)


class _Loop:
    """An asyncio event loop in a daemon thread, for synchronous callers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="mlship-nats", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout_s + _SLACK_S)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


def event_of(msg: Msg, deliveries: int | None = None) -> Event:
    """A JetStream message as an :class:`Event`; a body that cannot be read gives a
    ``problem``."""
    metadata = msg.metadata
    sequence = metadata.sequence.stream
    fields, problem = read_object(msg.data, "body")
    return Event(
        id=str(sequence),
        position=sequence,
        appended_at=metadata.timestamp.astimezone(UTC),
        fields=fields,
        deliveries=deliveries or metadata.num_delivered,
        problem=problem,
    )


class NatsBroker:
    """A NATS server's JetStream; ``url`` is how it is named in messages (no credentials)."""

    def __init__(
        self,
        loop: _Loop,
        client: Client,
        url: str,
        *,
        duplicate_window_s: float = DUPLICATE_WINDOW_S,
        timeout_s: float = 5.0,
    ) -> None:
        self._loop = loop
        self._client = client
        self._js: JetStreamContext = client.jetstream(timeout=timeout_s)
        self.url = url
        self.duplicate_window_s = duplicate_window_s
        self.timeout_s = timeout_s
        self._streams: set[str] = set()

    @classmethod
    def connect(
        cls,
        url: str,
        shown: str,
        *,
        timeout_s: float = 3.0,
        duplicate_window_s: float = DUPLICATE_WINDOW_S,
    ) -> NatsBroker:
        """A broker on the server at ``url``, checked to have JetStream; ``shown`` is ``url``
        without credentials, the only form errors carry."""
        loop = _Loop()
        try:
            client = loop.run(_connect(url, timeout_s), timeout_s)
        except nats.errors.Error as exc:
            loop.stop()
            raise BrokerError(_connect_failure(exc, shown)) from None
        except OSError as exc:
            loop.stop()
            raise BrokerError(
                f"cannot reach the NATS server at {shown}: {_describe(exc)}"
            ) from None
        broker = cls(loop, client, shown, duplicate_window_s=duplicate_window_s)
        try:
            loop.run(broker._js.account_info(), timeout_s)
        except (
            nats.errors.NoRespondersError,
            nats.errors.TimeoutError,
            nats.js.errors.ServiceUnavailableError,
        ):
            broker.close()
            raise BrokerError(
                f"{shown}: JetStream is not enabled on this server; start it with -js"
            ) from None
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            broker.close()
            raise BrokerError(
                f"the NATS server at {shown} did not give its JetStream account: {_describe(exc)}"
            ) from None
        return broker

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run ``coroutine`` on the broker's loop; nats-py's errors become a
        :class:`BrokerError` naming the server."""
        try:
            return self._loop.run(coroutine, timeout_s or self.timeout_s)
        except nats.js.errors.APIError as exc:
            raise BrokerError(
                f"the NATS server at {self.url} answered: {exc.description or exc}"
            ) from None
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            raise BrokerError(
                f"cannot use the NATS server at {self.url}: {_describe(exc)}"
            ) from None

    async def _stream(self, stream: str) -> str:
        """The JetStream name of ``stream``, the stream created if missing."""
        name = stream_name(stream)
        if name in self._streams:
            return name
        try:
            info = await self._js.stream_info(name)
        except nats.js.errors.NotFoundError:
            info = await self._js.add_stream(
                StreamConfig(
                    name=name,
                    subjects=[stream],
                    storage=StorageType.FILE,
                    duplicate_window=self.duplicate_window_s,
                    allow_direct=True,
                )
            )
        if stream not in (info.config.subjects or []):
            raise BrokerError(
                f"the NATS server at {self.url} has a stream {name!r} that does not take the "
                f"subject {stream!r} (it takes {info.config.subjects}); two stream names that "
                "differ only in characters JetStream refuses cannot be used together"
            )
        self._streams.add(name)
        return name

    def consumer(self, stream: str, group: str, name: str, *, claim_idle_ms: int) -> NatsConsumer:
        durable = stream_name(group)

        async def create() -> str:
            jetstream = await self._stream(stream)
            config = ConsumerConfig(
                durable_name=durable,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=claim_idle_ms / 1000,
                max_deliver=-1,
                deliver_policy=DeliverPolicy.ALL,
                max_ack_pending=MAX_ACK_PENDING,
            )
            # Creates the group, or updates its ack_wait to this consumer's claim_idle_ms.
            await self._js.add_consumer(jetstream, config)
            return jetstream

        return NatsConsumer(self, self.call(create()), durable, name)

    def append(self, stream: str, fields: Mapping[str, Any]) -> str:
        data = write_object(fields, stream)

        async def append() -> int:
            await self._stream(stream)
            ack = await self._js.publish(stream, data)
            return ack.seq

        return str(self.call(append()))

    def publish(self, stream: str, messages: Sequence[Message]) -> int:
        if not messages:
            return 0
        bodies = [write_object(message.fields, stream) for message in messages]

        async def publish() -> int:
            await self._stream(stream)
            acks = await asyncio.gather(
                *(
                    self._js.publish(stream, body, headers={"Nats-Msg-Id": message.key})
                    for message, body in zip(messages, bodies, strict=True)
                )
            )
            return sum(1 for ack in acks if not ack.duplicate)

        return self.call(publish(), self.timeout_s * 2)

    def read(self, stream: str, after: int | None, count: int) -> list[Event]:
        start = (after or 0) + 1

        async def read() -> list[Event]:
            name = stream_name(stream)
            try:
                info = await self._js.stream_info(name)
            except nats.js.errors.NotFoundError:
                return []
            wanted = min(count, info.state.last_seq - start + 1)
            if wanted <= 0:
                return []
            subscription = await self._js.pull_subscribe(
                stream,
                stream=name,
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                    opt_start_seq=start,
                    ack_policy=AckPolicy.NONE,
                    inactive_threshold=60.0,
                    mem_storage=True,
                ),
            )
            events: list[Event] = []
            try:
                while len(events) < wanted:
                    try:
                        msgs = await subscription.fetch(wanted - len(events), timeout=1.0)
                    except nats.errors.TimeoutError:
                        break  # fewer than counted: some were deleted
                    events.extend(event_of(msg, deliveries=1) for msg in msgs)
            finally:
                info_consumer = await subscription.consumer_info()
                await subscription.unsubscribe()
                await self._js.delete_consumer(name, info_consumer.name)
            return events

        return self.call(read(), self.timeout_s * 4)

    @property
    def client(self) -> Client:
        return self._client

    @property
    def jetstream(self) -> JetStreamContext:
        return self._js

    def close(self) -> None:
        try:
            self._loop.run(self._client.close(), self.timeout_s)
        except (nats.errors.Error, TimeoutError, OSError):
            pass
        finally:
            self._loop.stop()


class NatsConsumer:
    """One member of a group: pull requests on the group's durable consumer.

    Each fetch asks on an inbox of its own, and gives it up only once the server has answered
    the request in full (messages up to the batch, or a status that ends it): a message can
    never reach a fetch that stopped waiting for it and be handed out by the next one, long
    after JetStream redelivered it to another consumer. It keeps the messages it fetched until
    they are acknowledged, since an ack answers the delivery it acknowledges.
    """

    def __init__(self, broker: NatsBroker, jetstream: str, durable: str, name: str) -> None:
        self._broker = broker
        self.jetstream = jetstream
        self.durable = durable
        self.name = name
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{jetstream}.{durable}"
        self._unacked: dict[str, Msg] = {}

    def fetch(self, count: int, block_ms: int) -> list[Event]:
        """Those available, up to ``count``; when there are none, waits up to ``block_ms`` for
        one and takes what came with it. ``block_ms`` 0 does not wait."""
        wait_s = block_ms / 1000
        msgs = self._broker.call(self._pull(count, wait_s), wait_s + 3 * self._broker.timeout_s)
        events = []
        for msg in msgs:
            event = event_of(msg)
            self._unacked[event.id] = msg
            events.append(event)
        return events

    async def _pull(self, count: int, wait_s: float) -> list[Msg]:
        client = self._broker.client
        inbox = client.new_inbox()
        subscription = await client.subscribe(inbox)
        try:
            msgs = await self._request(subscription, inbox, {"batch": count, "no_wait": True})
            if not msgs and wait_s > 0:
                # One message, waited for: a lingering request for more would keep taking
                # messages after this fetch has returned.
                expires = int(wait_s * 1e9)
                msgs = await self._request(
                    subscription, inbox, {"batch": 1, "expires": expires}, wait_s
                )
                if msgs and count > 1:
                    more = {"batch": count - 1, "no_wait": True}
                    msgs += await self._request(subscription, inbox, more)
        finally:
            await subscription.unsubscribe()
        return msgs

    async def _request(
        self, subscription: Subscription, inbox: str, request: dict[str, Any], wait_s: float = 0
    ) -> list[Msg]:
        """Send one pull request; its messages, until the batch is full or a status ends it
        (no messages, request expired, a conflict). A request the server never ends (a broken
        connection) is given up after the broker's timeout: what it delivers later goes to no
        one and is redelivered after ``ack_wait``."""
        client = self._broker.client
        await client.publish(self._next, json.dumps(request).encode(), reply=inbox)
        msgs: list[Msg] = []
        deadline = time.monotonic() + wait_s + self._broker.timeout_s
        while len(msgs) < request["batch"]:
            try:
                msg = await subscription.next_msg(timeout=max(deadline - time.monotonic(), 0.001))
            except nats.errors.TimeoutError:
                break
            status = JetStreamContext.is_status_msg(msg)
            if status is None:
                msgs.append(msg)
            elif status != "100":  # 100: a heartbeat; anything else ends the request
                break
        return msgs

    def backlog(self) -> Backlog:
        info = self._broker.call(self._broker.jetstream.consumer_info(self.jetstream, self.durable))
        return Backlog(undelivered=info.num_pending or 0, pending=info.num_ack_pending or 0)

    def ack(self, events: Sequence[Event]) -> None:
        """Acknowledge ``events`` and wait for the server to confirm each. An ack answers the
        delivery it acknowledges, so an event is acknowledged by the consumer that fetched it;
        one this consumer does not hold (acknowledged already) is skipped."""
        msgs = [self._unacked[event.id] for event in events if event.id in self._unacked]
        if not msgs:
            return

        async def ack() -> None:
            await asyncio.gather(*(msg.ack_sync(timeout=self._broker.timeout_s) for msg in msgs))

        self._broker.call(ack(), self._broker.timeout_s * 2)
        for event in events:
            self._unacked.pop(event.id, None)

    def close(self) -> None:
        """Forget the unacknowledged messages: JetStream redelivers them after ``ack_wait``.
        The durable stays; it is the group's."""
        self._unacked.clear()


async def _connect(url: str, timeout_s: float) -> Client:
    """A connection to ``url``. The first connection is tried twice, and its failure raised
    with the reason of the last attempt (nats-py would otherwise keep trying for two minutes);
    once connected, the client reconnects after a broken connection as usual, which a
    long-running consumer needs."""
    client = Client()
    failures: list[Exception] = []

    async def remember(error: Exception) -> None:
        """nats-py's error callback: keeps the last error for the caller, logs nothing."""
        failures[:] = [error]

    try:
        await client.connect(
            servers=[url],
            connect_timeout=max(1, round(timeout_s)),
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            error_cb=remember,
        )
    except nats.errors.NoServersError:
        if failures:
            raise failures[-1] from None
        raise
    client.options["max_reconnect_attempts"] = _RECONNECTS
    client.options["reconnect_time_wait"] = _RECONNECT_WAIT_S
    return client


def _connect_failure(exc: Exception, shown: str) -> str:
    text = _describe(exc)
    if "authorization" in text.lower() or isinstance(exc, nats.errors.AuthorizationError):
        return f"the NATS server at {shown} refused the user name, password or token"
    return f"cannot reach the NATS server at {shown}: {text}"


def _describe(exc: BaseException) -> str:
    """What went wrong, in words: nats-py's exceptions often carry none."""
    text = str(exc).removeprefix("nats: ").strip("'")
    return system_reason(exc) or text or type(exc).__name__
