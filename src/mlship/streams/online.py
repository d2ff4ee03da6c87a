"""Stream features online: each entity's recent events in Redis, features computed as they arrive.

State layout. One Redis hash per entity, ``{prefix}:{stream}:{fingerprint}:{entity}``, whose
fields are event ids and whose values are compact JSON ``[position, time, late, watermark,
[values of the aggregated columns]]`` (``prefix`` from ``online_store.prefix``, ``mlship:features``
by default; ``fingerprint`` from the entity and time fields, ``max_delay``, ``allowed_lateness``
and the aggregated columns, so a spec that changes them starts from fresh state instead of
misreading old entries). Keyed by event id, an event is held once however often it is delivered;
the sorting by position the computation needs is done in memory, since a batch reads an entity's
whole (trimmed) hash anyway.

A batch costs two round trips, whatever its size: one pipeline reads the hashes of the entities
it touches; the new events are judged (late or not, as of their positions) and written with
``HSETNX`` in a second pipeline, with the trimmed ids' ``HDEL``. Each event's features are then
computed as of its position from the entity's entries at or below it, by the same
:class:`~mlship.streams.point_in_time.FeaturePlan` the offline path uses. A redelivered event
finds its entry: it is judged as it was the first time and its features come out the same.

Trimming bounds the memory per entity to the events of ``horizon + margin`` seconds of event time
(see ``point_in_time``: ``horizon`` is twice the largest window plus ``allowed_lateness``;
``margin`` defaults to the largest window): an entry older than the entity's watermark less both
can no longer count for any new event. What it implies: a redelivery is recomputed exactly while
its entity's watermark has moved on by less than ``margin`` since the event was first applied; an
older one finds part of its window trimmed (its stored lateness still holds), and one whose entry
itself was trimmed is judged again as a new event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from mlship.brokers.base import Event
from mlship.errors import StorageError
from mlship.spec.stream import StreamSpec
from mlship.streams.aggregates import Result
from mlship.streams.point_in_time import Entry, FeaturePlan, FeatureProblem, Reading

DEFAULT_PREFIX = "mlship:features"


@dataclass(frozen=True)
class FeatureResult:
    """An event's features, or why it has none."""

    values: dict[str, Result] = field(default_factory=dict)
    """One per feature of the spec, by name; empty when there is a problem."""
    late: bool = False
    """Judged late: scored with the features of its window, never added to one. Count it
    unless ``replayed``."""
    problem: str | None = None
    """Why no features could be computed (no entity, no readable time, a value that is not a
    number for a numeric aggregate): the event belongs in the dead-letter stream."""
    replayed: bool = False
    """The event was applied before (a redelivery, or its id twice in one batch): its counters
    were already counted."""


class OnlineFeatures:
    """The features of a stream spec, kept in the Redis at ``redis_url``."""

    def __init__(self, spec: StreamSpec, redis_url: str, *, margin: float | None = None) -> None:
        self.plan = FeaturePlan.from_spec(spec)
        self.margin = max((f.size for f in self.plan.features), default=0.0)
        if margin is not None:
            if margin < 0:
                raise ValueError(f"margin: {margin} is below 0; trimming needs it at 0 or above")
            self.margin = margin
        prefix = spec.online_store.prefix if spec.online_store is not None else DEFAULT_PREFIX
        self._keys = f"{prefix}:{spec.name}:{self.plan.fingerprint()}:"
        self.url = _without_credentials(redis_url)
        self._redis = redis.Redis.from_url(redis_url, decode_responses=True)

    def key(self, entity: str) -> str:
        """The Redis hash holding ``entity``'s entries."""
        return self._keys + entity

    def apply(self, events: Sequence[Event]) -> list[FeatureResult]:
        """The features of ``events`` (one result each, in order), after adding them to the
        state; an event already applied is not added again."""
        results: list[FeatureResult | None] = [None] * len(events)
        readings: dict[int, Reading] = {}
        for index, event in enumerate(events):
            if event.problem is not None:
                results[index] = FeatureResult(problem=event.problem)
                continue
            try:
                readings[index] = self.plan.read(event.fields)
            except FeatureProblem as exc:
                results[index] = FeatureResult(problem=str(exc))
        by_entity: dict[str, list[int]] = {}
        for index, reading in readings.items():
            by_entity.setdefault(reading.entity, []).append(index)
        entities = sorted(by_entity)
        stored = self._read(entities)
        writes: dict[str, dict[str, str]] = {}
        trims: dict[str, list[str]] = {}
        for entity, known in zip(entities, stored, strict=True):
            indexes = by_entity[entity]
            before = set(known)
            fresh: dict[str, str] = {}
            for index in sorted(indexes, key=lambda i: events[i].position):
                event, reading = events[index], readings[index]
                if event.id in known:
                    continue
                earlier = [e for e in known.values() if e.position < event.position]
                late, mark = self.plan.judge(reading.time, earlier)
                entry = Entry(event.id, event.position, reading.time, late, mark, reading.values)
                known[event.id] = entry
                fresh[event.id] = _encode(entry)
            counted: set[str] = set()
            for index in indexes:
                event = events[index]
                entry = known[event.id]
                replayed = event.id in before or event.id in counted
                counted.add(event.id)
                values = self.plan.values(entry, known.values())
                results[index] = FeatureResult(values=values, late=entry.late, replayed=replayed)
            newest = max((e.time for e in known.values()), default=None)
            keep_after = self.plan.keeps_after(newest, self.margin)
            trimmed = {e.id for e in known.values() if e.time < keep_after}
            writes[entity] = {i: text for i, text in fresh.items() if i not in trimmed}
            trims[entity] = sorted(trimmed & before)
        self._write(writes, trims)
        return [result if result is not None else FeatureResult() for result in results]

    def entries(self, entity: str) -> list[Entry]:
        """``entity``'s stored entries, in position order (for inspection and tests)."""
        (known,) = self._read([entity])
        return sorted(known.values(), key=lambda entry: entry.position)

    def close(self) -> None:
        self._redis.close()

    def _read(self, entities: Sequence[str]) -> list[dict[str, Entry]]:
        if not entities:
            return []
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for entity in entities:
                    pipe.hgetall(self.key(entity))
                answers: list[dict[str, str]] = pipe.execute()
        except redis.RedisError as exc:
            raise StorageError(f"online features at {self.url}: cannot read: {exc}") from None
        return [
            {event_id: self._decode(entity, event_id, text) for event_id, text in answer.items()}
            for entity, answer in zip(entities, answers, strict=True)
        ]

    def _decode(self, entity: str, event_id: str, text: str) -> Entry:
        try:
            position, time, late, mark, values = json.loads(text)
            return Entry(
                event_id, int(position), float(time), bool(late), _float(mark), tuple(values)
            )
        except (ValueError, TypeError):
            raise StorageError(
                f"online features at {self.url}: {self.key(entity)} field {event_id}: "
                f"{text[:60]!r} is not an entry [position, time, late, watermark, values]; "
                "another program writes under this prefix"
            ) from None

    def _write(self, writes: dict[str, dict[str, str]], trims: dict[str, list[str]]) -> None:
        if not any(writes.values()) and not any(trims.values()):
            return
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for entity, fresh in writes.items():
                    for event_id, text in fresh.items():
                        pipe.hsetnx(self.key(entity), event_id, text)
                for entity, ids in trims.items():
                    if ids:
                        pipe.hdel(self.key(entity), *ids)
                pipe.execute()
        except redis.RedisError as exc:
            raise StorageError(f"online features at {self.url}: cannot write: {exc}") from None


def _encode(entry: Entry) -> str:
    row = [entry.position, entry.time, entry.late, entry.watermark, list(entry.values)]
    return json.dumps(row, separators=(",", ":"), allow_nan=False)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))
