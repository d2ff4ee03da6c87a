"""The audit log: every committed change to the metadata store, with who made it and from where.

Auditing sits under the repositories, not beside each command: an ORM flush hook collects the
rows a transaction inserts, updates and deletes, and one :class:`AuditEntry` describing them is
written just before the commit, in the same transaction. So no code path can change the store
without leaving an entry (a new repository method is audited without doing anything), and an entry
exists exactly when its change does: a rolled-back transaction leaves neither.

Who acted comes from :data:`ACTOR`, a context variable the tracking server sets from the request's
token (user, role, client address, method and path); outside the server it is the store's default,
the settings' user on this host with the command line as the action. The table is append-only:
triggers refuse UPDATE and DELETE on it (see migration 0009), and nothing here issues either.
Reading it back is :class:`~mlship.store.audit_log.AuditLog`, which needs the metadata store
that installs the hooks here, so it lives in a module of its own.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session, sessionmaker

from mlship.store.tables import AuditEntry, JournalEntry, Run, Token, as_utc, utcnow
from mlship.text import shorten

_VALUE_CHARS = 200
"""Longer values (specs, environments) are cut in the log; the rows themselves keep them."""

_LISTED_IDS = 50

_QUIET_UPDATES = {Token: {"last_used_at"}, Run: {"heartbeat_at"}}
"""Updates that are bookkeeping, not changes: a token's last use is written by reading, a running
run's heartbeat every few seconds."""


@dataclass(frozen=True)
class Actor:
    """Who makes the changes of the current request or command, and from where."""

    user: str
    origin: str
    action: str
    role: str | None = None
    request_id: str | None = None


ACTOR: ContextVar[Actor | None] = ContextVar("mlship_actor", default=None)


def local_actor(user: str) -> Actor:
    """The actor of a command run on this machine against its own store."""
    command = " ".join(["mlship", *sys.argv[1:]]) if sys.argv else "mlship"
    return Actor(user=user, origin=f"local {socket.gethostname()}", action=command[:300])


def acting_user(default: str) -> str:
    """Who acts now: the user of the tracking server's current request, else ``default`` (the
    workspace's user). Repositories take the acting user from here, never from their callers."""
    actor = ACTOR.get()
    return default if actor is None else actor.user


@contextmanager
def acting(actor: Actor) -> Iterator[None]:
    """Attribute the changes made inside the block to ``actor``."""
    token = ACTOR.set(actor)
    try:
        yield
    finally:
        ACTOR.reset(token)


def install(sessions: sessionmaker[Session], default: Actor) -> None:
    """Audit every transaction of ``sessions``; ``default`` acts when :data:`ACTOR` is unset."""
    event.listen(sessions, "after_flush", _collect)
    event.listen(sessions, "before_commit", lambda session: _write(session, default))
    event.listen(sessions, "after_rollback", lambda session: session.info.pop("audit", None))


def _collect(session: Session, _context: Any) -> None:
    changes: dict[str, dict[str, Any]] = session.info.setdefault("audit", {})
    for obj in session.new:
        if not isinstance(obj, AuditEntry):
            _add_id(changes, obj, "insert")
    for obj in session.deleted:
        _add_id(changes, obj, "delete")
    for obj in session.dirty:
        if isinstance(obj, AuditEntry):
            continue
        state = inspect(obj)
        quiet = next((cols for cls, cols in _QUIET_UPDATES.items() if isinstance(obj, cls)), set())
        updated: dict[str, list[Any]] = {}
        for column in state.mapper.column_attrs:
            history = state.attrs[column.key].history
            if history.has_changes() and column.key not in quiet:
                before = history.deleted[0] if history.deleted else None
                after = history.added[0] if history.added else None
                updated[column.key] = [_value(before), _value(after)]
        if updated:
            table = changes.setdefault(obj.__table__.name, {})
            table.setdefault("update", {})[_identity(obj)] = updated


def _add_id(changes: dict[str, dict[str, Any]], obj: Any, kind: str) -> None:
    table = changes.setdefault(obj.__table__.name, {})
    count = f"{kind}ed" if not kind.endswith("e") else f"{kind}d"
    table[count] = table.get(count, 0) + 1
    listed = table.setdefault(kind, [])
    if len(listed) < _LISTED_IDS and not isinstance(obj, JournalEntry):
        listed.append(_identity(obj))


def _identity(obj: Any) -> str:
    key = inspect(obj).mapper.primary_key_from_instance(obj)
    return "/".join(str(part) for part in key)


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return shorten(text, _VALUE_CHARS)


def _write(session: Session, default: Actor) -> None:
    session.flush()
    changes = session.info.pop("audit", None)
    if not changes:
        return
    actor = ACTOR.get() or default
    session.execute(insert(AuditEntry).values(**entry_values(actor, "ok", changes)))


def entry_values(actor: Actor, outcome: str, changes: dict[str, Any]) -> dict[str, Any]:
    """The columns of one audit entry: who acted, how it ended, what changed."""
    return {
        "at": utcnow(),
        "user": actor.user,
        "role": actor.role,
        "origin": actor.origin[:300],
        "action": actor.action[:300],
        "request_id": actor.request_id,
        "outcome": outcome,
        "changes": changes,
    }
