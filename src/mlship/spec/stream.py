"""A stream spec: where events come from, the features computed from them, the model that scores
them and where the predictions go.

``mlship stream run stream.yaml`` consumes the source's stream in a consumer group, checks each
event against the model's signature (a bad one goes to the dead-letter stream with the reason),
adds the declared features, scores micro-batches with the deployment's routes and writes the
predictions to the output stream and the prediction log. The same ``features`` are computed
offline, point in time, from the landed event history for training (``stream:`` sources), so
what a model was trained on and what it is served with cannot differ.

Durations are written as ``45s``, ``30m``, ``1h``, ``2d`` (or ``500ms`` where a spec says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlship.durations import seconds_in
from mlship.errors import SpecError
from mlship.yamlfile import parse, read_text, validation_problems

_UNITS = ("ms", "s", "m", "h", "d")
_HINT = "a whole number and a unit: 500ms, 45s, 30m, 1h or 2d"
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"

Aggregation = Literal["count", "sum", "mean", "min", "max", "last", "distinct_count"]


def duration_seconds(text: str) -> float:
    """Seconds in ``"500ms"``, ``"45s"``, ``"30m"``, ``"1h"`` or ``"2d"``; ``"0"`` is zero."""
    seconds = seconds_in(text, _UNITS)
    if seconds is None:
        raise ValueError(f"expected a duration: {_HINT}")
    return seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _a_duration(value: str | None) -> str | None:
    if value is not None:
        duration_seconds(value)
    return value


class StreamSource(_Strict):
    """The broker and stream events are consumed from."""

    url: str = Field(
        description="redis://[user:password@]host:port/db or nats://host:port; ${VAR} reads the "
        "environment."
    )
    stream: str = Field(pattern=NAME, description="The stream (a NATS JetStream stream).")
    group: str = Field(
        "mlship", pattern=NAME, description="The consumer group every consumer of it joins."
    )
    claim_idle: str = Field(
        "30s",
        description="Events a consumer left unacknowledged this long go to another consumer.",
    )

    _durations = field_validator("claim_idle")(_a_duration)

    @property
    def claim_idle_ms(self) -> int:
        return round(duration_seconds(self.claim_idle) * 1000)


class Window(_Strict):
    """A window in event time: tumbling (``size`` only) or sliding (``slide`` below ``size``)."""

    size: str = Field(description="Its length: 10m, 1h, 1d.")
    slide: str | None = Field(
        None, description="How far successive windows start apart; the size when not given."
    )

    _durations = field_validator("size", "slide")(_a_duration)

    @model_validator(mode="after")
    def _slide_within_size(self) -> Window:
        if duration_seconds(self.size) <= 0:
            raise ValueError("size: a window must be longer than 0")
        if self.slide is not None:
            slide = duration_seconds(self.slide)
            if slide <= 0 or slide > duration_seconds(self.size):
                raise ValueError("slide: must be above 0 and at most the window's size")
        return self

    @property
    def size_seconds(self) -> float:
        return duration_seconds(self.size)

    @property
    def slide_seconds(self) -> float:
        return self.size_seconds if self.slide is None else duration_seconds(self.slide)


class StreamFeature(_Strict):
    """One per-entity windowed aggregation, added to each event as a column the model reads."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="The column it becomes.")
    agg: Aggregation = Field(description="count, sum, mean, min, max, last or distinct_count.")
    column: str | None = Field(
        None, description="The event field aggregated; not needed for count."
    )
    window: Window

    @model_validator(mode="after")
    def _column_unless_count(self) -> StreamFeature:
        if self.agg != "count" and self.column is None:
            raise ValueError(f"column: {self.agg} needs the event field it aggregates")
        return self


class EventTime(_Strict):
    """Which field is the event's time, and how late an event may be and still count."""

    field: str = Field(description="The event's time: ISO 8601 text (Z or an offset) or epoch.")
    max_delay: str = Field(
        "5s",
        description="The watermark trails the newest event time seen by this much: events "
        "up to this much out of order are in time.",
    )
    allowed_lateness: str = Field(
        "0",
        description="A window still takes events this long after the watermark passed its "
        "end; later ones are late: counted, scored, never added to a window.",
    )

    _durations = field_validator("max_delay", "allowed_lateness")(_a_duration)


class OnlineStore(_Strict):
    url: str = Field(description="redis://host:port/db holding the features' state.")
    prefix: str = Field("mlship:features", description="Key prefix of the state in Redis.")


class StreamBatch(_Strict):
    max_events: int = Field(500, ge=1, description="Most events scored in one micro-batch.")
    max_wait: str = Field(
        "20ms", description="How long a consumer waits for events when there are none."
    )

    _durations = field_validator("max_wait")(_a_duration)


class StreamSink(_Strict):
    stream: str = Field(pattern=NAME, description="A stream on the source's broker.")


class StreamSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Names its logs.")
    source: StreamSource
    entity: str | None = Field(
        None,
        description="The field that identifies whom an event is about (customer_id): features "
        "are per entity, and the same entity always takes the same route.",
    )
    event_time: EventTime | None = None
    features: list[StreamFeature] = Field(default_factory=list)
    online_store: OnlineStore | None = Field(
        None, description="Where features' state lives; the source's Redis when not given."
    )
    model: str | None = Field(None, description="MODEL:VERSION, MODEL@STAGE or MODEL.")
    deployment: Path | None = Field(
        None,
        description="A deployment file instead of `model`: routes with weights (canary), "
        "shadows; relative to this file.",
    )
    batch: StreamBatch = Field(default_factory=StreamBatch)
    output: StreamSink
    dead_letter: StreamSink

    @model_validator(mode="after")
    def _consistent(self) -> StreamSpec:
        if (self.model is None) == (self.deployment is None):
            raise ValueError("give either `model` or `deployment` (one of them)")
        if self.features and (self.entity is None or self.event_time is None):
            raise ValueError("features need `entity` and `event_time`")
        names = [feature.name for feature in self.features]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"features: {', '.join(repeated)} declared more than once")
        return self


def load_stream_spec(path: Path) -> StreamSpec:
    """Read a stream spec; errors name the file, the line and the field."""
    data, locator = parse(read_text(path, "stream spec", SpecError), path, SpecError)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping with `source`, `model` and `output`")
    try:
        spec = StreamSpec.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, StreamSpec)
        raise SpecError(locator.errors(problems)) from None
    if spec.deployment is not None and not spec.deployment.is_absolute():
        spec = spec.model_copy(update={"deployment": path.parent / spec.deployment})
    return spec
