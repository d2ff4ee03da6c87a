"""Rows as JSON and back: how metadata rows travel between ``mlship server`` and its clients.

A client must hand the rest of mlship the same objects the local store does, so a row is sent as
its columns (times as ISO 8601) plus the relationships that were loaded with it, and rebuilt as a
detached instance of the same ORM class. Nothing about a class is written here twice: columns and
relationships are read from the mapping, and a relationship is followed one level only (a run
with its candidates, not the candidates' run again), which is what the store's queries load.
"""

from __future__ import annotations

from dataclasses import is_dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, inspect
from sqlalchemy.orm import Mapper

from mlship.store.tables import Base, as_utc

T = TypeVar("T", bound=Base)


def to_record(row: Any, *, depth: int = 1) -> dict[str, Any]:
    """``row``'s columns, and its loaded relationships down to ``depth`` levels. An entity
    (what the repositories return) is written as it is, with the fields it carries."""
    if is_dataclass(row) and not isinstance(row, type):
        from mlship.store.entities import to_json

        found: dict[str, Any] = to_json(row)
        return found
    state = inspect(row)
    mapper: Mapper[Any] = state.mapper
    record: dict[str, Any] = {}
    for column in mapper.column_attrs:
        if column.key in state.unloaded:
            continue
        value = getattr(row, column.key)
        record[column.key] = as_utc(value).isoformat() if isinstance(value, datetime) else value
    if depth > 0:
        for relation in mapper.relationships:
            if relation.key in state.unloaded:
                continue
            value = getattr(row, relation.key)
            if value is None:
                record[relation.key] = None
            elif isinstance(value, list):
                record[relation.key] = [to_record(item, depth=depth - 1) for item in value]
            else:
                record[relation.key] = to_record(value, depth=depth - 1)
    return record


def from_record(cls: type[T], record: dict[str, Any]) -> T:
    """A detached ``cls`` instance with the columns and relationships of ``record``."""
    mapper: Mapper[Any] = inspect(cls)
    values: dict[str, Any] = {}
    for column in mapper.column_attrs:
        if column.key not in record:
            continue
        value = record[column.key]
        if value is not None and isinstance(column.columns[0].type, DateTime):
            value = datetime.fromisoformat(value)
        values[column.key] = value
    row = cls(**values)
    for relation in mapper.relationships:
        if relation.key not in record:
            continue
        value = record[relation.key]
        target = relation.mapper.class_
        if value is None:
            setattr(row, relation.key, None)
        elif isinstance(value, list):
            setattr(row, relation.key, [from_record(target, item) for item in value])
        else:
            setattr(row, relation.key, from_record(target, value))
    return row


def to_records(rows: list[Any], *, depth: int = 1) -> list[dict[str, Any]]:
    return [to_record(row, depth=depth) for row in rows]
