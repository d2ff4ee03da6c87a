"""Database work retried on a fresh connection when the server went away, and only when safe.

When PostgreSQL's primary dies and a standby is promoted, every open connection breaks at once
and, for a few seconds, no server takes writes. A client whose URL lists both servers with
``target_session_attrs=read-write`` (:mod:`mlship.dburl`) reaches the new primary on its next
connection; what is left is the unit of work that was running when the old one died. It can be
run again when that is safe, which depends on where it broke:

- *before its commit was sent*, the server never committed it: running it again is always safe
  (the work is a function of the database and its arguments, nothing else);
- *while committing*, nobody knows: the commit may have reached the disk, and the standby, just
  before the server died. Only work that gives the same result when it runs twice (it looks for
  what it would add, or adds under a key chosen before the first attempt) may run again; other
  work stops with :class:`CommitInDoubt`, which says so, rather than adding a second row.

Which errors mean "the server went away" is :func:`is_transient`: a connection the driver lost
or that the server closed (an administrator's or a crash's shutdown, a server starting up or
in recovery), a server that refuses writes because it is, or has become, a standby, and a
connection that cannot be made yet (refused, or every server still read-only). A wrong
password, a missing database, a constraint or a typo are not: they fail at once. Attempts are
bounded in number and in time (``database_retry_seconds``) and end with
:class:`DatabaseUnavailable`, which names the database and the last error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from mlship.errors import StorageError

T = TypeVar("T")

logger = logging.getLogger("mlship.store")

_TRANSIENT_STATES = frozenset({"57P01", "57P02", "57P03", "25006"})
"""Admin shutdown, crash shutdown, cannot connect now (starting up, in recovery), and a write in
a read-only transaction (the server is a standby); class 08, connection exceptions, too."""

_REFUSALS = (
    "password authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
    "authentication failed",
    "sslmode value",
    "invalid connection option",
    "invalid integer value",
    "could not translate host name",
)
"""What a server or libpq says when it will refuse the same connection every time."""


class DatabaseUnavailable(StorageError):
    """The database did not answer (or no server took writes) for as long as work is retried."""


class CommitInDoubt(StorageError):
    """The connection broke while a commit was on its way: it may or may not have been kept,
    and the work is not safe to run twice."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often a unit of work is tried again after a transient error."""

    seconds: float = 30.0
    """Give up when the next attempt would start later than this after the first one."""
    attempts: int = 50
    first_delay: float = 0.05
    max_delay: float = 1.0

    def delays(self) -> list[float]:
        """The pauses before attempts 2, 3, ...: doubling from ``first_delay`` up to
        ``max_delay``, as many as ``attempts`` allows."""
        found: list[float] = []
        delay = self.first_delay
        for _ in range(max(self.attempts - 1, 0)):
            found.append(delay)
            delay = min(delay * 2, self.max_delay)
        return found


NO_RETRY = RetryPolicy(seconds=0, attempts=1)

_RETRYING: ContextVar[bool] = ContextVar("mlship_retrying", default=False)
"""Set while a unit of work runs under :func:`run_retrying`: one nested in it is not retried on
its own (the outer one is, whole), so attempts do not multiply."""


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the server went away or does not take writes yet (see the module
    docstring), so the same work may succeed on a fresh connection in a moment."""
    if not isinstance(exc, DBAPIError):
        return False
    original = exc.orig
    if not type(original).__module__.startswith("psycopg"):
        return False  # SQLite: one file, no server to go away; it waits for its lock itself
    if exc.connection_invalidated:
        return True
    state = getattr(original, "sqlstate", None)
    if state is not None:
        return state in _TRANSIENT_STATES or state.startswith("08")
    if type(original).__name__ != "OperationalError":
        return False
    return not all(_refused(attempt) for attempt in _attempts(str(original)))


def _attempts(message: str) -> list[str]:
    """What each server said, when libpq tried several (one line each), else the message."""
    lines = [line for line in message.splitlines() if line.startswith("- host:")]
    return lines or [message]


def _refused(attempt: str) -> bool:
    return any(refusal in attempt for refusal in _REFUSALS)


def first_line(exc: BaseException) -> str:
    """The driver's own first line of ``exc``, without SQLAlchemy's statement and link."""
    original = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__


def run_retrying(
    work: Callable[[], T],
    *,
    policy: RetryPolicy,
    database: str,
    idempotent: bool,
) -> T:
    """Run ``work`` (one unit of work: it opens and ends its own transaction), again after a
    transient error while ``policy`` allows; a :class:`CommitInDoubt` only when ``idempotent``.
    ``database`` names the database in the final error (a URL without its password)."""
    if _RETRYING.get():
        return work()  # part of a larger unit of work, which runs again as a whole
    token = _RETRYING.set(True)
    try:
        return _attempt(work, policy=policy, database=database, idempotent=idempotent)
    finally:
        _RETRYING.reset(token)


def _attempt(work: Callable[[], T], *, policy: RetryPolicy, database: str, idempotent: bool) -> T:
    started = time.monotonic()
    delays = iter(policy.delays())
    attempt = 1
    while True:
        try:
            return work()
        except CommitInDoubt:
            if not idempotent:
                raise
            last: BaseException = _in_doubt(database)
        except DBAPIError as exc:
            if not is_transient(exc):
                raise
            last = exc
        delay = next(delays, None)
        if delay is None or time.monotonic() - started + delay > policy.seconds:
            raise DatabaseUnavailable(
                f"the metadata database {database} did not take the work after {attempt} "
                f"attempt(s) in {time.monotonic() - started:.1f} s (last: {first_line(last)}); "
                "check that its primary is up, or that a standby was promoted, then run the "
                "command again (MLSHIP_DATABASE_RETRY_SECONDS waits longer)"
            ) from last
        logger.warning(
            "database %s: %s; trying again in %.2f s (attempt %d)",
            database,
            first_line(last),
            delay,
            attempt + 1,
        )
        time.sleep(delay)
        attempt += 1


def lost_before_commit(database: str, exc: DBAPIError) -> DatabaseUnavailable | None:
    """The error to raise for ``exc``, raised inside a transaction that no retry will run
    again, when it says the server went away: nothing was saved, and the user may say it again."""
    if _RETRYING.get() or not is_transient(exc):
        return None  # an attempt of run_retrying: the error goes to it as it is
    error = DatabaseUnavailable(
        f"the connection to the metadata database {database} was lost before the change was "
        f"committed ({first_line(exc)}), so nothing was saved; run the command again once a "
        "primary takes writes"
    )
    error.__cause__ = exc
    return error


def _in_doubt(database: str) -> CommitInDoubt:
    return CommitInDoubt(
        f"the connection to the metadata database {database} broke while a change was being "
        "committed, so it may or may not have been saved; look before doing it again"
    )


def commit_in_doubt(database: str, exc: DBAPIError) -> CommitInDoubt | None:
    """The error to raise for ``exc``, raised by a commit, when it leaves the commit in doubt."""
    if not is_transient(exc):
        return None
    error = _in_doubt(database)
    error.__cause__ = exc
    return error
