"""Scoring one micro-batch of stream events with a deployment's routing table.

The model server's path, fed by a broker instead of HTTP: each event is routed by its entity
(``Table.choose``: canary weights honoured, the same entity always on the same route; an event
without one is routed by its id, so a redelivery takes the route it took the first time),
checked against the chosen version's signature, and every route scores its events in one
``predict`` call. Shadows score the same events and are logged, never published.

What comes out is data for the runner to write, in its order (prediction log first, then the
output and dead-letter streams, then the acknowledgement):

- one output message per scored event, keyed by the event's id (publishing is idempotent by it);
- one dead letter per event that cannot be scored, keyed the same, with the original payload and
  the reason, naming the field (``monthly_charges: 'abc' is not a number``);
- the prediction-log rows: role ``stream`` for a route's answer (its output also says whether the
  event was late and when the broker took it: ``late``, ``appended_at``), ``shadow`` for a
  shadow's, and an ``error`` row (status 422 with the reason) for a dead letter, so
  ``health.error_rate`` counts them.

A Redis entry's flat fields are all text: they are typed as the signature says, as the values
of a CSV file are (``data/typing.py``: ``"12.5"`` for a float is 12.5, ``"yes"`` for a boolean is
true, ``""`` is missing). A JSON event's values are checked as a request's are. Fields that are
not inputs of the version (the event's time, its entity, anything else it carries) are not
given to the model; a feature's value is added to the record before it is checked.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import polars as pl
from pydantic import BaseModel, ValidationError

from mlship.brokers.base import Event, Message
from mlship.data.typing import REASONS, WARNINGS, TypedColumn, type_columns
from mlship.monitor.predlog import STREAM_ROLE, Entry, Failure
from mlship.serve.live import Served, Table
from mlship.serve.records import frame_of, outputs_of, readable_errors
from mlship.serve.usage import ServedVersion
from mlship.spec.data import ValueFormats

INVALID = 422
"""The status of an event's ``error`` row: its input cannot be scored, as a request's 422."""
FAILED = 500
"""The status of an event whose version failed to score it (the model, not the input)."""


class FeatureValues(Protocol):
    """What the online features give for one event (``streams``): the values added to its record,
    whether it came too late for its window, or why it cannot be used."""

    @property
    def values(self) -> Mapping[str, Any]: ...

    @property
    def late(self) -> bool: ...

    @property
    def problem(self) -> str | None: ...

    @property
    def replayed(self) -> bool:
        """Applied to the features before (a redelivery): its lateness was counted then."""
        ...


@dataclass(frozen=True)
class Work:
    """One ``predict`` call of one version on a batch's events, for the usage ledger and the
    metrics."""

    version: ServedVersion
    role: str
    """``stream`` (a route) or ``shadow``."""
    rows: int
    seconds: float
    failed: int = 0
    """Events the version could not score (a shadow's are only counted)."""


@dataclass(frozen=True)
class ScoredBatch:
    """What one micro-batch produced, to be written in this order: ``logged``, then ``outputs``
    and ``dead_letters``, then the acknowledgement."""

    outputs: list[Message]
    dead_letters: list[Message]
    logged: list[Entry | Failure]
    late: int
    """Events scored that came too late for their window (never added to one), less those
    whose lateness was counted at an earlier delivery."""
    work: list[Work]


@dataclass(frozen=True)
class _Pending:
    """An event on its way through one version: its record once checked, or why not."""

    event: Event
    record: BaseModel | None
    problem: str | None
    notes: tuple[dict[str, str], ...] = ()
    """Values read as missing without being declared so (a Redis entry's ``n/a``)."""


def score_batch(
    table: Table,
    events: Sequence[Event],
    *,
    entity: str | None,
    features: Sequence[FeatureValues] | None = None,
) -> ScoredBatch:
    """Score ``events`` with ``table`` (see the module docstring); ``entity`` names the field
    that routes them. ``features``, when given, holds one result per event, in order."""
    if features is not None and len(features) != len(events):
        raise ValueError(f"{len(features)} feature results for {len(events)} events")
    batch = _Batch(entity)
    groups: dict[int, list[tuple[Event, Mapping[str, Any]]]] = {}
    seen: set[str] = set()
    for i, event in enumerate(events):
        if event.id in seen:  # delivered twice into one batch: worked on once
            continue
        seen.add(event.id)
        found = features[i] if features is not None else None
        served = table.choose(route_key(event, entity))
        problem = event.problem or (found.problem if found is not None else None)
        if problem is not None:
            batch.refuse(event, served, INVALID, problem)
            continue
        if found is not None and found.late:
            batch.late.add(event.id)
            if found.replayed:
                batch.replayed.add(event.id)
        extra = found.values if found is not None else {}
        index = next(i for i, route in enumerate(table.routes) if route is served)
        groups.setdefault(index, []).append((event, extra))
    for index, members in groups.items():
        batch.route(table.routes[index], members)
    for shadow in table.shadows:
        if batch.scored:
            batch.shadow(shadow)
    scored_late = sum(
        1
        for message in batch.outputs
        if message.fields["late"] and message.key not in batch.replayed
    )
    return ScoredBatch(batch.outputs, batch.dead, batch.logged, scored_late, batch.work)


class _Batch:
    """What a batch has produced so far."""

    def __init__(self, entity: str | None) -> None:
        self.entity = entity
        self.late: set[str] = set()
        self.replayed: set[str] = set()
        self.outputs: list[Message] = []
        self.dead: list[Message] = []
        self.logged: list[Entry | Failure] = []
        self.work: list[Work] = []
        self.scored: list[tuple[Event, Mapping[str, Any]]] = []

    def refuse(
        self, event: Event, served: Served, status: int, reason: str, latency_ms: float = 0.0
    ) -> None:
        self.dead.append(dead_letter(event, reason))
        model = served.model
        self.logged.append(Failure(event.id, model.name, model.version, latency_ms, status, reason))

    def route(self, served: Served, members: Sequence[tuple[Event, Mapping[str, Any]]]) -> None:
        """Check and score a route's events in one ``predict`` call."""
        extras = {event.id: extra for event, extra in members}
        started = time.perf_counter()
        pending = checked(served, members)
        answers = _predict(served, [p for p in pending if p.record is not None])
        seconds = time.perf_counter() - started
        latency_ms = seconds * 1000
        failed = 0
        for item in pending:
            answer = answers.get(item.event.id)
            if item.problem is not None:
                self.refuse(item.event, served, INVALID, item.problem, latency_ms)
            elif not isinstance(answer, dict):
                failed += 1
                self.refuse(item.event, served, FAILED, str(answer), latency_ms)
            else:
                output = {**answer, "warnings": [*answer.get("warnings", []), *item.notes]}
                late = item.event.id in self.late
                self.outputs.append(_output(item.event, served, self.entity, output, late))
                # Lateness and the broker's time go to the record too: the stream's alert rules
                # read late events and end-to-end latency from the prediction log.
                logged = {**output, "late": late, "appended_at": item.event.appended_at.isoformat()}
                self.logged.append(_entry(served, STREAM_ROLE, latency_ms, item, logged))
                self.scored.append((item.event, extras[item.event.id]))
        rows = sum(1 for item in pending if item.record is not None)
        self.work.append(Work(served.usage_key, STREAM_ROLE, rows, seconds, failed))

    def shadow(self, shadow: Served) -> None:
        """Score the events the routes scored with ``shadow``: logged, never published; what it
        cannot score is only counted."""
        started = time.perf_counter()
        pending = checked(shadow, self.scored)
        answers = _predict(shadow, [p for p in pending if p.record is not None])
        seconds = time.perf_counter() - started
        done = 0
        for item in pending:
            answer = answers.get(item.event.id)
            if isinstance(answer, dict):
                done += 1
                self.logged.append(_entry(shadow, "shadow", seconds * 1000, item, answer))
        self.work.append(Work(shadow.usage_key, "shadow", done, seconds, len(pending) - done))


def route_key(event: Event, entity: str | None) -> str:
    """What routes ``event``: its entity's value (the same entity, the same route), else its id
    (a redelivered event takes the route it took before)."""
    if entity is not None:
        value = event.fields.get(entity)
        if value is not None and value != "":
            return str(value)
    return event.id


def checked(served: Served, members: Sequence[tuple[Event, Mapping[str, Any]]]) -> list[_Pending]:
    """Each event's record for ``served``, typed and checked against its signature, or the
    problems found, one line per field."""
    names = set(served.record.model_fields)
    texts = [i for i, (event, _) in enumerate(members) if event.text_values]
    typed: dict[int, tuple[dict[str, Any], str | None, str | None]] = {}
    if texts:
        typed = dict(zip(texts, _typed_texts(served, [members[i][0] for i in texts]), strict=True))
    pending = []
    for i, (event, extra) in enumerate(members):
        if i in typed:
            fields, reasons, warnings = typed[i]
        else:
            fields, reasons, warnings = dict(event.fields), None, None
        record = {name: value for name, value in fields.items() if name in names}
        record.update({name: value for name, value in extra.items() if name in names})
        said = (warnings or "").split("; ")
        notes = tuple({"kind": "read_as_missing", "note": note} for note in said if note)
        if reasons is not None:
            pending.append(_Pending(event, None, reasons, notes))
            continue
        try:
            pending.append(_Pending(event, served.record.model_validate(record), None, notes))
        except ValidationError as exc:
            pending.append(_Pending(event, None, "; ".join(readable_errors(exc.errors())), notes))
    return pending


def _typed_texts(
    served: Served, events: Sequence[Event]
) -> list[tuple[dict[str, Any], str | None, str | None]]:
    """The text fields of ``events`` typed as ``served``'s signature says, as a CSV's values are:
    per event, its fields (typed where they are inputs), the reasons a value does not fit, and
    the values read as missing without being declared so."""
    signature = served.model.signature
    columns = [
        TypedColumn(c.name, c.type, c.nullable, formats=c.values or ValueFormats())
        for c in signature.inputs
        if any(c.name in event.fields for event in events)
    ]
    frame = pl.DataFrame(
        {
            column.name: pl.Series(
                [_text(event.fields.get(column.name)) for event in events], dtype=pl.String
            )
            for column in columns
        },
        height=len(events),
    )
    rows = type_columns(frame, columns).to_dicts()
    results = []
    for event, row in zip(events, rows, strict=True):
        fields = dict(event.fields)
        for column in columns:
            if column.name in fields:  # an absent one stays absent: "Field required"
                fields[column.name] = row[column.name]
        absent = {_empty_reason(c.name) for c in columns if c.name not in event.fields}
        reasons = row[REASONS]
        if reasons is not None and absent:
            reasons = "; ".join(r for r in reasons.split("; ") if r not in absent) or None
        results.append((fields, reasons, row[WARNINGS]))
    return results


def _empty_reason(name: str) -> str:
    """The typing's reason for a missing value where one is required: said of a field the event
    does not have at all, the record's check says ``Field required`` instead."""
    return f"{name}: is empty, but the column is not nullable"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _predict(served: Served, pending: Sequence[_Pending]) -> dict[str, dict[str, Any] | str]:
    """Each event's output from one ``predict`` call; when the batch fails, each event is tried
    alone, so one the model cannot take does not hold up the others (its value is then the
    failure, for its dead letter)."""
    if not pending:
        return {}
    try:
        return dict(zip([p.event.id for p in pending], _answers(served, pending), strict=True))
    except Exception:
        return {p.event.id: _one(served, p) for p in pending}


def _one(served: Served, item: _Pending) -> dict[str, Any] | str:
    try:
        return _answers(served, [item])[0]
    except Exception as exc:  # the model's failure, not the event's: said in its dead letter
        return f"{served.label} failed to score it: {type(exc).__name__}: {exc}"


def _answers(served: Served, pending: Sequence[_Pending]) -> list[dict[str, Any]]:
    typed = [p.record for p in pending]
    predictions, proba = served.model.predict(frame_of(served, typed))
    outputs = outputs_of(served, predictions, proba)
    for output, row in zip(outputs, served.support.flags(typed), strict=True):
        if row:
            output["warnings"] = [flag.as_dict() for flag in row]
    return outputs


def _output(
    event: Event, served: Served, entity: str | None, output: dict[str, Any], late: bool
) -> Message:
    fields: dict[str, Any] = {
        "event_id": event.id,
        "entity": None if entity is None else event.fields.get(entity),
        "model": served.model.name,
        "version": served.model.version,
        "prediction": output["prediction"],
        "probabilities": output.get("probabilities"),
        "warnings": output.get("warnings", []),
        "late": late,
        "appended_at": event.appended_at.isoformat(),
        "scored_at": datetime.now(UTC).isoformat(),
    }
    return Message(event.id, fields)


def dead_letter(event: Event, reason: str) -> Message:
    """The dead letter of ``event``: its payload as it came, and why it was not scored."""
    fields = {
        "event_id": event.id,
        "payload": dict(event.fields),
        "reason": reason,
        "appended_at": event.appended_at.isoformat(),
        "deliveries": event.deliveries,
    }
    return Message(event.id, fields)


def _entry(
    served: Served,
    role: str,
    latency_ms: float,
    item: _Pending,
    output: dict[str, Any],
) -> Entry:
    assert item.record is not None
    record = item.record.model_dump(mode="json")
    model = served.model
    event = item.event.id
    return Entry(event, model.name, model.version, role, latency_ms, [record], [output])
