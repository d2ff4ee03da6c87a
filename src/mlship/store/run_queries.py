"""A :class:`~mlship.store.run_search.RunQuery` in SQL: filtered, sorted and cut into a page by
the database, so a page of 50 out of 10,000 runs reads 50 rows, not 10,000.

A condition on a param or a metric is the set of runs one range of an index of ``run_values``
holds (``run_id IN (SELECT ...)``). A sort by a metric reads that metric's index in order
(:func:`_by_metric`); a sort by a param is an outer join on the same key, ordered and limited in
the same statement. Tags stay in the run's JSON (they change after the
run; see :meth:`~mlship.store.metadata.MetadataStore.tag_run`) and are matched as ``list_runs``
matches them. The count of all matches is a second statement with the same conditions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select, text, true
from sqlalchemy.orm import Session, aliased

from mlship.store.liveness import judge
from mlship.store.run_search import (
    KEY_CHARS,
    TEXT_CHARS,
    Condition,
    RunFields,
    RunPage,
    RunQuery,
    RunRow,
)
from mlship.store.tables import Candidate, Note, Run, RunValue, as_utc

Tagged = Callable[[Any, str, str], ColumnElement[bool]]
"""How the store matches a tag (``MetadataStore._tagged``): per dialect."""

_COLUMNS = {
    "status": Run.status,
    "owner": Run.owner,
    "user": Run.user,
    "pipeline": Run.pipeline,
    "duration": Run.wall_seconds,
    "cost": Run.cost,
    "started": Run.started_at,
}


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    compared: ColumnElement[bool]
    if op == "=":
        compared = column == value
    elif op == "!=":
        compared = column != value
    elif op == "<":
        compared = column < value
    elif op == "<=":
        compared = column <= value
    elif op == ">":
        compared = column > value
    else:
        compared = column >= value
    return compared


def _where(condition: Condition, tagged: Tagged) -> ColumnElement[bool]:
    prefix, key = condition.prefix, condition.key
    if prefix is None:
        column = _COLUMNS[condition.field]
        return _compare(column, condition.op, condition.value)
    if prefix == "tag":
        match = tagged(Run.tags, key, str(condition.value))
        # A run without the tag is one whose tag is not that value (NULL on PostgreSQL).
        return match if condition.op == "=" else match.is_not(true())
    if len(key) > KEY_CHARS:  # no stored name is that long
        return false()
    value = condition.value
    if condition.numeric:
        compared = _compare(RunValue.number, condition.op, value)
    else:
        compared = _compare(RunValue.text, condition.op, str(value)[:TEXT_CHARS])
    # A set of run ids read from one range of an index on (kind, key, value), not a lookup per
    # run: the database reads only the runs that have the value.
    matching = select(RunValue.run_id).where(RunValue.kind == prefix, RunValue.key == key, compared)
    return Run.id.in_(matching)


def _filtered(query: RunQuery, tagged: Tagged, statement: Select[Any]) -> Select[Any]:
    for condition in query.conditions:
        statement = statement.where(_where(condition, tagged))
    if query.text:
        text = query.text.strip()
        statement = statement.where(
            or_(
                Run.id.startswith(text.lower(), autoescape=True),
                Run.pipeline.icontains(text, autoescape=True),
                Run.owner.icontains(text, autoescape=True),
                Run.best_candidate.icontains(text, autoescape=True),
                exists(
                    select(1).where(
                        Note.target_kind == "run",
                        Note.target_id == Run.id,
                        Note.body.icontains(text, autoescape=True),
                    )
                ),
            )
        )
    return statement


def search(session: Session, query: RunQuery, tagged: Tagged) -> RunPage:
    """One page of the runs ``query`` finds, and how many it finds in all."""
    total = session.scalar(_filtered(query, tagged, select(func.count()).select_from(Run))) or 0
    # The order and the page are found on run ids alone, so skipping to a deep page carries
    # no more than an id per skipped run; the page's own rows are then read by primary key.
    statement = _filtered(query, tagged, select(Run.id))
    head, dot, key = query.sort.field.partition(".")
    if head == "metric" and dot:
        ids = _by_metric(session, query, tagged, statement, key[:KEY_CHARS])
    else:
        statement = _ordered(statement, query)
        offset = (query.page - 1) * query.page_size
        ids = list(session.scalars(statement.offset(offset).limit(query.page_size)))
    found = _rows(session, ids)
    shown = _values(session, [row.id for row in found], query.shown)
    rows = tuple(
        RunRow(
            id=row.id,
            pipeline=row.pipeline,
            status=_status(row),
            owner=row.owner,
            user=row.user,
            tags=dict(row.tags or {}),
            task=row.task,
            metric=row.metric,
            started_at=as_utc(row.started_at),
            finished_at=None if row.finished_at is None else as_utc(row.finished_at),
            wall_seconds=row.wall_seconds,
            cost=row.cost,
            best_candidate=row.best_candidate,
            best_cv=row.best_cv,
            values={name: shown.get((row.id, name)) for name in query.shown},
        )
        for row in found
    )
    return RunPage(rows=rows, total=total, page=query.page, page_size=query.page_size)


def _rows(session: Session, ids: list[str]) -> list[Any]:
    """The listed columns of the runs ``ids``, in that order: one statement by primary key."""
    if not ids:
        return []
    best_cv = (
        select(Candidate.cv_mean)
        .where(Candidate.run_id == Run.id, Candidate.selected.is_(True))
        .limit(1)
        .scalar_subquery()
    )
    statement = select(
        Run.id, Run.pipeline, Run.status, Run.owner, Run.user, Run.tags, Run.task, Run.metric,
        Run.started_at, Run.finished_at, Run.wall_seconds, Run.cost, Run.best_candidate,
        Run.heartbeat_at, Run.host, Run.pid, best_cv.label("best_cv"),
    ).where(Run.id.in_(ids))  # fmt: skip
    by_id = {row.id: row for row in session.execute(statement)}
    return [by_id[run_id] for run_id in ids if run_id in by_id]


def _nullable(column: Any) -> bool:
    return bool(getattr(column.expression, "nullable", True))


def _ordered(statement: Select[Any], query: RunQuery) -> Select[Any]:
    """``statement`` sorted as ``query`` says: a column, or a param's number then its text
    (a left join on the primary key of ``run_values``), runs without the value last."""
    sort = query.sort
    head, dot, key = sort.field.partition(".")
    if dot:
        value = aliased(RunValue)
        statement = statement.outerjoin(
            value, and_(value.run_id == Run.id, value.kind == head, value.key == key[:KEY_CHARS])
        )
        keys: list[Any] = [value.number, value.text]
    else:
        keys = [_COLUMNS[sort.field]]
    order: list[Any] = []
    for column in keys:
        ordered = column.desc() if sort.descending else column.asc()
        # NULLS LAST only where there can be NULLs: on PostgreSQL a DESC NULLS LAST order
        # cannot read a plain index backwards, and the newest-first page must.
        order.append(ordered.nulls_last() if _nullable(column) else ordered)
    return statement.order_by(*order, *_ties(sort.field))


def _ties(field: str) -> list[Any]:
    """What orders runs with the same sort value: newest first, then by id."""
    return [Run.id.desc()] if field == "started" else [Run.started_at.desc(), Run.id.desc()]


def _by_metric(
    session: Session, query: RunQuery, tagged: Tagged, statement: Select[Any], key: str
) -> list[Any]:
    """A page sorted by a metric, read in the order of ``ix_run_values_number``.

    A metric is never NULL in ``run_values`` (only finite scores are kept), so the runs that
    have it come first, read from the index in order and stopped at the page's end, and the runs
    without it after them, newest first. A left join sorted ``NULLS LAST`` would give the same
    rows but sort every run that matches first."""
    sort, size = query.sort, query.page_size
    offset = (query.page - 1) * size
    value = aliased(RunValue)
    has = and_(value.run_id == Run.id, value.kind == "metric", value.key == key)
    number = value.number.desc() if sort.descending else value.number.asc()
    rows: list[Any] = []
    scored = 0
    if offset > 0:  # where the runs without the metric start
        counted = select(func.count()).select_from(Run).join(value, has)
        scored = session.scalar(_filtered(query, tagged, counted)) or 0
    if offset == 0 or offset < scored:
        ranked = statement.join(value, has).order_by(number, *_ties(sort.field))
        rows = list(session.scalars(ranked.offset(offset).limit(size)))
        scored = max(scored, len(rows))
    if len(rows) < size:
        metric = select(RunValue.run_id).where(RunValue.kind == "metric", RunValue.key == key)
        rest = statement.where(Run.id.not_in(metric)).order_by(*_ties(sort.field))
        skip = max(0, offset - scored)
        rows += session.scalars(rest.offset(skip).limit(size - len(rows)))
    return rows


def _status(row: Any) -> str:
    found = judge(row)
    return "abandoned" if found is not None and not found.alive else str(row.status)


def _values(
    session: Session, run_ids: list[str], names: tuple[str, ...]
) -> dict[tuple[str, str], float | str | None]:
    """The named values of the runs of a page: one statement for the page, by primary key."""
    if not run_ids or not names:
        return {}
    wanted = [tuple(name.split(".", 1)) for name in names]
    statement = select(RunValue).where(
        RunValue.run_id.in_(run_ids),
        or_(
            *(and_(RunValue.kind == kind, RunValue.key == key[:KEY_CHARS]) for kind, key in wanted)
        ),
    )
    found: dict[tuple[str, str], float | str | None] = {}
    for value in session.scalars(statement):
        shown = value.number if value.kind == "metric" else _param(value.number, value.text)
        found[(value.run_id, f"{value.kind}.{value.key}")] = shown
    return found


def _param(number: float | None, text: str | None) -> float | str | None:
    """A param as it was given: a number when it was one (``text`` spells it), else its text."""
    if number is not None and text not in ("true", "false"):
        return number
    return text


_NAMES = text(
    """
    WITH RECURSIVE names(key, n) AS (
        SELECT (SELECT key FROM run_values WHERE kind = :kind ORDER BY key LIMIT 1), 1
        UNION ALL
        SELECT (SELECT v.key FROM run_values v WHERE v.kind = :kind AND v.key > names.key
                ORDER BY v.key LIMIT 1), names.n + 1
        FROM names WHERE names.key IS NOT NULL AND names.n < :most
    )
    SELECT key FROM names WHERE key IS NOT NULL
    """
)
"""The distinct keys of one kind, each read by one step along ``ix_run_values_number`` (whose
columns lead with kind and key) from the last: as many index probes as there are names, where a
``SELECT DISTINCT`` would read every value of every run."""


def run_fields(session: Session, most: int) -> RunFields:
    """At most ``most`` metric and param names, and the newest scored run's metrics."""
    metrics, params = (
        tuple(str(key) for key in session.execute(_NAMES, {"kind": kind, "most": most}).scalars())
        for kind in ("metric", "param")
    )
    return RunFields(metrics=metrics, params=params, newest=_newest_metrics(session, most))


def _newest_metrics(session: Session, most: int) -> tuple[str, ...]:
    scored = exists().where(RunValue.run_id == Run.id)
    newest = select(Run.id, Run.metric).where(scored).order_by(Run.started_at.desc()).limit(1)
    row = session.execute(newest).first()
    if row is None:
        return ()
    keys = session.scalars(
        select(RunValue.key)
        .where(RunValue.run_id == row.id, RunValue.kind == "metric")
        .order_by(RunValue.key)
    ).all()
    return tuple(sorted(keys, key=lambda key: key != row.metric)[:most])
