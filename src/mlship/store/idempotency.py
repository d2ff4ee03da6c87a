"""The idempotency keys of the writes a tracking server applied, and the answers it gave.

A client sends an ``Idempotency-Key`` with every write and the same key with each retry of it.
The server records the key in the transaction of the write itself (:meth:`record`, on the
session of the request's :class:`~mlship.store.shared_transaction.SharedTransaction`), so after a
crash either both are there or neither is; a retry whose key is found is answered from the record
instead of writing again. Two servers applying the same key at once are settled by the unique
constraint on (user, key): the second commit fails, its writes roll back, and it answers with the
first one's record. A key is scoped to its user (another user's key is another key) and kept for
:data:`KEY_LIFETIME`; older ones are ignored, replaced, and pruned.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.orm import Session

from mlship.store.clock import as_utc, utcnow
from mlship.store.tables import IdempotencyKey

KEY_LIFETIME = timedelta(hours=24)
KEY_CHARS = 200
"""The longest key kept (a uuid4 is 36 characters)."""


@dataclass(frozen=True)
class Attempt:
    """A write as it arrived: who sent it under which key, and what it asked."""

    user: str
    key: str
    method: str
    path: str
    request_sha256: str


@dataclass(frozen=True)
class Applied:
    """A write the server applied under a key, with the answer it gave."""

    user: str
    key: str
    method: str
    path: str
    request_sha256: str
    status: int
    body: str
    created_at: datetime

    def answers(self, attempt: Attempt) -> bool:
        """Whether ``attempt`` is this write again (same key and the same request)."""
        return self.request_sha256 == attempt.request_sha256


def request_hash(method: str, path: str, query: str, body: bytes) -> str:
    """What a retry must repeat exactly: the method, the path with its query, and the body."""
    digest = hashlib.sha256(f"{method} {path}?{query}\n".encode())
    digest.update(body)
    return digest.hexdigest()


class SqlIdempotencyKeys:
    """The keys of the writes applied to one database."""

    def __init__(self, engine: Engine, lifetime: timedelta = KEY_LIFETIME) -> None:
        self.engine = engine
        self.lifetime = lifetime

    def find(self, user: str, key: str) -> Applied | None:
        """The write ``user`` applied under ``key`` within the lifetime, if any (read on a
        connection of its own, never in a request's shared transaction)."""
        query = select(IdempotencyKey).where(
            IdempotencyKey.user == user,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at >= utcnow() - self.lifetime,
        )
        with Session(self.engine) as session, session.begin():
            row = session.scalar(query)
            if row is None:
                return None
            return Applied(
                user=row.user,
                key=row.key,
                method=row.method,
                path=row.path,
                request_sha256=row.request_sha256,
                status=row.status,
                body=row.body,
                created_at=as_utc(row.created_at),
            )

    def record(self, session: Session, attempt: Attempt, status: int, body: str) -> None:
        """Record ``attempt`` and its answer in ``session``'s transaction (the write's own); an
        expired record of the same key gives way. The unique constraint refuses a key another
        transaction recorded first, when this one commits (or at once, once that one has)."""
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user == attempt.user,
                IdempotencyKey.key == attempt.key,
                IdempotencyKey.created_at < utcnow() - self.lifetime,
            )
        )
        session.execute(
            insert(IdempotencyKey).values(
                user=attempt.user,
                key=attempt.key,
                method=attempt.method,
                path=attempt.path,
                request_sha256=attempt.request_sha256,
                status=status,
                body=body,
                created_at=utcnow(),
            )
        )

    def prune(self) -> int:
        """Delete the records older than the lifetime; how many went."""
        cutoff = utcnow() - self.lifetime
        with self.engine.begin() as connection:
            done = connection.execute(
                delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)
            )
            return int(done.rowcount or 0)
