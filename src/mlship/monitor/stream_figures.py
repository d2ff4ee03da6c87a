"""The figures of a stream that alert rules watch, from the prediction log its runner writes.

``mlship stream run`` logs one row per event it worked on (``monitor/predlog.py``): role
``stream`` for an event scored, with the prediction and, in its output, whether the event came
too late for its window (``late``) and when the broker took it (``appended_at``); role ``error``
for an event that went to the dead-letter stream, with the reason. An event delivered again
after its consumer died before acknowledging it is logged again, so:

- each event counts once, as its first logging says (the one whose prediction or dead letter
  was published: publishing skips an event already published);
- ``stream.redeliveries`` is the number of loggings beyond the first: rows minus events;
- ``stream.latency_p50_ms`` and ``stream.latency_p99_ms`` run from the broker's append to the
  first logging's time (the runner writes the log before it publishes), over scored events.

The figures that come from the broker (``stream.lag``, ``stream.pending``) are read by
``monitor/stream_rules.py``; this module only computes, from a frame, so tests and readers share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from mlship.monitor.predlog import ERROR_ROLE, STREAM_ROLE
from mlship.monitor.window import Window

BROKER_METRICS = ("stream.lag", "stream.pending")
"""Read from the broker: the spec's group, now (whatever the rule's window)."""
LOG_METRICS = (
    "stream.events",
    "stream.dead_letters",
    "stream.dead_letter_rate",
    "stream.redeliveries",
    "stream.late",
    "stream.latency_p50_ms",
    "stream.latency_p99_ms",
)
"""Read from the stream's prediction log, over the rule's window."""
STREAM_METRICS = (*BROKER_METRICS, *LOG_METRICS)

LOG_COLUMNS = ("request_id", "at", "role", "output")
"""The prediction-log columns :func:`stream_figures` reads."""

_OUTPUT = pl.Struct({"late": pl.Boolean(), "appended_at": pl.String()})


@dataclass(frozen=True)
class StreamFigures:
    """A stream's events over a window, each counted once."""

    events: int
    dead_letters: int
    redeliveries: int
    late: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None

    def metrics(self) -> dict[str, float | None]:
        """The figures under the names alert rules use; a rate without events is None."""
        rate = self.dead_letters / self.events if self.events else None
        return {
            "stream.events": float(self.events),
            "stream.dead_letters": float(self.dead_letters),
            "stream.dead_letter_rate": rate,
            "stream.redeliveries": float(self.redeliveries),
            "stream.late": float(self.late),
            "stream.latency_p50_ms": self.latency_p50_ms,
            "stream.latency_p99_ms": self.latency_p99_ms,
        }


def stream_figures(log: pl.DataFrame, window: Window, now: datetime) -> StreamFigures:
    """The figures of the events in ``log`` (rows of one stream's deployment, with
    :data:`LOG_COLUMNS`) first logged in ``window`` before ``now``: its duration, or its
    newest N events."""
    rows = log.filter(pl.col("role").is_in([STREAM_ROLE, ERROR_ROLE]) & (pl.col("at") <= now))
    if window.seconds is not None:
        rows = rows.filter(pl.col("at") >= now - timedelta(seconds=window.seconds))
    ordered = rows.with_row_index("_order").sort(["at", "_order"])
    first = ordered.group_by("request_id", maintain_order=True).first()
    if window.rows is not None:
        first = first.tail(window.rows)
        ordered = ordered.join(first.select("request_id"), on="request_id", how="semi")
    scored = first.filter(pl.col("role") == STREAM_ROLE).with_columns(
        pl.col("output").str.json_decode(_OUTPUT).alias("_output")
    )
    late = scored.filter(pl.col("_output").struct.field("late").fill_null(False)).height
    appended = (
        pl.col("_output").struct.field("appended_at").str.to_datetime(time_zone="UTC", strict=False)
    )
    waited = scored.select(
        ((pl.col("at") - appended).dt.total_microseconds() / 1000).clip(lower_bound=0.0)
    ).to_series()
    waited = waited.drop_nulls()
    return StreamFigures(
        events=first.height,
        dead_letters=first.filter(pl.col("role") == ERROR_ROLE).height,
        redeliveries=ordered.height - first.height,
        late=late,
        latency_p50_ms=_percentile(waited, 0.5),
        latency_p99_ms=_percentile(waited, 0.99),
    )


def _percentile(values: pl.Series, q: float) -> float | None:
    """The ``q`` quantile with linear interpolation, as ``health.latency_*`` are computed."""
    if values.is_empty():
        return None
    found = values.quantile(q, "linear")
    return None if found is None else float(found)
