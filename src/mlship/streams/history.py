"""A stream's landed history: its events as Parquet parts in the workspace's log store.

``mlship stream land`` writes every batch of events it consumes as one part of the log
``streams/<stream spec name>``, and acknowledges the batch only once the part is stored, so an
event is in the history before the broker may forget it. Parts go through the
:class:`~mlship.store.logstore.LogStore` (the home, the artifacts' object storage or the tracking
server), which shows a part whole or not at all, and are sealed like the prediction log when
encryption is on. Parts are never rewritten.

A part's columns (:data:`SCHEMA`): the broker's ``id`` of the event, its ``position`` in the
stream, ``appended_at`` (when the broker took it, UTC), ``payload`` (the event's fields as JSON
text, as received: a value that was text stays text, so a field mixing numbers and ``"n/a"``
reads back the same) and ``text_values`` (every value came as text, as a Redis entry's do).

Delivery is at least once, so an event whose part was stored but whose acknowledgement was lost
is landed again by whoever gets it next. :func:`read_history` reads each event once (by id) and
in position order, the order point-in-time features replay.

A part is named after the time it was written, never before the newest ``appended_at`` it holds
(see :func:`write_part`): a part named before an instant holds no event appended at or after it,
so reading a range by ``appended_at`` skips the older parts without losing an event.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pyarrow as pa

from mlship.brokers.base import Event
from mlship.store.logread import load_parts
from mlship.store.logstore import LogStore, PartRef, check_log, part_name
from mlship.store.parts import PLAIN, Sealing, sealed_part
from mlship.streams.event_time import EventTimeError, read_event_time

STREAMS = "streams"
"""The folder of the landed histories: one log ``streams/<stream spec name>`` per stream."""

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("position", pa.int64()),
        ("appended_at", pa.timestamp("us", tz="UTC")),
        ("payload", pa.string()),
        ("text_values", pa.bool_()),
    ]
)

EVENT_TIME = "event_time"
"""The column :func:`read_history` adds when it is given the event-time field: the event's time
in UTC, null when the field is missing or not a time."""


def history_log(stream: str) -> str:
    """The log holding the landed events of the stream spec called ``stream``."""
    return check_log(f"{STREAMS}/{stream}")


def payload_text(fields: Mapping[str, Any]) -> str:
    """An event's fields as the JSON text a part keeps (values as they came, text as text)."""
    return json.dumps(dict(fields), ensure_ascii=False, default=str)


def write_part(
    store: LogStore, stream: str, events: Sequence[Event], sealing: Sealing = PLAIN
) -> PartRef | None:
    """Store ``events`` as one part of ``stream``'s history (None when there are none); returns
    only once the store holds it whole. An event landed twice in one batch is kept once.

    The part is named after now, or after the newest ``appended_at`` in it when the broker's
    clock is ahead of this machine's (see the module docstring)."""
    kept = sorted({event.id: event for event in reversed(events)}.values(), key=_position)
    if not kept:
        return None
    table = pa.Table.from_arrays(
        [
            pa.array([event.id for event in kept], pa.string()),
            pa.array([event.position for event in kept], pa.int64()),
            pa.array([_utc(event.appended_at) for event in kept], SCHEMA.field("appended_at").type),
            pa.array([payload_text(event.fields) for event in kept], pa.string()),
            pa.array([event.text_values for event in kept], pa.bool_()),
        ],
        schema=SCHEMA,
    )
    newest = max(int(_utc(event.appended_at).timestamp() * 1_000_000) for event in kept) * 1000
    log = history_log(stream)
    name = part_name(max(time.time_ns(), newest + 1000))
    store.put(log, name, sealed_part(table, sealing))
    return PartRef(log, name)


def _position(event: Event) -> int:
    return event.position


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class History:
    """The landed events of one stream in a range, each once, in position order."""

    stream: str
    where: str
    """Where the history's parts are, as messages name it."""
    parts: int
    """How many parts the stream has landed (0: never landed)."""
    events: pl.DataFrame
    """The events in the range: :data:`SCHEMA`'s columns, and :data:`EVENT_TIME` when read by
    event time."""
    landed: int
    """How many distinct events the parts read hold, in the range or not (every part, except
    for a range by appended time: those written since its start)."""
    first: datetime | None
    """The earliest time (appended, or event time) of the events read, in the range or not."""
    last: datetime | None
    """The latest such time."""

    def fingerprint(self) -> str:
        """sha256 of the events in the range (ids, positions and payloads, in order): the same
        landed events give the same fingerprint, however many parts hold them."""
        digest = hashlib.sha256()
        for column in ("id", "position", "payload"):
            digest.update(column.encode() + b"\0")
            values = self.events[column].cast(pl.String).fill_null("\0null")
            digest.update("\n".join(values.to_list()).encode())
        digest.update(str(self.events.height).encode())
        return digest.hexdigest()


def read_history(
    store: LogStore,
    stream: str,
    sealing: Sealing = PLAIN,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    event_time: str | None = None,
) -> History:
    """The events of ``stream`` in ``[since, until)`` (open ends when None), each once (by id),
    in position order.

    The range is on ``appended_at``; with ``event_time`` (the stream spec's field), on the event's
    own time, and events whose time cannot be read are in no range."""
    log = history_log(stream)
    written_since = since if event_time is None else None
    everything = store.parts(log)
    loaded = load_parts(store, [log], sealing, written_since)
    frames = [_conform(pl.read_parquet(item.source)) for item in loaded]
    events = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=_POLARS_SCHEMA)
    events = events.sort("position", maintain_order=True).unique(
        subset="id", keep="first", maintain_order=True
    )
    when = "appended_at"
    if event_time is not None:
        times = [_event_time(payload, event_time) for payload in events["payload"].to_list()]
        events = events.with_columns(pl.Series(EVENT_TIME, times, dtype=pl.Datetime("us", "UTC")))
        when = EVENT_TIME
    moments = events[when].drop_nulls()
    first = moments.min() if moments.len() else None
    last = moments.max() if moments.len() else None
    kept = events.filter(pl.col(when).is_not_null())
    if since is not None:
        kept = kept.filter(pl.col(when) >= _utc(since))
    if until is not None:
        kept = kept.filter(pl.col(when) < _utc(until))
    return History(
        stream=stream,
        where=store.location(log),
        parts=len(everything),
        events=kept,
        landed=events.height,
        first=first if isinstance(first, datetime) else None,
        last=last if isinstance(last, datetime) else None,
    )


_POLARS_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "position": pl.Int64(),
    "appended_at": pl.Datetime("us", "UTC"),
    "payload": pl.String(),
    "text_values": pl.Boolean(),
}


def _conform(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(pl.col(name).cast(dtype) for name, dtype in _POLARS_SCHEMA.items())


def _event_time(payload: str, field: str) -> datetime | None:
    """The event's time as the features read it; None when it cannot be read."""
    try:
        seconds = read_event_time(field, json.loads(payload).get(field))
    except EventTimeError:
        return None
    return datetime.fromtimestamp(seconds, UTC)
