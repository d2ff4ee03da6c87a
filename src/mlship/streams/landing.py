"""Landing a stream: consume it in a group of its own and store its events as history parts.

The lander is one more consumer group on the stream (``<group>-land``), so it reads every event
without taking any from the scorers. It gathers events into a batch and writes the batch as one
part of the stream's history (:mod:`mlship.streams.history`) once it holds ``part_events``
events or has waited ``part_seconds`` since its first one; it acknowledges the batch only after
the store holds the part. A lander that dies before that leaves its events pending, and the next
one (or another of the group) claims and lands them: at least once, and the history reads an
event landed twice once.

Events whose payload could not be read (not JSON, not an object) are acknowledged without being
landed and counted: they carry no fields to train on, and the scorers' dead-letter stream keeps
them with their reason.

Asked to stop (SIGTERM), the lander finishes the batch in hand: it writes and acknowledges what
it holds, then returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mlship.brokers.base import Consumer, Event
from mlship.store.logstore import LogStore, PartRef
from mlship.store.parts import PLAIN, Sealing
from mlship.streams.history import write_part

_POLL_SECONDS = 1.0
"""Longest wait on the broker, so a request to stop is seen within about a second."""


@dataclass(frozen=True)
class LandedBatch:
    """One batch landed and acknowledged."""

    part: PartRef | None
    """The part written (None when every event of the batch was unreadable)."""
    events: int
    """Events landed in the part (each once)."""
    unreadable: int
    """Events acknowledged without being landed, their payload unreadable."""


@dataclass(frozen=True)
class Landed:
    """What a lander did before it stopped."""

    events: int
    parts: int
    unreadable: int


def land(
    consumer: Consumer,
    store: LogStore,
    stream: str,
    *,
    sealing: Sealing = PLAIN,
    part_events: int = 10_000,
    part_seconds: float = 10.0,
    stop: threading.Event,
    on_batch: Callable[[LandedBatch], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Landed:
    """Land ``consumer``'s events as parts of ``stream``'s history in ``store`` until ``stop``
    is set, then land the batch in hand (see the module docstring). A part the store refuses
    raises, its events unacknowledged."""
    if part_events < 1 or part_seconds <= 0:
        raise ValueError(
            f"part_events and part_seconds must be positive: {part_events}, {part_seconds}"
        )
    held: list[Event] = []
    started = 0.0
    events = parts = unreadable = 0
    while True:
        stopping = stop.is_set()
        if not stopping:
            due_in = part_seconds - (clock() - started) if held else _POLL_SECONDS
            wait = max(0.0, min(_POLL_SECONDS, due_in))
            got = consumer.fetch(part_events - len(held), round(wait * 1000))
            if got and not held:
                started = clock()
            held.extend(got)
        full = len(held) >= part_events
        if held and (full or stopping or clock() - started >= part_seconds):
            batch = _land_batch(consumer, store, stream, held, sealing)
            held = []
            events += batch.events
            parts += batch.part is not None
            unreadable += batch.unreadable
            if on_batch is not None:
                on_batch(batch)
        if stopping:
            return Landed(events, parts, unreadable)


def _land_batch(
    consumer: Consumer, store: LogStore, stream: str, held: list[Event], sealing: Sealing
) -> LandedBatch:
    readable = [event for event in held if event.problem is None]
    part = write_part(store, stream, readable, sealing)
    consumer.ack(held)
    landed = len({event.id for event in readable})
    return LandedBatch(part, landed, len(held) - len(readable))
