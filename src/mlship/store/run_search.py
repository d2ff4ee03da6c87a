"""A search of runs as values: what to find (:class:`RunQuery`) and a page of it (:class:`RunPage`).

The runs list of the web UI, ``mlship runs list --filter`` and a tracking server's client all
ask the same question, so it is one typed object that every backend answers the same way
(:meth:`~mlship.store.repositories.Runs.search_runs`). What people type is a filter string::

    metric.roc_auc > 0.8 and param.model = "gbm" and tag.team = growth and status = succeeded

which :func:`parse_filter` turns into :class:`Condition` values, refusing anything else with a
:class:`FilterError` that names the character, the token and what was expected there. The
conditions are written back with :func:`render_filter` (the form a client sends to a server),
which the parser reads back to the same conditions.

A run's params are those of its selected candidate; its metrics are the selected model's
holdout scores, and its cross-validated ones for names that have no holdout score
(:func:`run_values`, written when the run finishes).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from mlship.errors import MlshipError

__all__ = [
    "ATTRIBUTES",
    "OPERATORS",
    "SORTS",
    "Condition",
    "FilterError",
    "RunPage",
    "RunQuery",
    "RunRow",
    "SortKey",
    "parse_filter",
    "parse_sort",
    "render_filter",
    "run_values",
]

Operator = Literal["=", "!=", "<", "<=", ">", ">="]
OPERATORS: tuple[Operator, ...] = ("=", "!=", "<=", ">=", "<", ">")
"""Comparisons a condition may use (the two-character ones first, for the tokenizer)."""

ATTRIBUTES: dict[str, Literal["text", "number"]] = {
    "status": "text",
    "owner": "text",
    "user": "text",
    "pipeline": "text",
    "duration": "number",
    "cost": "number",
}
"""Columns of a run a condition may name without a prefix, and what their values are."""

PREFIXES = ("metric", "param", "tag")
"""Named values of a run: ``metric.NAME``, ``param.NAME``, ``tag.KEY``."""

SORTS = ("started", "duration", "cost", "pipeline", "status", "owner")
"""Columns a page may be sorted by, besides ``metric.NAME`` and ``param.NAME``."""

MAX_PAGE_SIZE = 1000
MAX_COLUMNS = 20
MAX_CONDITIONS = 50
KEY_CHARS = 200
"""A param's or metric's name as stored and compared (longer ones are cut)."""
TEXT_CHARS = 500
"""A param's text as stored and compared (longer ones are cut)."""

_EXPECTED_FIELD = "a field (metric.NAME, param.NAME, tag.KEY, " + ", ".join(ATTRIBUTES) + ")"
_EXPECTED_OPERATOR = "a comparison (" + ", ".join(sorted(OPERATORS, key=len)) + ")"
_BARE = re.compile(r"[A-Za-z0-9_\-.:/@+]+")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class FilterError(MlshipError):
    """A filter, sort key or page that cannot be read; the message says where and what was
    expected."""


@dataclass(frozen=True, kw_only=True)
class Condition:
    """One comparison: ``field`` (``metric.roc_auc``, ``param.model``, ``tag.team``, ``status``)
    ``op`` ``value``. A number compares with numbers, a string with text."""

    field: str
    op: Operator
    value: float | str

    def __post_init__(self) -> None:
        head, dot, key = self.field.partition(".")
        if not ((dot and head in PREFIXES and key.strip()) or self.field in ATTRIBUTES):
            raise FilterError(f"unknown field {self.field!r}; expected {_EXPECTED_FIELD}")
        if self.op not in OPERATORS:
            raise FilterError(f"unknown comparison {self.op!r}; expected {_EXPECTED_OPERATOR}")
        kind = "text" if head == "tag" and dot else ATTRIBUTES.get(self.field)
        if head == "metric" and dot:
            kind = "number"
        if isinstance(self.value, bool) or not isinstance(self.value, float | str):
            raise FilterError(f"{self.field}: expected a number or a string")
        if kind == "number" and not isinstance(self.value, float):
            raise FilterError(f"{self.field} is a number; expected a number, got {self.value!r}")
        if isinstance(self.value, float) and not math.isfinite(self.value):
            raise FilterError(f"{self.field}: expected a finite number, got {self.value!r}")
        if kind == "text" and self.op not in ("=", "!="):
            raise FilterError(f"{self.field} is compared with = or != only, not {self.op}")
        if isinstance(self.value, str) and "\x00" in self.value:
            raise FilterError(f"{self.field}: a value cannot contain the NUL character (\\x00)")
        if "\x00" in self.field:
            raise FilterError(f"{self.field!r}: a name cannot contain the NUL character (\\x00)")

    @property
    def numeric(self) -> bool:
        """Whether the value compares as a number (else as text)."""
        return isinstance(self.value, float)

    @property
    def prefix(self) -> str | None:
        """``metric``, ``param`` or ``tag``; None for a column of the run."""
        head, dot, _ = self.field.partition(".")
        return head if dot and head in PREFIXES else None

    @property
    def key(self) -> str:
        """The name after the prefix, or the column's name."""
        return self.field.partition(".")[2] if self.prefix else self.field


@dataclass(frozen=True, kw_only=True)
class SortKey:
    """What a page is ordered by: a column of :data:`SORTS`, ``metric.NAME`` or ``param.NAME``.
    Runs without the value come last either way; ties go newest first."""

    field: str = "started"
    descending: bool = True

    def __post_init__(self) -> None:
        head, dot, key = self.field.partition(".")
        if "\x00" in self.field:
            raise FilterError(f"{self.field!r}: a name cannot contain the NUL character (\\x00)")
        if self.field in SORTS or (dot and head in ("metric", "param") and key):
            return
        raise FilterError(
            f"cannot sort by {self.field!r}; expected one of {', '.join(SORTS)}, "
            "metric.NAME or param.NAME"
        )

    def __str__(self) -> str:
        return f"{self.field}:{'desc' if self.descending else 'asc'}"


@dataclass(frozen=True, kw_only=True)
class RunQuery:
    """Which runs, in which order, which page of them, and which named values to show.

    ``text`` finds runs whose id starts with it, or whose pipeline, owner, selected candidate
    or one of whose notes contains it (any case). ``columns`` names the ``metric.NAME`` and
    ``param.NAME`` values each row carries (besides those the conditions and the sort name,
    which are always shown)."""

    conditions: tuple[Condition, ...] = ()
    text: str | None = None
    sort: SortKey = field(default_factory=SortKey)
    page: int = 1
    page_size: int = 50
    columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.page < 1:
            raise FilterError(f"page {self.page}: pages are numbered from 1")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise FilterError(f"page size {self.page_size}: expected between 1 and {MAX_PAGE_SIZE}")
        if len(self.conditions) > MAX_CONDITIONS:
            raise FilterError(f"at most {MAX_CONDITIONS} conditions; got {len(self.conditions)}")
        for name in self.columns:
            head, dot, key = name.partition(".")
            if not (dot and head in ("metric", "param") and key):
                raise FilterError(f"column {name!r}: expected metric.NAME or param.NAME")
            if "\x00" in name:
                raise FilterError(
                    f"column {name!r}: a name cannot contain the NUL character (\\x00)"
                )
        if self.text is not None and "\x00" in self.text:
            raise FilterError("a search text cannot contain the NUL character (\\x00)")

    @classmethod
    def of(
        cls,
        filter: str = "",
        *,
        sort: str | None = None,
        text: str | None = None,
        page: int = 1,
        page_size: int = 50,
        columns: Sequence[str] = (),
    ) -> RunQuery:
        """A query from what a person types: a filter string and ``KEY[:asc|desc]``."""
        return cls(
            conditions=parse_filter(filter),
            text=text or None,
            sort=parse_sort(sort) if sort else SortKey(),
            page=page,
            page_size=page_size,
            columns=tuple(columns),
        )

    @property
    def shown(self) -> tuple[str, ...]:
        """The named values each row carries: the columns asked for, then those the sort and
        the conditions name, once each, in that order."""
        named = [*self.columns, self.sort.field, *(c.field for c in self.conditions)]
        wanted = [n for n in named if n.partition(".")[0] in ("metric", "param") and "." in n]
        return tuple(dict.fromkeys(wanted))

    @property
    def filter(self) -> str:
        """The conditions as a filter string (what a client sends a server)."""
        return render_filter(self.conditions)


@dataclass(frozen=True, kw_only=True)
class RunRow:
    """What a list shows of one run: no spec, environment or candidates, so a page is light."""

    id: str
    pipeline: str
    status: str
    """As :func:`~mlship.store.liveness.shown` says: ``abandoned`` when its process is gone."""
    owner: str
    user: str
    tags: dict[str, Any]
    task: str
    metric: str
    started_at: datetime
    finished_at: datetime | None = None
    wall_seconds: float | None = None
    cost: float | None = None
    best_candidate: str | None = None
    best_cv: float | None = None
    """The selected candidate's cross-validated score on the run's metric."""
    values: dict[str, float | str | None] = field(default_factory=dict)
    """The named values of :attr:`RunQuery.shown` (None where the run has none)."""


@dataclass(frozen=True, kw_only=True)
class RunPage:
    """One page of a search, and how many runs match in all."""

    rows: tuple[RunRow, ...]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def next_page(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None


@dataclass(frozen=True, kw_only=True)
class RunFields:
    """The names a list of runs can filter, sort and show by: every metric and param name some
    run recorded (sorted, at most the number asked for), and the metrics of the newest run that
    recorded any, its selection metric first (what a list shows before anyone chooses)."""

    metrics: tuple[str, ...]
    params: tuple[str, ...]
    newest: tuple[str, ...]


# -- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: Literal["word", "string", "op", "end"]
    text: str
    at: int
    """Where it starts, counted from 1 (as people count characters)."""
    value: str = ""


def _tokens(source: str) -> list[_Token]:
    found: list[_Token] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char.isspace():
            i += 1
            continue
        op = next((o for o in OPERATORS if source.startswith(o, i)), None)
        if op is not None:
            found.append(_Token("op", op, i + 1))
            i += len(op)
        elif char in "\"'":
            end = _string_end(source, i)
            text = source[i:end]
            found.append(_Token("string", text, i + 1, _unquote(text, i + 1)))
            i = end
        else:
            match = _BARE.match(source, i)
            if match is None:
                raise FilterError(
                    f"filter: unexpected character {char!r} at character {i + 1}; names and "
                    'values are letters, digits and _ - . : / @ +, or quoted "like this"'
                )
            found.append(_Token("word", match.group(), i + 1, match.group()))
            i = match.end()
    found.append(_Token("end", "", len(source) + 1))
    return found


def _string_end(source: str, start: int) -> int:
    quote = source[start]
    i = start + 1
    while i < len(source):
        if source[i] == "\\" and quote == '"':
            i += 2
            continue
        if source[i] == quote:
            return i + 1
        i += 1
    raise FilterError(f"filter: the string that opens at character {start + 1} is never closed")


def _unquote(text: str, at: int) -> str:
    if text[0] == "'":
        return text[1:-1]
    try:
        value = json.loads(text)
    except ValueError:
        raise FilterError(
            f"filter: the string at character {at} has a bad escape; inside double quotes "
            'write \\" for a quote and \\\\ for a backslash'
        ) from None
    if not isinstance(value, str):  # pragma: no cover - a JSON string literal is a str
        raise FilterError(f"filter: expected a string at character {at}")
    if "\x00" in value:
        raise FilterError(f"filter: the string at character {at} contains the NUL character")
    return value


def _shown(token: _Token) -> str:
    return "the end of the filter" if token.kind == "end" else repr(token.text)


def parse_filter(source: str) -> tuple[Condition, ...]:
    """The conditions of a filter string, all of which must hold (``and``); an empty filter
    has none. Anything else raises :class:`FilterError` naming where it went wrong."""
    tokens = _tokens(source)
    conditions: list[Condition] = []
    i = 0
    if tokens[0].kind == "end":
        return ()
    while True:
        condition, i = _condition(tokens, i)
        conditions.append(condition)
        token = tokens[i]
        if token.kind == "end":
            break
        if token.kind == "word" and token.text.lower() == "and":
            i += 1
            continue
        hint = " (only 'and' joins conditions)" if token.text.lower() == "or" else ""
        raise FilterError(
            f"filter: expected 'and' or the end of the filter at character {token.at}, "
            f"got {_shown(token)}{hint}"
        )
    if len(conditions) > MAX_CONDITIONS:
        raise FilterError(f"filter: at most {MAX_CONDITIONS} conditions; got {len(conditions)}")
    return tuple(conditions)


def _condition(tokens: list[_Token], i: int) -> tuple[Condition, int]:
    name = tokens[i]
    if name.kind != "word":
        raise FilterError(
            f"filter: expected {_EXPECTED_FIELD} at character {name.at}, got {_shown(name)}"
        )
    i += 1
    head, dot, key = name.text.partition(".")
    if dot and head in PREFIXES:
        if not key:  # ``tag."a key"``: the name is the string that follows
            if tokens[i].kind != "string":
                raise FilterError(
                    f"filter: expected a name after {name.text!r} at character {tokens[i].at}, "
                    f"got {_shown(tokens[i])}"
                )
            key = tokens[i].value
            i += 1
        field_name = f"{head}.{key}"
    elif name.text.lower() in ATTRIBUTES:
        head, field_name = "", name.text.lower()
    else:
        raise FilterError(
            f"filter: unknown field {name.text!r} at character {name.at}; expected "
            f"{_EXPECTED_FIELD}"
        )
    op = tokens[i]
    if op.kind != "op":
        raise FilterError(
            f"filter: expected {_EXPECTED_OPERATOR} after {field_name!r} at character {op.at}, "
            f"got {_shown(op)}"
        )
    i += 1
    token = tokens[i]
    if token.kind not in ("word", "string"):
        raise FilterError(
            f"filter: expected a value after {field_name} {op.text} at character {token.at}, "
            f"got {_shown(token)}"
        )
    i += 1
    value: float | str = token.value
    textual = head == "tag" or ATTRIBUTES.get(field_name) == "text"
    if token.kind == "word" and not textual and _NUMBER.fullmatch(token.text):
        value = float(token.text)
    try:
        condition = Condition(field=field_name, op=op.text, value=value)  # type: ignore[arg-type]
    except FilterError as exc:
        raise FilterError(f"filter: at character {name.at}: {exc}") from None
    return condition, i


def parse_sort(source: str) -> SortKey:
    """``KEY``, ``KEY:asc`` or ``KEY:desc`` (descending when not said)."""
    text = source.strip()
    key, _, direction = text.rpartition(":")
    if direction.lower() in ("asc", "desc") and key:
        return SortKey(field=key, descending=direction.lower() == "desc")
    return SortKey(field=text)


# -- writing back -------------------------------------------------------------------------------


def render_filter(conditions: Iterable[Condition]) -> str:
    """``conditions`` as a filter string that :func:`parse_filter` reads back to them."""
    return " and ".join(_render(c) for c in conditions)


def _render(condition: Condition) -> str:
    prefix = condition.prefix
    if prefix is None or _BARE.fullmatch(condition.key):
        name = condition.field
    else:
        name = f"{prefix}.{json.dumps(condition.key, ensure_ascii=False)}"
    value = condition.value
    shown = repr(value) if isinstance(value, float) else json.dumps(value, ensure_ascii=False)
    return f"{name} {condition.op} {shown}"


# -- what a finished run is searched by ---------------------------------------------------------


@dataclass(frozen=True)
class NamedValue:
    """One param or metric of a run as the search table keeps it: a number, a text, or both
    (a numeric param is also its text, so ``param.depth = "5"`` finds it)."""

    kind: Literal["param", "metric"]
    key: str
    number: float | None
    text: str | None


def run_values(
    params: Mapping[str, Any], metrics: Iterable[tuple[str, str, float]]
) -> list[NamedValue]:
    """The named values of a finished run: ``params`` of its selected candidate (nested ones
    as ``outer.inner``) and its metrics, given as (split, name, value) of the selected model
    (holdout scores win over cross-validated ones of the same name)."""
    found: dict[tuple[str, str], NamedValue] = {}
    for key, value in _flat(params):
        named = _param(_storable(key)[:KEY_CHARS], value)
        found[("param", named.key)] = named
    chosen: dict[str, tuple[str, float]] = {}
    for split, name, value in metrics:
        if name in chosen and chosen[name][0] == "holdout":
            continue
        if split == "holdout" or name not in chosen:
            chosen[name] = (split, value)
    for name, (_, value) in chosen.items():
        if isinstance(value, int | float) and math.isfinite(value):
            key = _storable(name)[:KEY_CHARS]
            found[("metric", key)] = NamedValue("metric", key, float(value), None)
    return list(found.values())


def _storable(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL cannot store in text columns (a name
    with one could not be typed in a filter anyway)."""
    return str(text).replace("\x00", "")


def _flat(params: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flat(value, f"{name}.")
        else:
            yield name, value


def _param(key: str, value: Any) -> NamedValue:
    if isinstance(value, bool):
        return NamedValue("param", key, float(value), "true" if value else "false")
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            return NamedValue("param", key, None, str(value))
        text = str(value) if isinstance(value, int) else repr(number)
        return NamedValue("param", key, number, text[:TEXT_CHARS])
    if value is None:
        return NamedValue("param", key, None, "null")
    if isinstance(value, str):
        return NamedValue("param", key, None, _storable(value)[:TEXT_CHARS])
    text = json.dumps(value, sort_keys=True, default=str)  # JSON escapes a NUL as \u0000
    return NamedValue("param", key, None, text[:TEXT_CHARS])
