"""Duplicate keys inside one source: collapse exact copies, resolve the rest by the declared policy.

A source that holds one record twice either repeats it (an export run twice, an overlap of two
extracts: harmless, so the copies collapse into one and are counted) or contradicts itself (two
rows for customer 7 with different plans). Which of two contradicting rows is right cannot be
guessed, so by default every copy goes to quarantine with a reason naming the key, each copy's
line and the columns whose values differ; a source can instead declare that the first, the last
or the newest copy wins, or that such a file is not to be ingested at all.

This runs per source, right after typing and mapping, so the lines named are the source's own
physical lines, and a joined source is already one row per key when it is joined. A row with a
null in a key column identifies nothing and is left alone (the table's ``duplicates`` check still
sees it). Values of PII columns are never repeated in a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from mlship.data.tracking import DUPLICATE_KEY, ROW
from mlship.data.typing import REASONS
from mlship.errors import DataError
from mlship.spec.data import Column, NewestBy, Source

_INDEX = "__mlship_line_index"
_EXAMPLES = 3
PRIVATE = "(private value)"


@dataclass(frozen=True)
class DuplicateCounts:
    """What happened to one source's duplicate keys, for the validation summary and report."""

    source: str
    key: list[str]
    policy: str
    rows: int
    exact_copies: int
    conflicting_keys: int
    quarantined_rows: int
    dropped_rows: int
    examples: list[str]

    @property
    def outcome(self) -> str:
        """How the conflicting keys were resolved: ``quarantined``, ``kept first`` ..."""
        return {
            "quarantine": "quarantined",
            "keep_first": "kept first",
            "keep_last": "kept last",
            "fail": "failed",
        }.get(self.policy, "kept newest")

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "key": self.key,
            "policy": self.policy,
            "outcome": self.outcome,
            "rows": self.rows,
            "exact_copies": self.exact_copies,
            "conflicting_keys": self.conflicting_keys,
            "quarantined_rows": self.quarantined_rows,
            "dropped_rows": self.dropped_rows,
            "examples": self.examples,
        }


@dataclass(frozen=True)
class Deduplicated:
    """A source with one row per key, and what was set aside on the way.

    ``quarantined`` holds every copy of a conflicting key (policy ``quarantine``) with its reason
    in ``_reasons``; ``stand_ins`` one row per such key (key values and the reason only), which a
    join uses so that the rows matching a quarantined key are quarantined too instead of silently
    getting no match.
    """

    frame: pl.DataFrame
    quarantined: pl.DataFrame
    stand_ins: pl.DataFrame
    counts: DuplicateCounts | None


def source_key(source: Source, frame: pl.DataFrame) -> list[str]:
    """The key a source declares (an empty list when it declares none).

    There is no default, not even the spec's ``id`` columns: an id names an entity, and many
    sources hold several rows per entity (events, monthly usage), which a default key would
    quarantine as conflicting copies. A spec that declares no key ingests exactly as before.
    """
    if source.key is None:
        return []
    missing = [name for name in source.key if name not in frame.columns]
    if missing:
        present = ", ".join(c for c in frame.columns if not c.startswith("_"))
        raise DataError(
            f"source {source.label!r}: key column(s) {', '.join(map(repr, missing))} are "
            f"not in the source (after mapping); it has: {present}"
        )
    return list(source.key)


def _policy_name(policy: Any) -> str:
    return f"newest_by {policy.newest_by}" if isinstance(policy, NewestBy) else str(policy)


def resolve_duplicates(
    frame: pl.DataFrame, source: Source, columns: Sequence[Column]
) -> Deduplicated:
    """Collapse exact copies and resolve conflicting copies of ``source``'s key in ``frame``.

    ``frame`` is the mapped, typed source with its ``_source``/``_row`` tracking columns.
    """
    key = source_key(source, frame)
    empty = frame.clear()
    if not key:
        return Deduplicated(frame, empty, _stand_ins(empty, key, [], set(), source.label), None)
    policy = source.on_duplicate
    if isinstance(policy, NewestBy) and policy.newest_by not in frame.columns:
        present = ", ".join(c for c in frame.columns if not c.startswith("_"))
        raise DataError(
            f"source {source.label!r}: on_duplicate newest_by {policy.newest_by!r} is not a "
            f"column of the source (after mapping); it has: {present}"
        )
    data = [c for c in frame.columns if not c.startswith("_")]
    keyed = pl.all_horizontal([pl.col(name).is_not_null() for name in key])
    indexed = frame.with_row_index(_INDEX)
    exact = keyed & ~pl.struct(data).is_first_distinct()
    copies = int(indexed.select(exact.sum()).item())
    distinct = indexed.filter(~exact) if copies else indexed
    repeated = keyed & (pl.len().over(key) > 1)
    conflicting = distinct.filter(repeated)
    private = {c.name for c in columns if c.role == "pii"}
    groups = _groups(conflicting, key, data, private, source.label)
    counts = DuplicateCounts(
        source=source.label,
        key=key,
        policy=_policy_name(policy),
        rows=frame.height,
        exact_copies=copies,
        conflicting_keys=len(groups),
        quarantined_rows=0,
        dropped_rows=0,
        examples=[reason for _, reason in groups[:_EXAMPLES]],
    )
    if not groups:
        return Deduplicated(
            distinct.drop(_INDEX), empty, _stand_ins(empty, key, [], private, source.label), counts
        )
    if policy == "fail":
        raise DataError(_failure(source, groups, conflicting.height))
    if policy == "quarantine":
        reasons = pl.DataFrame(
            {**_key_columns(conflicting, key, groups), "__mlship_reason": [r for _, r in groups]}
        )
        marked = conflicting.join(reasons, on=key, how="left", nulls_equal=False).with_columns(
            pl.concat_str(
                [pl.col(REASONS), pl.col("__mlship_reason")], separator="; ", ignore_nulls=True
            ).alias(REASONS)
        )
        quarantined = marked.sort(_INDEX).drop(_INDEX, "__mlship_reason")
        kept = distinct.filter(~repeated).drop(_INDEX)
        counts = replace(counts, quarantined_rows=quarantined.height)
        stand_ins = _stand_ins(conflicting, key, groups, private, source.label)
        return Deduplicated(kept, quarantined, stand_ins, counts)
    winners = _winners(distinct, key, policy, repeated)
    kept = distinct.filter(~repeated | pl.col(_INDEX).is_in(winners.implode())).drop(_INDEX)
    counts = replace(counts, dropped_rows=distinct.height - kept.height)
    return Deduplicated(kept, empty, _stand_ins(empty, key, [], private, source.label), counts)


def _winners(distinct: pl.DataFrame, key: list[str], policy: Any, repeated: pl.Expr) -> pl.Series:
    """Row indexes of the copy each conflicting key keeps."""
    rows = distinct.filter(repeated)
    if isinstance(policy, NewestBy):
        # Newest first; a copy without a timestamp is older than any; equal ones: first line.
        rows = rows.sort([policy.newest_by, _INDEX], descending=[True, False], nulls_last=True)
        keep = "first"
    else:
        keep = "first" if policy == "keep_first" else "last"
    return rows.unique(subset=key, keep=keep, maintain_order=True)[_INDEX]  # type: ignore[arg-type]


def _shown(name: str, value: Any, private: set[str]) -> str:
    if name in private:
        return PRIVATE
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def _lines(rows: Sequence[str]) -> str:
    """``line 3, 7`` for ``["line 3", "line 7"]`` (``row`` for sources without lines)."""
    units = {row.split(" ", 1)[0] for row in rows}
    if len(units) == 1:
        unit = units.pop()
        numbers = [row.split(" ", 1)[1] for row in rows]
        return f"{unit}{'s' if len(rows) > 1 else ''} {', '.join(numbers)}"
    return ", ".join(rows)


def _key_text(key: list[str], values: Sequence[Any], private: set[str]) -> str:
    return ", ".join(
        f"{name} = {_shown(name, value, private)}" for name, value in zip(key, values, strict=True)
    )


def _groups(
    conflicting: pl.DataFrame, key: list[str], data: list[str], private: set[str], label: str
) -> list[tuple[tuple[Any, ...], str]]:
    """Each conflicting key (in order of its first line) with the reason its copies get."""
    if conflicting.is_empty():
        return []
    found = []
    grouped = conflicting.sort(_INDEX).group_by(key, maintain_order=True)
    for values, group in grouped:
        rows = group[ROW].to_list()
        differing = []
        for name in data:
            if name in key or group[name].n_unique() < 2:
                continue
            if name in private:
                differing.append(f"{name} (private values)")
                continue
            held: dict[str, list[str]] = {}
            for value, row in zip(group[name].to_list(), rows, strict=True):
                held.setdefault(_shown(name, value, private), []).append(row)
            shown = ", ".join(f"{value} at {_lines(where)}" for value, where in held.items())
            differing.append(f"{name} ({shown})")
        reason = (
            f"{DUPLICATE_KEY} ({_key_text(key, values, private)}) in source {label!r}: "
            f"{_lines(rows)} disagree on {'; '.join(differing)}"
        )
        found.append((tuple(values), reason))
    return found


def _key_columns(
    conflicting: pl.DataFrame, key: list[str], groups: list[tuple[tuple[Any, ...], str]]
) -> dict[str, pl.Series]:
    return {
        name: pl.Series(name, [values[i] for values, _ in groups], dtype=conflicting.schema[name])
        for i, name in enumerate(key)
    }


def _stand_ins(
    conflicting: pl.DataFrame,
    key: list[str],
    groups: list[tuple[tuple[Any, ...], str]],
    private: set[str],
    label: str,
) -> pl.DataFrame:
    """One row per quarantined key: the key, and a reason pointing at the source's copies."""
    if not groups:
        return pl.DataFrame(schema={name: conflicting.schema[name] for name in key})
    lines = conflicting.sort(_INDEX).group_by(key, maintain_order=True).agg(pl.col(ROW))
    where = {tuple(row[:-1]): row[-1] for row in lines.iter_rows()}
    reasons = [
        f"{DUPLICATE_KEY} ({_key_text(key, values, private)}) in joined source {label!r}: its "
        f"copies at {_lines(where[values])} disagree, so all are quarantined"
        for values, _ in groups
    ]
    return pl.DataFrame({**_key_columns(conflicting, key, groups), REASONS: reasons})


def _failure(source: Source, groups: list[tuple[tuple[Any, ...], str]], rows: int) -> str:
    shown = "; ".join(reason for _, reason in groups[:_EXAMPLES])
    more = f" (and {len(groups) - _EXAMPLES} more)" if len(groups) > _EXAMPLES else ""
    return (
        f"source {source.label!r} holds {len(groups)} key(s) in {rows} rows whose copies "
        f"disagree, and its on_duplicate is fail: {shown}{more}"
    )
