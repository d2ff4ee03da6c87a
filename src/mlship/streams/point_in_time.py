"""The rule of point-in-time stream features, one implementation for the online and offline paths.

A stream spec's ``features`` become a :class:`FeaturePlan`. Both paths hold, per entity, the
:class:`Entry` of each event applied so far (its position, its time, whether it was late, the
watermark it was judged by and its values of the aggregated columns), and both ask the plan the
same two questions, in position order:

- :meth:`FeaturePlan.judge`: is a new event late, given the entity's entries at lower positions?
- :meth:`FeaturePlan.values`: what are an event's features, given the entity's entries (those at
  higher positions are ignored)?

Online (``online.py``) the entries live in Redis; offline (``offline.py``) in memory while the
history is replayed. Nothing else decides a value, so the two cannot drift apart.

The horizon. An entity's entries are kept as long as an event could still need them: the
watermark never goes back, and a window that is not late ends after ``watermark -
allowed_lateness``, so it starts after ``watermark - allowed_lateness - size``. A late event's
window can reach back any distance, though; to bound what is kept, every event sees only entries
whose time is at least ``watermark - horizon``, where ``horizon`` is the largest window's size
(twice: the window and as much again as a margin) plus ``allowed_lateness``. For events in time
this changes nothing; a late event more than one window beyond its lateness sees only the part of
its window inside the horizon, online and offline alike.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mlship.errors import DataError
from mlship.spec.stream import StreamSpec, duration_seconds
from mlship.streams.aggregates import NUMERIC, Point, Result, Scalar, aggregate, is_missing, number
from mlship.streams.event_time import EventTimeError, read_event_time, shown
from mlship.streams.windows import is_late, watermark, window_of


class FeatureProblem(DataError):
    """An event that features cannot be computed for: no entity, no readable time, a value an
    aggregation cannot take. Its message names the field; the event is a dead letter."""


@dataclass(frozen=True, slots=True)
class Entry:
    """What the features keep of one applied event."""

    id: str
    position: int
    time: float
    late: bool
    watermark: float | None
    """The entity's watermark as of this event's position: what it was judged by."""
    values: tuple[Scalar | None, ...]
    """Its values of :attr:`FeaturePlan.columns`, in that order (None: missing)."""


@dataclass(frozen=True)
class Reading:
    """An event's fields as features need them."""

    entity: str
    time: float
    values: tuple[Scalar | None, ...]


@dataclass(frozen=True)
class PlannedFeature:
    name: str
    agg: str
    column: int | None
    """Index into :attr:`FeaturePlan.columns`; None for ``count``."""
    size: float
    slide: float


@dataclass(frozen=True)
class FeaturePlan:
    """A stream spec's features, ready to judge and compute events."""

    entity_field: str
    time_field: str
    max_delay: float
    allowed_lateness: float
    columns: tuple[str, ...]
    features: tuple[PlannedFeature, ...]
    horizon: float

    @classmethod
    def from_spec(cls, spec: StreamSpec) -> FeaturePlan:
        if spec.entity is None or spec.event_time is None:
            raise DataError(f"stream {spec.name}: features need `entity` and `event_time`")
        columns = tuple(sorted({f.column for f in spec.features if f.column is not None}))
        planned = tuple(
            PlannedFeature(
                name=f.name,
                agg=f.agg,
                column=None if f.column is None else columns.index(f.column),
                size=f.window.size_seconds,
                slide=f.window.slide_seconds,
            )
            for f in spec.features
        )
        lateness = duration_seconds(spec.event_time.allowed_lateness)
        largest = max((f.size for f in planned), default=0.0)
        return cls(
            entity_field=spec.entity,
            time_field=spec.event_time.field,
            max_delay=duration_seconds(spec.event_time.max_delay),
            allowed_lateness=lateness,
            columns=columns,
            features=planned,
            horizon=2 * largest + lateness,
        )

    @property
    def numeric_columns(self) -> frozenset[int]:
        return frozenset(
            f.column for f in self.features if f.agg in NUMERIC and f.column is not None
        )

    def fingerprint(self) -> str:
        """Names what an entry holds and how it was judged: state kept under another
        fingerprint (other columns, another event time) is not mixed with this one's."""
        described = [self.entity_field, self.time_field, self.max_delay, self.allowed_lateness]
        text = json.dumps([described, list(self.columns)])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def read(self, fields: Mapping[str, object]) -> Reading:
        """The entity, time and column values of an event's ``fields``; FeatureProblem when
        one cannot be read."""
        entity = entity_key(self.entity_field, fields.get(self.entity_field))
        try:
            time = read_event_time(self.time_field, fields.get(self.time_field))
        except EventTimeError as exc:
            raise FeatureProblem(str(exc)) from None
        numeric = self.numeric_columns
        values: list[Scalar | None] = []
        for index, column in enumerate(self.columns):
            value = fields.get(column)
            if is_missing(value):
                values.append(None)
                continue
            if not isinstance(value, int | float | str):
                raise FeatureProblem(f"{column}: {shown(value)} is not a number or text")
            if isinstance(value, float) and not math.isfinite(value):
                raise FeatureProblem(f"{column}: {shown(value)} is not a finite number")
            if index in numeric:
                try:
                    number(value)
                except ValueError as exc:
                    users = ", ".join(
                        f"{f.name} ({f.agg})" for f in self.features if f.column == index
                    )
                    raise FeatureProblem(f"{column}: {shown(value)} {exc}; {users}") from None
            values.append(value)
        return Reading(entity=entity, time=time, values=tuple(values))

    def judge(self, time: float, earlier: Iterable[Entry]) -> tuple[bool, float | None]:
        """Whether an event at ``time`` is late, and the watermark it was judged by, given the
        entity's entries at lower positions. An event belongs in a window of each feature; it
        is late when any of them closed (its end plus ``allowed_lateness`` at or before the
        watermark), so a closed window never takes another event."""
        newest = max((entry.time for entry in earlier), default=None)
        mark = watermark(newest, self.max_delay)
        if not self.features:
            return False, mark
        first_end = min(window_of(time, f.size, f.slide)[1] for f in self.features)
        return is_late(first_end, self.allowed_lateness, mark), mark

    def values(self, entry: Entry, entries: Iterable[Entry]) -> dict[str, Result]:
        """The features of the event ``entry`` from its entity's ``entries``: those in time, at
        its position or below, within the horizon and in each feature's window."""
        floor = -math.inf if entry.watermark is None else entry.watermark - self.horizon
        seen = [
            other
            for other in entries
            if other.position <= entry.position and not other.late and other.time >= floor
        ]
        values: dict[str, Result] = {}
        for feature in self.features:
            start, end = window_of(entry.time, feature.size, feature.slide)
            column = feature.column
            points = [
                Point(other.time, other.position, None if column is None else other.values[column])
                for other in seen
                if start <= other.time < end
            ]
            values[feature.name] = aggregate(feature.agg, points)
        return values

    def keeps_after(self, newest: float | None, margin: float) -> float:
        """The earliest time an entity's entries must be kept for, when the newest time among
        them is ``newest``: the horizon below its watermark, and ``margin`` more."""
        mark = watermark(newest, self.max_delay)
        return -math.inf if mark is None else mark - self.horizon - margin


def entity_key(field: str, value: object) -> str:
    """The entity as text, the same whether it came as ``42``, ``42.0`` or ``"42"``."""
    if is_missing(value) or value == "":
        raise FeatureProblem(f"{field}: missing; features are per entity and need it")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FeatureProblem(f"{field}: {shown(value)} is not an entity; expected text or a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FeatureProblem(
                f"{field}: {shown(value)} is not an entity; expected text or a number"
            )
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)
