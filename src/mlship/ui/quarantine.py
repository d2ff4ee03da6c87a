"""The quarantine browser's reads: a dataset's quarantined rows with each reason, its check and
its column, filtered and cut into pages here on the server.

The quarantine is the Parquet artifact ingesting stored: the rows, their ``_source`` and ``_row``
(and a joined source's ``_row:<source>``), ``_reasons`` with every reason of a row, and one
``_check:<key>`` column per failed check holding that check's message. A row's reasons are read
back as one record each: the check columns give theirs with the check and column they belong
to; what ``_reasons`` holds before them is what typing found (values of the wrong type, empties
in a column that may not be empty, keys whose copies disagreed), classified as the validation
summary classifies it. The artifact never changes (it is named by its hash), so its reasons
table is kept for the next page of the same quarantine.
"""

from __future__ import annotations

import io
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import polars as pl

from mlship.data.checks import is_tracking
from mlship.data.tracking import DUPLICATE_KEY, PLACED, PROVENANCE, ROW, SOURCE
from mlship.data.typing import REASONS
from mlship.errors import MlshipError
from mlship.store.entities import Dataset
from mlship.ui.datasets import page_number, private_columns
from mlship.workspace import Workspace

PAGE_SIZE = 50
CHECK = "_check:"
TABLE = "(table)"
"""How the column filter names reasons about no one column (rules, duplicate rows)."""
PRIVATE = "(private value)"
_KEPT = 4
_NOT_NULLABLE = "is empty, but the column is not nullable"


@dataclass(frozen=True)
class QuarantineQuery:
    """The browser's filters and page, as its form sends them."""

    check: str | None = None
    column: str | None = None
    page: int = 1

    @classmethod
    def parse(cls, values: dict[str, str]) -> QuarantineQuery:
        found = {}
        for key in ("check", "column"):
            text = (values.get(key) or "").strip()
            if len(text) > 300:
                raise MlshipError(
                    f"{key}: expected one of the listed values, got {len(text)} chars"
                )
            found[key] = text or None
        return cls(found["check"], found["column"], page_number(values))

    def params(self, **changes: Any) -> dict[str, str]:
        values = {"check": self.check or "", "column": self.column or "", "page": str(self.page)}
        values.update({key: str(value) for key, value in changes.items()})
        return {key: value for key, value in values.items() if value and value != "1"}


@dataclass(frozen=True)
class Reason:
    """Why a row was quarantined: the check, the column it is about (None: the row as a
    whole), and the message."""

    check: str
    column: str | None
    message: str


@dataclass(frozen=True)
class QuarantinedRow:
    """One quarantined row: where it came from, its reasons, and its values as text."""

    source: str
    line: str
    joined: list[str]
    """The line of each joined source its values came from (``billing row 44``)."""
    reasons: list[Reason]
    values: list[tuple[str, str]]


@dataclass(frozen=True)
class QuarantinePage:
    rows: list[QuarantinedRow]
    matched: int
    total: int
    page: int
    pages: int
    checks: list[tuple[str, int]]
    """Every check that quarantined rows, with how many (the filter's choices)."""
    columns: list[tuple[str, int]]


def _check_of(key: str, known: list[str]) -> tuple[str, str | None]:
    """The check and column a ``_check:<key>`` column is about (see ``compile_row_checks``)."""
    for name in known:
        if key.startswith(f"{name}."):
            rest = key[len(name) + 1 :]
            if rest == "weight":
                return "sample weight", name
            numbered = re.fullmatch(r"\d+\.(.+)", rest)
            if numbered:
                return numbered.group(1), name
    if key == "duplicates":
        return "duplicate row", None
    if key.startswith("rule."):
        return f"rule {key[5:]}", None
    unique = re.fullmatch(r"unique\.\d+(\.exact)?", key)
    if unique:
        return "unique" + (" (exact copy)" if unique.group(1) else ""), None
    return key, None


def reasons_table(frame: pl.DataFrame, known: list[str]) -> pl.DataFrame:
    """One row per reason of every quarantined row: ``row`` (its position in ``frame``),
    ``check``, ``column`` (null: the row as a whole) and ``message``."""
    known = sorted(known, key=len, reverse=True)  # "a.b" before "a" when both are columns
    indexed = frame.with_row_index("row")
    checks = [name for name in frame.columns if name.startswith(CHECK)]
    parts: list[pl.DataFrame] = []
    for name in checks:
        check, column = _check_of(name.removeprefix(CHECK), known)
        parts.append(
            indexed.select(
                "row",
                pl.lit(check).alias("check"),
                pl.lit(column, dtype=pl.String).alias("column"),
                pl.col(name).cast(pl.String).alias("message"),
            ).filter(pl.col("message").is_not_null())
        )
    if REASONS in frame.columns:
        reasons = pl.col(REASONS).cast(pl.String).fill_null("")
        joined = (
            pl.concat_str([pl.col(c) for c in checks], separator="; ", ignore_nulls=True)
            if checks
            else pl.lit("")
        ).fill_null("")
        # The checks' messages close the reasons ("; " before each): what is before is typing's.
        lengths = [text.str.len_chars().cast(pl.Int64) for text in (reasons, joined)]
        before = (lengths[0] - lengths[1] - 2).clip(lower_bound=0)
        typing = pl.when(joined == "").then(reasons).otherwise(reasons.str.slice(0, before))
        found = (
            indexed.select("row", typing.alias("message"))
            .with_columns(pl.col("message").str.split("; "))
            .explode("message")
            .filter(pl.col("message").is_not_null() & (pl.col("message") != ""))
        )
        duplicate = pl.col("message").str.starts_with(DUPLICATE_KEY)
        named = pl.col("message").str.replace(PLACED, "").str.extract(r"^([^:]+): ", 1)
        found = found.with_columns(
            pl.when(duplicate)
            .then(pl.lit("duplicate key"))
            .when(pl.col("message").str.contains(_NOT_NULLABLE, literal=True))
            .then(pl.lit("nullable"))
            .otherwise(pl.lit("type"))
            .alias("check"),
            pl.when(duplicate | ~named.is_in(known))
            .then(pl.lit(None, dtype=pl.String))
            .otherwise(named)
            .alias("column"),
        ).select("row", "check", "column", "message")
        parts.insert(0, found)
    if not parts:
        schema = {"row": pl.UInt32, "check": pl.String, "column": pl.String, "message": pl.String}
        return pl.DataFrame(schema=schema)
    return pl.concat(parts, how="vertical_relaxed")


@dataclass(frozen=True)
class _Loaded:
    frame: pl.DataFrame
    reasons: pl.DataFrame


_cache: OrderedDict[tuple[str, tuple[str, ...]], _Loaded] = OrderedDict()
_lock = threading.Lock()


def _load(workspace: Workspace, dataset: Dataset) -> _Loaded | None:
    sha = dataset.quarantine_sha256
    if not sha:
        return None
    known = tuple(str(c["name"]) for c in dataset.columns if isinstance(c, dict) and "name" in c)
    key = (sha, known)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    frame = pl.read_parquet(io.BytesIO(workspace.artifacts.get_bytes(sha)))
    loaded = _Loaded(frame, reasons_table(frame, list(known)))
    with _lock:
        _cache[key] = loaded
        while len(_cache) > _KEPT:
            _cache.popitem(last=False)
    return loaded


def _text(value: Any) -> str:
    if value is None:
        return "–"
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "…"


def quarantine_page(
    workspace: Workspace, dataset: Dataset, query: QuarantineQuery
) -> QuarantinePage:
    """The page of the dataset's quarantined rows ``query`` asks for, and the filters' choices.

    A check or column the quarantine does not have is refused, naming the ones it has."""
    loaded = _load(workspace, dataset)
    if loaded is None:
        return QuarantinePage([], 0, 0, 1, 1, [], [])
    reasons = loaded.reasons.with_columns(pl.col("column").fill_null(TABLE))
    checks = _counts(reasons, "check")
    columns = _counts(reasons, "column")
    for value, choices, name in ((query.check, checks, "check"), (query.column, columns, "column")):
        if value is not None and value not in {choice for choice, _count in choices}:
            listed = ", ".join(choice for choice, _count in choices) or "none"
            raise MlshipError(f"{name}: expected one of {listed}, got {value!r}")
    matching = reasons
    if query.check is not None:
        matching = matching.filter(pl.col("check") == query.check)
    if query.column is not None:
        matching = matching.filter(pl.col("column") == query.column)
    positions = matching.get_column("row").unique().sort()
    pages = max(1, math.ceil(len(positions) / PAGE_SIZE))
    page = min(query.page, pages)
    chosen = positions.slice((page - 1) * PAGE_SIZE, PAGE_SIZE)
    rows = _rows(loaded, chosen, private_columns(dataset))
    return QuarantinePage(rows, len(positions), loaded.frame.height, page, pages, checks, columns)


def _counts(reasons: pl.DataFrame, by: str) -> list[tuple[str, int]]:
    """Each value of ``by`` and how many rows have a reason with it, most first."""
    counted = reasons.group_by(by).agg(pl.col("row").n_unique().alias("rows"))
    ordered = counted.sort(["rows", by], descending=[True, False])
    return [(str(name), int(rows)) for name, rows in ordered.iter_rows()]


def _rows(loaded: _Loaded, chosen: pl.Series, private: frozenset[str]) -> list[QuarantinedRow]:
    frame = loaded.frame
    wanted = set(chosen.to_list())
    by_row: dict[int, list[Reason]] = {}
    chosen_reasons = loaded.reasons.filter(pl.col("row").is_in(list(wanted)))
    for row, check, column, said in chosen_reasons.iter_rows():
        # Typing quotes the value it could not read; a private column's is not shown.
        hidden = column in private and check in ("type", "nullable")
        message = f"{column}: {PRIVATE} does not fit the column's type" if hidden else said
        by_row.setdefault(int(row), []).append(Reason(check, column, message))
    data = [c for c in frame.columns if not is_tracking(c) and not c.startswith(CHECK)]
    joined = [c for c in frame.columns if c.startswith(PROVENANCE)]
    found = []
    for position in chosen.to_list():
        record = frame.row(int(position), named=True)
        values = [(c, PRIVATE if c in private else _text(record[c])) for c in data]
        lines = [
            f"{c.removeprefix(PROVENANCE)} {record[c]}" for c in joined if record.get(c) is not None
        ]
        found.append(
            QuarantinedRow(
                source=str(record.get(SOURCE) or "?"),
                line=str(record.get(ROW) or "?"),
                joined=lines,
                reasons=by_row.get(int(position), []),
                values=values,
            )
        )
    return found
