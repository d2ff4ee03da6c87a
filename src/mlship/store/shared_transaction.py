"""One transaction for everything a request of the tracking server writes.

A route may call several repository methods, and the tracking server must record the idempotency
key of the request in the same transaction as what the request wrote (so that a crash leaves both
or neither). Repositories open their transactions through
:meth:`~mlship.store.metadata.MetadataStore.transaction`; while a :class:`SharedTransaction` is
current (:data:`SHARED`, a context variable the server sets for a mutating request), that method
runs each of them as a savepoint of the shared transaction instead, and nothing is committed until
the server commits the whole, key included. The session begins on first use, in whichever thread
uses it first; the request's steps use it one after the other, never at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy.orm import Session, sessionmaker


class SharedTransaction:
    """A transaction of ``sessions`` begun on first use and ended by :meth:`commit` or
    :meth:`rollback` (both leave it closed; a second call does nothing)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._session: Session | None = None
        self._done = False

    @property
    def session(self) -> Session:
        if self._done:
            raise RuntimeError("the shared transaction has ended")
        if self._session is None:
            self._session = self.sessions()
            self._session.begin()
        return self._session

    @property
    def started(self) -> bool:
        return self._session is not None

    def commit(self) -> None:
        self._end(commit=True)

    def rollback(self) -> None:
        self._end(commit=False)

    def _end(self, *, commit: bool) -> None:
        if self._done:
            return
        self._done = True
        session, self._session = self._session, None
        if session is None:
            return
        try:
            if commit:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()


SHARED: ContextVar[SharedTransaction | None] = ContextVar("mlship_shared_transaction", default=None)


@contextmanager
def sharing(shared: SharedTransaction) -> Iterator[None]:
    """Make ``shared`` the transaction of the repositories' work inside the block."""
    token = SHARED.set(shared)
    try:
        yield
    finally:
        SHARED.reset(token)
