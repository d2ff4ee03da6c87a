"""Combine several mapped sources into one table: stacked (union) or joined on keys.

Combining is where data from different places silently goes wrong: a column with two types, two
sources disagreeing about the same customer, a join that pulls a feature from the future. So every
such case is either resolved by a rule the spec names, or stopped with an error naming the sources
and columns; and what happened (rows in and out, matches, conflicts and how they were resolved) is
returned as a JSON-able report for the run's lineage.

Helper columns used on the way all start with ``__mlship_`` and never reach the result. Columns
whose names start with ``_`` are the caller's bookkeeping (which file and line a row came from), not
data: they are carried along but never counted as conflicting values. A column that two joined
sources have and the conflicts rule merges row by row gets one such column, ``_from:<column>``: the
source each row's value came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from mlship.errors import DataError
from mlship.spec.data import Combine, Conflicts, Join

_HELPER = "__mlship_"
_SOURCE = f"{_HELPER}source"  # position of the row's source in spec order
_ROW = f"{_HELPER}row"
_RANK = f"{_HELPER}rank"
_COUNT = f"{_HELPER}count"
_MATCHED = f"{_HELPER}matched"
_RIGHT = f"{_HELPER}right."
_FROM = "_from:"  # per merged column, the source of each row's value (see mlship.data.tracking)


@dataclass(frozen=True)
class CombineResult:
    """The combined table, a JSON-able report of how it was made, and where columns came from.

    ``origin`` maps each column of a join to the source it came from (for a column several
    sources have, the one whose values it mostly holds: see the conflicts rule); a union's
    columns come from the source of each row, so its ``origin`` is empty.
    """

    frame: pl.DataFrame
    report: dict[str, Any]
    origin: dict[str, str] = field(default_factory=dict)


def combine_sources(
    frames: dict[str, pl.DataFrame],
    combine: Combine,
    order: list[str],
    *,
    track_origin: bool = False,
) -> CombineResult:
    """Combine ``frames`` (source label -> mapped frame) as ``combine`` says.

    ``order`` lists the sources in spec order; it breaks ties (earlier wins) and orders the
    stacked rows of a union. With ``track_origin``, a column merged row by row from two joined
    sources gets a ``_from:<column>`` column naming each row's source.
    """
    _check_sources(frames, order)
    if combine.conflicts is not None:
        _check_prefer(combine.conflicts, order)
    if combine.method == "union":
        return _union(frames, combine.conflicts, order)
    return _join_all(frames, combine, order, track_origin)


# -- shared ----------------------------------------------------------------------------------


def _quoted(names: list[str]) -> str:
    return ", ".join(map(repr, names))


def _check_sources(frames: dict[str, pl.DataFrame], order: list[str]) -> None:
    if not order:
        raise DataError("there are no sources to combine")
    if sorted(frames) != sorted(order) or len(set(order)) != len(order):
        raise DataError(
            f"the sources read ({_quoted(list(frames))}) do not match the sources of the spec "
            f"({_quoted(order)})"
        )
    for label in order:
        reserved = [c for c in frames[label].columns if c.startswith(_HELPER)]
        if reserved:
            raise DataError(
                f"source {label!r}: column name(s) {_quoted(reserved)} are reserved "
                f"(names starting with {_HELPER!r} are used while combining)"
            )


def _check_prefer(conflicts: Conflicts, order: list[str]) -> None:
    unknown = [name for name in conflicts.prefer if name not in order]
    if unknown:
        raise DataError(
            f"conflicts.prefer names unknown source(s) {_quoted(unknown)}; "
            f"the sources are: {_quoted(order)}"
        )


def _ranks(conflicts: Conflicts, order: list[str]) -> dict[str, int]:
    """Trust per source, lower wins: ``prefer`` order first, then the rest in spec order.

    For rule ``newest`` this is only the tie-break, so it is plain spec order.
    """
    preferred = conflicts.prefer if conflicts.rule == "prefer" else []
    ranked = [*preferred, *(name for name in order if name not in preferred)]
    return {name: position for position, name in enumerate(ranked)}


@dataclass
class _Tally:
    """Conflict counts, summed over the joins (or for the one union)."""

    rule: str
    sources: list[str]
    keys: int = 0
    values: int = 0
    resolved_from: dict[str, int] = field(default_factory=dict)

    def take(self, source: str, count: int) -> None:
        self.resolved_from[source] = self.resolved_from.get(source, 0) + count

    def as_dict(self) -> dict[str, Any]:
        return {
            "keys": self.keys,
            "values": self.values,
            "rule": self.rule,
            "resolved_from": {name: self.resolved_from.get(name, 0) for name in self.sources},
        }


# -- union -----------------------------------------------------------------------------------


def _union(
    frames: dict[str, pl.DataFrame], conflicts: Conflicts | None, order: list[str]
) -> CombineResult:
    """Stack the sources in spec order; a column a source lacks is null in its rows."""
    _check_union_types(frames, order)
    if conflicts is not None:
        _check_conflict_columns(frames, conflicts, order)
    tagged = [
        frames[label].with_columns(pl.lit(position, pl.UInt32).alias(_SOURCE))
        for position, label in enumerate(order)
    ]
    # Types were checked to agree, so "relaxed" only lets all-null (Null-typed) columns join in.
    stacked = pl.concat(tagged, how="diagonal_relaxed")
    report: dict[str, Any] = {
        "method": "union",
        "rows_in": {label: frames[label].height for label in order},
        "conflicts": None,
    }
    if conflicts is not None:
        stacked, tally = _reduce_duplicates(stacked, conflicts, order)
        report["conflicts"] = tally.as_dict()
    frame = stacked.drop(_SOURCE)
    report["rows_out"] = frame.height
    return CombineResult(frame=frame, report=report)


def _check_union_types(frames: dict[str, pl.DataFrame], order: list[str]) -> None:
    """Refuse to stack a column whose type differs between sources (instead of coercing it)."""
    types: dict[str, dict[str, pl.DataType]] = {}
    for label in order:
        for name, dtype in frames[label].schema.items():
            if dtype != pl.Null:
                types.setdefault(name, {})[label] = dtype
    for name, by_source in types.items():
        if len(set(by_source.values())) > 1:
            found = ", ".join(f"{label}: {dtype}" for label, dtype in by_source.items())
            raise DataError(
                f"column {name!r} has different types in sources {_quoted(list(by_source))} "
                f"({found}); map them to one type before combining"
            )


def _check_conflict_columns(
    frames: dict[str, pl.DataFrame], conflicts: Conflicts, order: list[str]
) -> None:
    needed = [*conflicts.key]
    if conflicts.rule == "newest" and conflicts.timestamp:
        needed.append(conflicts.timestamp)
    for label in order:
        missing = [name for name in needed if name not in frames[label].columns]
        if missing:
            raise DataError(
                f"source {label!r} lacks column(s) {_quoted(missing)} needed to resolve "
                f"conflicts (rule {conflicts.rule}); it has: {', '.join(frames[label].columns)}"
            )


def _reduce_duplicates(
    stacked: pl.DataFrame, conflicts: Conflicts, order: list[str]
) -> tuple[pl.DataFrame, _Tally]:
    """Keep one row per key by the rule; rows with a null key are kept as they are.

    A null key identifies nothing, so two such rows are not taken to be the same record.
    """
    key = conflicts.key
    rank = _ranks(conflicts, order)
    frame = stacked.with_row_index(_ROW).with_columns(
        pl.col(_SOURCE)
        .replace_strict(list(range(len(order))), [rank[label] for label in order])
        .cast(pl.UInt32)
        .alias(_RANK)
    )
    null_key = pl.any_horizontal([pl.col(name).is_null() for name in key])
    loose = frame.filter(null_key)
    keyed = frame.filter(~null_key).with_columns(pl.len().over(key).alias(_COUNT))
    winners = _sort_by_rule(keyed, conflicts).unique(subset=key, keep="first", maintain_order=True)
    tally = _count_duplicates(keyed, winners, conflicts, order)
    result = pl.concat([winners.drop(_COUNT), loose], how="vertical").sort(_ROW).drop(_ROW, _RANK)
    return result, tally


def _sort_by_rule(frame: pl.DataFrame, conflicts: Conflicts) -> pl.DataFrame:
    """Best row first: most trusted source, or newest timestamp (nulls last), then spec order."""
    if conflicts.rule == "newest" and conflicts.timestamp:
        return frame.sort(
            [conflicts.timestamp, _RANK, _ROW],
            descending=[True, False, False],
            nulls_last=True,
        )
    return frame.sort([_RANK, _ROW])


def _count_duplicates(
    keyed: pl.DataFrame, winners: pl.DataFrame, conflicts: Conflicts, order: list[str]
) -> _Tally:
    """Keys held by several rows, and the (key, column) pairs on which those rows disagree."""
    tally = _Tally(rule=conflicts.rule, sources=order)
    duplicated = keyed.filter(pl.col(_COUNT) > 1)
    values = [c for c in keyed.columns if c not in conflicts.key and not c.startswith("_")]
    if duplicated.height:
        differing = duplicated.group_by(conflicts.key).agg(
            [(pl.col(c).n_unique() > 1).cast(pl.UInt32).alias(c) for c in values]
        )
        tally.keys = differing.height
        tally.values = int(differing.select(pl.sum_horizontal(values).sum()).item() or 0)
    resolved = winners.filter(pl.col(_COUNT) > 1).group_by(_SOURCE).len()
    for position, count in resolved.iter_rows():
        tally.take(order[position], count)
    return tally


# -- join ------------------------------------------------------------------------------------


@dataclass
class _Table:
    """The table built so far, with the source each of its columns came from."""

    frame: pl.DataFrame
    origin: dict[str, str]
    sources: list[str]
    track_origin: bool = False

    @property
    def name(self) -> str:
        return " + ".join(map(repr, self.sources))


def _join_all(
    frames: dict[str, pl.DataFrame], combine: Combine, order: list[str], track_origin: bool
) -> CombineResult:
    """Start from the base source and join the others onto it, one by one."""
    base = combine.base or order[0]
    _check_join_plan(base, combine.joins, order)
    table = _Table(frames[base], dict.fromkeys(frames[base].columns, base), [base], track_origin)
    tally = _Tally(rule=combine.conflicts.rule, sources=order) if combine.conflicts else None
    entries = []
    for join in combine.joins:
        entries.append(_join_one(table, frames[join.source], join, combine.conflicts, order, tally))
    report: dict[str, Any] = {
        "method": "join",
        "base": base,
        "rows_in": {label: frames[label].height for label in order},
        "rows_out": table.frame.height,
        "joins": entries,
        "conflicts": tally.as_dict() if tally else None,
    }
    return CombineResult(frame=table.frame, report=report, origin=dict(table.origin))


def _check_join_plan(base: str, joins: list[Join], order: list[str]) -> None:
    """Every source is used exactly once: as the base or joined; a typo is not silently skipped."""
    if base not in order:
        raise DataError(f"combine.base {base!r} is not a source; the sources are: {_quoted(order)}")
    used = [base]
    for join in joins:
        if join.source not in order:
            raise DataError(
                f"join of {join.source!r}: no such source; the sources are: {_quoted(order)}"
            )
        if join.source in used:
            raise DataError(f"join of {join.source!r}: the source is already in the table")
        used.append(join.source)
    unused = [label for label in order if label not in used]
    if unused:
        raise DataError(
            f"source(s) {_quoted(unused)} are neither combine.base nor joined; "
            f"add a join for them or remove them"
        )


def _join_one(
    table: _Table,
    right: pl.DataFrame,
    join: Join,
    conflicts: Conflicts | None,
    order: list[str],
    tally: _Tally | None,
) -> dict[str, Any]:
    """Join ``right`` onto ``table`` in place and return the join's report entry."""
    where = f"join of {join.source!r} onto {table.name}"
    _check_join_columns(table.frame, right, join, where)
    entry = _entry(join, table.frame.height, right.height)
    right, right_names = _prepare_right(table.frame, right, join, where)
    overlap = [c for c in right.columns if c in table.frame.columns and c not in join.on]
    if overlap and conflicts is None:
        raise DataError(
            f"{where}: column(s) {_quoted(overlap)} exist on both sides; rename them in one "
            f"source's mapping or set combine.conflicts to say which side wins"
        )
    _check_same_types(table.frame, right, overlap, where, "overlapping")
    right = right.rename({c: _RIGHT + c for c in overlap})
    right = right.with_columns(pl.lit(True).alias(_MATCHED))
    if join.asof:
        joined = _asof_join(table.frame, right, join, where)
    else:
        joined = _key_join(table.frame, right, join, where)
    matched = int(joined[_MATCHED].is_not_null().sum())
    entry["matched"] = matched
    entry["unmatched"] = entry["rows_left"] - matched
    entry["dropped"] = entry["unmatched"] if join.how == "inner" else 0
    if conflicts is not None and tally is not None:
        names = {c: _RIGHT + c if c in overlap else right_names[c] for c in right_names}
        joined, entry["conflicts"] = _resolve_overlap(
            joined, table, overlap, join, names, conflicts, order, tally
        )
    if join.how == "inner":
        joined = joined.filter(pl.col(_MATCHED).is_not_null())
    table.frame = joined.drop(_MATCHED)
    for name in table.frame.columns:
        table.origin.setdefault(name, join.source)
    table.sources.append(join.source)
    entry["rows_out"] = table.frame.height
    return entry


def _entry(join: Join, rows_left: int, rows_right: int) -> dict[str, Any]:
    """A join's report entry; the counts are filled in as the join runs."""
    return {
        "source": join.source,
        "how": join.how,
        "on": list(join.on),
        "asof": join.asof,
        "tolerance": join.tolerance,
        "rows_left": rows_left,
        "rows_right": rows_right,
        "matched": 0,
        "unmatched": 0,
        "dropped": 0,
        "conflicts": None,
        "rows_out": 0,
    }


def _check_join_columns(left: pl.DataFrame, right: pl.DataFrame, join: Join, where: str) -> None:
    needed = [*join.on, *([join.asof] if join.asof else [])]
    for side, frame in (("the table", left), (repr(join.source), right)):
        missing = [name for name in needed if name not in frame.columns]
        if missing:
            raise DataError(
                f"{where}: key column(s) {_quoted(missing)} missing in {side}; "
                f"it has: {', '.join(frame.columns) or 'none'}"
            )
    _check_same_types(left, right, needed, where, "key")
    if join.asof:
        dtype = left.schema[join.asof]
        if not (dtype.is_temporal() or dtype.is_numeric()):
            raise DataError(
                f"{where}: as-of column {join.asof!r} holds {dtype}; it must be a date, time "
                f"or number to order rows in time"
            )


def _check_same_types(
    left: pl.DataFrame, right: pl.DataFrame, columns: list[str], where: str, kind: str
) -> None:
    for name in columns:
        if left.schema[name] != right.schema[name]:
            raise DataError(
                f"{where}: {kind} column {name!r} is {left.schema[name]} in the table but "
                f"{right.schema[name]} in the joined source; map them to one type"
            )


def _prepare_right(
    left: pl.DataFrame, right: pl.DataFrame, join: Join, where: str
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Rename the right's as-of timestamp to ``<asof>_<source>`` so it never poses as the left's.

    Returns the frame and, for every original right column, its name in the joined table.
    """
    names = {c: c for c in right.columns}
    if not join.asof:
        return right, names
    stamped = f"{join.asof}_{join.source}"
    for side, frame in (("the table", left), (repr(join.source), right)):
        if stamped in frame.columns:
            raise DataError(
                f"{where}: the matched timestamp would be named {stamped!r}, but {side} already "
                f"has a column of that name"
            )
    names[join.asof] = stamped
    # A row without a timestamp cannot be placed in time, so it can never be an as-of match.
    return right.filter(pl.col(join.asof).is_not_null()).rename({join.asof: stamped}), names


def _key_join(left: pl.DataFrame, right: pl.DataFrame, join: Join, where: str) -> pl.DataFrame:
    """A left join on equal keys that keeps the left's row order; ``inner`` filters afterwards.

    The right side must have one row per key: a join that multiplies the table's rows would
    duplicate records (and weight them twice in training) without anyone asking for it.
    """
    keyed = right.filter(pl.all_horizontal([pl.col(c).is_not_null() for c in join.on]))
    repeated = keyed.filter(pl.struct(join.on).is_duplicated())
    if repeated.height:
        example = repeated.select(join.on).row(0, named=True)
        raise DataError(
            f"{where}: {join.source!r} has {repeated.select(join.on).n_unique()} key(s) on "
            f"{_quoted(list(join.on))} held by more than one row (e.g. {example}), so the join "
            f"would repeat rows of the table; make the key unique or use an as-of join"
        )
    return left.join(right, on=join.on, how="left", maintain_order="left", coalesce=True)


def _asof_join(left: pl.DataFrame, right: pl.DataFrame, join: Join, where: str) -> pl.DataFrame:
    """Each left row gets the newest right row at or before its own time, never a later one.

    Polars needs both sides sorted by time (it cannot check this with ``by`` groups), so both
    are sorted here and the left's row order is restored afterwards. Left rows without a
    timestamp get no match.
    """
    asof = join.asof or ""
    stamped = f"{asof}_{join.source}"
    tolerance = _tolerance(join, left.schema[asof], where)
    indexed = left.with_row_index(_ROW)
    timed = indexed.filter(pl.col(asof).is_not_null()).sort(asof, maintain_order=True)
    untimed = indexed.filter(pl.col(asof).is_null())
    try:
        matched = timed.join_asof(
            right.sort(stamped, maintain_order=True),
            left_on=asof,
            right_on=stamped,
            by=list(join.on),
            strategy="backward",
            tolerance=tolerance,
            coalesce=False,
            check_sortedness=False,
        )
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{where}: as-of join on {asof!r} failed: {exc}") from None
    return pl.concat([matched, untimed], how="diagonal").sort(_ROW).drop(_ROW)


def _tolerance(join: Join, dtype: pl.DataType, where: str) -> str | int | float | None:
    """Durations like ``30d`` for time columns; a plain number for numeric ones."""
    if join.tolerance is None or dtype.is_temporal():
        return join.tolerance
    try:
        return int(join.tolerance) if dtype.is_integer() else float(join.tolerance)
    except ValueError:
        raise DataError(
            f"{where}: as-of column {join.asof!r} holds {dtype}, so tolerance must be a number, "
            f"not {join.tolerance!r}"
        ) from None


# -- conflicts between joined columns --------------------------------------------------------


def _resolve_overlap(
    joined: pl.DataFrame,
    table: _Table,
    overlap: list[str],
    join: Join,
    right_names: dict[str, str],
    conflicts: Conflicts,
    order: list[str],
    tally: _Tally,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Merge each column present on both sides into one, per row, by the conflicts rule.

    A null on one side is filled from the other; a conflict is two non-null values that differ.
    Returns the frame (right copies dropped) and this join's conflict counts.
    """
    rank = _ranks(conflicts, order)
    newer = _right_is_newer(table, join, right_names, conflicts, order)
    merged: list[pl.Expr] = []
    disagree: list[pl.Expr] = []
    counts: dict[str, int] = {}
    for name in overlap:
        origin = table.origin[name]
        right_wins = newer if newer is not None else pl.lit(rank[join.source] < rank[origin])
        left, right = pl.col(name), pl.col(_RIGHT + name)
        merged.append(
            pl.when(right_wins)
            .then(pl.coalesce(right, left))
            .otherwise(pl.coalesce(left, right))
            .alias(name)
        )
        if table.track_origin and not name.startswith("_"):
            # Which source each merged cell came from, for reasons that name its line.
            came_from = _FROM + name
            before = pl.col(came_from) if came_from in joined.columns else pl.lit(origin)
            from_right = right.is_not_null() & (right_wins | left.is_null())
            merged.append(
                pl.when(from_right).then(pl.lit(join.source)).otherwise(before).alias(came_from)
            )
        differs = left.is_not_null() & right.is_not_null() & (left != right)
        if name.startswith("_"):
            differs = pl.lit(False)
        disagree.append(differs.alias(name))
        won = joined.select(
            (differs & right_wins).sum().alias("right"),
            (differs & ~right_wins).sum().alias("left"),
        ).row(0)
        for winner, count in ((join.source, won[0]), (origin, won[1])):
            counts[winner] = counts.get(winner, 0) + int(count)
        # The merged column mostly holds the stronger side's values; later ties defer to it.
        table.origin[name] = min(origin, join.source, key=rank.__getitem__)
    keys, values = _count_disagreements(joined, disagree, join)
    tally.keys += keys
    tally.values += values
    for winner, count in counts.items():
        tally.take(winner, count)
    resolved_from = {name: counts[name] for name in order if name in counts}
    report = {"columns": overlap, "keys": keys, "values": values, "resolved_from": resolved_from}
    return joined.with_columns(merged).drop([_RIGHT + c for c in overlap]), report


def _count_disagreements(
    joined: pl.DataFrame, disagree: list[pl.Expr], join: Join
) -> tuple[int, int]:
    """Distinct join keys with a conflicting row, and conflicting cells."""
    if not disagree:
        return 0, 0
    in_conflict = joined.filter(pl.any_horizontal(disagree))
    keys = in_conflict.select(join.on).n_unique() if in_conflict.height else 0
    values = int(joined.select(pl.sum_horizontal(disagree).sum()).item() or 0)
    return keys, values


def _right_is_newer(
    table: _Table,
    join: Join,
    right_names: dict[str, str],
    conflicts: Conflicts,
    order: list[str],
) -> pl.Expr | None:
    """Rule newest: per row, whether the joined source's timestamp is the newer one.

    A missing timestamp is older than any; equal ones go to the source earlier in spec order.
    ``None`` for rule prefer, where the winning side is fixed per column.
    """
    if conflicts.rule != "newest":
        return None
    stamp = conflicts.timestamp or ""
    if stamp not in table.frame.columns or stamp not in right_names:
        side = "the table" if stamp not in table.frame.columns else repr(join.source)
        raise DataError(
            f"join of {join.source!r} onto {table.name}: rule newest needs the timestamp "
            f"column {stamp!r} on both sides, but {side} lacks it"
        )
    left_ts, right_ts = pl.col(stamp), pl.col(right_names[stamp])
    right_earlier = order.index(join.source) < order.index(table.origin[stamp])
    newer = (right_ts > left_ts) | (right_ts.is_not_null() & left_ts.is_null())
    tie = left_ts.eq_missing(right_ts)
    return (newer | (tie & pl.lit(right_earlier))).fill_null(False)
