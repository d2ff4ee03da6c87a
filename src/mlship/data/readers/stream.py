"""Landed streams: the events ``mlship stream land`` stored, in a time range, as rows.

A ``stream:`` source names a stream spec and a range (``since``, ``until``). Its rows are the
events of the stream's landed history (``streams/<name>`` in the workspace's log store) appended
in the range, or timed in it when the stream spec has ``event_time``: each event once, in the
order they arrived. Each payload's fields become columns typed as a JSON-lines file's are (a
field mixing numbers and text is read as text and typed value by value, as are the all-text
fields of a Redis entry), and each row's place is its event id, so a quarantine reason reads
``events event 1733500000000-0: age: 'forty' is not an integer``.

With the stream spec's ``features``, the same per-entity windowed aggregations ``mlship stream
run`` computes online are added as columns, computed point in time over the whole history up to
``until`` (a window reaches back before ``since``) and then cut to the range.

A relative bound (``since: 30d``) is taken back from the moment the source is read. The source's
fingerprint is that of the events in the range (and the stream spec's features), so a dataset is
made again exactly when the landed data it is made of changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import polars as pl

from mlship.data.lineage import StreamLineage
from mlship.data.readers.base import BATCH_ROWS, SourceData, SourceReader
from mlship.data.readers.location import BLOCK_BYTES, ProgressHook
from mlship.data.readers.values import records_frame
from mlship.errors import DataError, MlshipError
from mlship.spec.data import Source
from mlship.store.context import HasLogs, HasSealing

if TYPE_CHECKING:
    from mlship.spec.stream import StreamSpec
    from mlship.streams.history import History

_AGE = re.compile(r"^(\d+)(s|m|h|d)$")
_AGE_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class HistoryStores(HasLogs, HasSealing, Protocol):
    """Where landed histories are read from: the workspace's log store, and its sealing."""


class StreamReader(SourceReader):
    """The landed events of a stream in a range (``stream: {spec, since, until}``)."""

    format = "stream"

    def __init__(
        self,
        source: Source,
        base_dir: Path,
        *,
        stores: HistoryStores | None,
        block_bytes: int = BLOCK_BYTES,
        batch_rows: int = BATCH_ROWS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(source, base_dir, block_bytes=block_bytes, batch_rows=batch_rows)
        if source.stream is None:
            raise ValueError(f"source {source.label!r} is not a stream source")
        self.range = source.stream
        self.stores = stores
        self.now = now

    @property
    def spec_path(self) -> Path:
        path = Path(self.range.spec).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def describe(self) -> str:
        return f"{self.label} (stream spec {self.spec_path})"

    def fingerprint(self) -> str:
        """What the dataset's version depends on: the events in the range and the features."""
        spec, history, _, _ = self._history()
        return _fingerprint(spec, history)

    def read(self, on_progress: ProgressHook | None = None) -> SourceData:
        spec, history, since, until = self._history()
        events = history.events
        records = [json.loads(payload) for payload in events["payload"].to_list()]
        frame = records_frame(records)
        if not frame.width:
            raise DataError(
                f"{self.describe()}: the {events.height} landed events read have no fields; "
                "expected events carrying the dataset's columns"
            )
        if spec.features:
            frame = _with_offline_features(frame, events, spec, self.label)
            in_range = _between(events, spec, since, until)
            frame, events = frame.filter(in_range), events.filter(in_range)
        if on_progress:
            on_progress(events.height, None)
        lineage = StreamLineage(
            name=self.label,
            stream=spec.name,
            spec=str(self.spec_path),
            where=history.where,
            since=None if since is None else since.isoformat(),
            until=until.isoformat(),
            rows=frame.height,
            fingerprint=_fingerprint(spec, history),
        )
        return SourceData(self.label, frame, lineage, None, events=events["id"].alias("event"))

    def _spec(self) -> StreamSpec:
        from mlship.spec.stream import load_stream_spec

        try:
            return load_stream_spec(self.spec_path)
        except MlshipError as exc:
            raise DataError(f"{self.label}: {exc}") from None

    def _bounds(self) -> tuple[datetime | None, datetime]:
        now = self.now()
        since = _bound(self.range.since, now)
        until = _bound(self.range.until, now) or now
        if since is not None and since >= until:
            raise DataError(
                f"{self.describe()}: the range is empty: since {_shown(since)} is not before "
                f"until {_shown(until)}; set `since` earlier than `until`"
            )
        return since, until

    def _history(self) -> tuple[StreamSpec, History, datetime | None, datetime]:
        """The stream spec, the landed events to read (from ``since``, or from the start when
        features reach back), and the range; refused when there is nothing to read."""
        from mlship.streams.history import history_log, read_history

        spec = self._spec()
        since, until = self._bounds()
        if self.stores is None:
            raise DataError(
                f"{self.describe()}: a stream source is read from a workspace's landed history; "
                "ingest it with `mlship run` or `mlship data validate`"
            )
        field = spec.event_time.field if spec.event_time is not None else None
        history = read_history(
            self.stores.logs,
            spec.name,
            self.stores.sealing,
            since=None if spec.features else since,
            until=until,
            event_time=field,
        )
        if history.parts == 0:
            raise DataError(
                f"{self.describe()}: stream {spec.name!r} has never been landed (nothing in "
                f"{self.stores.logs.location(history_log(spec.name))}); land its events first "
                f"with `mlship stream land {self.spec_path}`"
            )
        in_range = history.events.filter(_between(history.events, spec, since, until))
        if in_range.is_empty():
            by = f"timed by {field!r}" if field else "appended"
            span = (
                f"from {_shown(history.first)} to {_shown(history.last)}"
                if history.first is not None and history.last is not None
                else "none with a readable time"
            )
            start = _shown(since) if since is not None else "the start"
            raise DataError(
                f"{self.describe()}: no landed event {by} in [{start}, {_shown(until)}) "
                f"({history.landed} landed in {history.parts} part(s), {span}); widen `since` "
                "and `until`, or land more events"
            )
        return spec, history, since, until


def _fingerprint(spec: StreamSpec, history: History) -> str:
    """The events read (the range's, or all up to ``until`` with features) and the features."""
    digest = hashlib.sha256(history.fingerprint().encode())
    features = [feature.model_dump(mode="json") for feature in spec.features]
    digest.update(json.dumps([spec.name, features], sort_keys=True).encode())
    return digest.hexdigest()


def _between(
    events: pl.DataFrame, spec: StreamSpec, since: datetime | None, until: datetime
) -> pl.Series:
    """Which events are in ``[since, until)``, by event time when the spec has one."""
    from mlship.streams.history import EVENT_TIME

    column = events[EVENT_TIME if spec.event_time is not None else "appended_at"]
    kept = column.is_not_null() & (column < until)
    if since is not None:
        kept = kept & (column >= since)
    return kept


def _with_offline_features(
    frame: pl.DataFrame, events: pl.DataFrame, spec: StreamSpec, label: str
) -> pl.DataFrame:
    """``frame`` (one row per landed event, in position order) with the stream spec's features
    as columns, computed point in time from the events by the same plan ``mlship stream run``
    asks online. An event whose features cannot be computed (its time or a value unreadable,
    a dead letter online) gets a reason, so ingest quarantines it."""
    from mlship.data.typing import REASONS
    from mlship.streams.offline import offline_features

    clashing = [feature.name for feature in spec.features if feature.name in frame.columns]
    if clashing:
        raise DataError(
            f"{label}: the events already have field(s) {', '.join(clashing)}, named like "
            "features of the stream spec; rename the features"
        )
    assert spec.entity is not None and spec.event_time is not None  # the spec's rule
    needed = [spec.entity, spec.event_time.field]
    needed += [feature.column for feature in spec.features if feature.column is not None]
    needed = list(dict.fromkeys(name for name in needed if name in frame.columns))
    if {"id", "position"} & set(needed):
        raise DataError(
            f"{label}: the stream spec's features read an event field called `id` or "
            "`position`, names the event history keeps for the event's own id and position; "
            "rename that field in the events"
        )
    replayed = pl.concat([events.select("id", "position"), frame.select(needed)], how="horizontal")
    computed = offline_features(replayed, spec)
    names = [feature.name for feature in spec.features]
    # Reasons are kept joined by "; ": a problem's own "; " would split it in two.
    problems = computed["problem"].str.replace_all("; ", ", ", literal=True)
    reasons = pl.format(f"{label} event {{}}: {{}}", computed["id"], problems)
    extra = [computed[name] for name in names]
    if computed["problem"].null_count() < computed.height:
        extra.append(computed.select(reasons.alias(REASONS)).to_series())
    return frame.with_columns(extra)


def _shown(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _bound(text: str | None, now: datetime) -> datetime | None:
    """A range bound: an age back from ``now`` (``30d``), or an ISO 8601 date or date/time
    (naive: UTC)."""
    if text is None:
        return None
    cleaned = text.strip()
    age = _AGE.match(cleaned)
    if age is not None:
        return now - timedelta(seconds=int(age.group(1)) * _AGE_SECONDS[age.group(2)])
    moment = datetime.fromisoformat(cleaned)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
