"""Stream features offline: the same features, point in time, from a stream's event history.

Training on features computed differently from those a model is served with is the classic way
for a streamed model to be worse in production than in its evaluation. So the offline path does
not re-derive anything: it replays the history in position (arrival) order and asks the same
:class:`~mlship.streams.point_in_time.FeaturePlan` the online path asks, event by event, with the
entries of the events before it. Each row therefore sees only rows at a lower or equal position,
point in time by construction, and its values equal those the online store gave the same event.

The loop is plain Python on purpose: exact equality with the online path matters more than
speed. Per entity it keeps only the entries inside the horizon (older ones can no longer count
for any later event: the watermark never goes back), so the work per event is bounded by the
entity's recent events, not by the history's length.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import pyarrow as pa

from mlship.errors import DataError
from mlship.spec.stream import StreamSpec
from mlship.streams.aggregates import NUMERIC, Result
from mlship.streams.point_in_time import Entry, FeaturePlan, FeatureProblem

Events = TypeVar("Events")
"""A pyarrow Table, a polars DataFrame or a pandas DataFrame: the result is of the same kind."""

ADDED = ("late", "problem")


def offline_features(events: Events, spec: StreamSpec) -> Events:
    """``events`` (columns ``id``, ``position`` and the events' fields) with one column per
    feature, ``late`` and ``problem``: one row per distinct id (the first by position; a
    redelivery landed twice is one event), in position order."""
    table = _as_arrow(events)
    plan = FeaturePlan.from_spec(spec)
    _check_columns(table, plan)
    ids = [str(value) for value in table.column("id").to_pylist()]
    positions = table.column("position").to_pylist()
    for row, position in enumerate(positions):
        if isinstance(position, bool) or not isinstance(position, int):
            raise DataError(f"position: row {row + 1}: {position!r} is not a whole number")
    wanted = {plan.entity_field, plan.time_field, *plan.columns}
    fields = {name: table.column(name).to_pylist() for name in wanted if name in table.column_names}
    order = sorted(range(table.num_rows), key=lambda row: positions[row])
    kept: list[int] = []
    taken: set[str] = set()
    for row in order:
        if ids[row] not in taken:
            taken.add(ids[row])
            kept.append(row)

    values: dict[str, list[Result]] = {feature.name: [] for feature in plan.features}
    late: list[bool] = []
    problems: list[str | None] = []
    recent: dict[str, list[Entry]] = {}
    for row in kept:
        try:
            reading = plan.read({name: column[row] for name, column in fields.items()})
        except FeatureProblem as exc:
            for column in values.values():
                column.append(None)
            late.append(False)
            problems.append(str(exc))
            continue
        entries = recent.setdefault(reading.entity, [])
        judged, mark = plan.judge(reading.time, entries)
        entry = Entry(ids[row], positions[row], reading.time, judged, mark, reading.values)
        entries.append(entry)
        for name, value in plan.values(entry, entries).items():
            values[name].append(value)
        late.append(judged)
        problems.append(None)
        if mark is not None:
            keep_after = plan.keeps_after(max(e.time for e in entries), 0.0)
            if entries[0].time < keep_after or len(entries) > 64:
                entries[:] = [e for e in entries if e.time >= keep_after]

    result = table.take(pa.array(kept, type=pa.int64()))
    for feature in plan.features:
        result = result.append_column(
            feature.name,
            pa.array(values[feature.name], type=_type(feature.agg, feature.column, plan, table)),
        )
    result = result.append_column("late", pa.array(late, type=pa.bool_()))
    result = result.append_column("problem", pa.array(problems, type=pa.string()))
    return cast(Events, _like(events, result))


def _type(agg: str, column: int | None, plan: FeaturePlan, table: pa.Table) -> pa.DataType:
    if agg in ("count", "distinct_count"):
        return pa.int64()
    if agg in NUMERIC:
        return pa.float64()
    assert column is not None
    name = plan.columns[column]
    if name in table.column_names:
        source: pa.DataType = table.schema.field(name).type
        return source
    return pa.null()


def _check_columns(table: pa.Table, plan: FeaturePlan) -> None:
    for needed in ("id", "position"):
        if needed not in table.column_names:
            raise DataError(
                f"{needed}: no such column in the events; expected id, position and the "
                f"events' fields ({', '.join(table.column_names) or 'none'} given)"
            )
    for name in (*(f.name for f in plan.features), *ADDED):
        if name in table.column_names:
            raise DataError(f"{name}: the events already have a column of that name")


def _as_arrow(events: Any) -> pa.Table:
    if isinstance(events, pa.Table):
        return events
    module = type(events).__module__.split(".")[0]
    if module == "polars":
        table: pa.Table = events.to_arrow()
        return table
    if module == "pandas":
        return pa.Table.from_pandas(events, preserve_index=False)
    raise DataError(
        "events: expected a pyarrow Table or a polars or pandas DataFrame, "
        f"not {type(events).__name__}"
    )


def _like(events: Any, result: pa.Table) -> Any:
    module = type(events).__module__.split(".")[0]
    if module == "polars":
        import polars as pl

        return pl.from_arrow(result)
    if module == "pandas":
        return result.to_pandas()
    return result
