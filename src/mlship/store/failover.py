"""A small failover watcher: promote the standby when the primary has stopped answering.

It checks the primary every ``interval`` seconds (connect, ``SELECT 1``, and
``pg_is_in_recovery()``, which must be false: a server in recovery takes no writes) and, after
``failures`` failed checks in a row, promotes the standby over a connection with
``pg_promote()`` (a superuser's, or one granted EXECUTE on the function), which waits until the
standby has left recovery. Clients whose URL lists both servers with
``target_session_attrs=read-write`` then reach the new primary on their next connection.

The watcher promotes once and stops: what comes next needs a person, or a cluster manager. The
old primary must never start again as a primary (two primaries would each take writes the other
never sees); it is rebuilt as a standby of the new one (see the README's "Database failover").
For the same reason it refuses to promote a server that is not in recovery: with the roles
swapped, a second run of the watcher with the old arguments stops instead of acting.

A watcher is one process and sees the network from one place: a primary it cannot reach is not
always a dead one. The README says when that is acceptable and what Patroni adds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, NullPool, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mlship.dburl import sqlalchemy_url
from mlship.errors import MlshipError
from mlship.store.retry import first_line

PROMOTE_WAIT_SECONDS = 60
"""How long ``pg_promote`` may take to bring the standby out of recovery (its own default)."""


class FailoverError(MlshipError):
    """The standby cannot, or must not, be promoted."""


@dataclass(frozen=True)
class Health:
    """What one check of a server found."""

    writable: bool
    """It answered and is not in recovery: it is a primary."""
    detail: str


def shown(url: str) -> str:
    """``url`` without its password, for logs."""
    return make_url(sqlalchemy_url(url)).render_as_string(hide_password=True)


def _engine(url: str, timeout: float) -> Engine:
    timeout_arg = {"connect_timeout": max(1, math.ceil(timeout))}
    return create_engine(
        sqlalchemy_url(url),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args=timeout_arg,
    )


def check(url: str, timeout: float) -> Health:
    """Connect to the server of ``url``, run ``SELECT 1`` and ask whether it is in recovery."""
    engine = _engine(url, timeout)
    try:
        with engine.connect() as connection:
            connection.execute(text(f"SET statement_timeout = {max(1, int(timeout * 1000))}"))
            connection.execute(text("SELECT 1")).scalar_one()
            in_recovery = connection.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
    except SQLAlchemyError as exc:
        return Health(False, first_line(exc))
    finally:
        engine.dispose()
    if in_recovery:
        return Health(False, "answers, but is in recovery (a standby): it takes no writes")
    return Health(True, "answers and takes writes")


def promote(url: str, timeout: float) -> None:
    """Promote the standby of ``url`` and wait until it takes writes; refuse a server that is
    not in recovery (it is a primary already: promoting it would mean the roles are not what
    the caller thinks)."""
    engine = _engine(url, timeout)
    try:
        with engine.connect() as connection:
            in_recovery = connection.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
            if not in_recovery:
                raise FailoverError(
                    f"the standby {shown(url)} is not in recovery: it is a primary already, so "
                    "nothing was promoted. If a failover happened before, the roles are swapped: "
                    "watch the new primary and its new standby"
                )
            done = connection.execute(
                text("SELECT pg_promote(true, :wait)"), {"wait": PROMOTE_WAIT_SECONDS}
            ).scalar_one()
    finally:
        engine.dispose()
    if not done:
        raise FailoverError(
            f"the standby {shown(url)} did not finish its promotion within "
            f"{PROMOTE_WAIT_SECONDS} s; its server log says why"
        )


@dataclass(frozen=True)
class Watcher:
    """Checks ``primary`` and promotes ``standby`` after ``failures`` failed checks in a row."""

    primary: str
    standby: str
    failures: int = 3
    interval: float = 1.0
    timeout: float = 3.0
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        if self.failures < 1:
            raise FailoverError(f"--failures must be 1 or more, not {self.failures}")
        if not self.interval > 0 or not self.timeout > 0:
            raise FailoverError("--interval and --timeout must be more than 0 seconds")

    def run(self, rounds: int | None = None) -> bool:
        """Watch until the standby is promoted (True) or ``rounds`` checks were made (False)."""
        failed = 0
        made = 0
        primary, standby = shown(self.primary), shown(self.standby)
        self.log(
            f"watching the primary {primary} every {self.interval:g} s; the standby {standby} "
            f"is promoted after {self.failures} failed checks in a row"
        )
        while rounds is None or made < rounds:
            made += 1
            health = check(self.primary, self.timeout)
            if health.writable:
                if failed:
                    self.log(f"the primary answers again after {failed} failed check(s)")
                failed = 0
            else:
                failed += 1
                self.log(f"check {failed}/{self.failures} of the primary failed: {health.detail}")
                if failed >= self.failures and self._promote(standby):
                    return True
            time.sleep(self.interval)
        return False

    def _promote(self, standby: str) -> bool:
        self.log(f"promoting the standby {standby} (pg_promote)")
        try:
            promote(self.standby, self.timeout)
        except SQLAlchemyError as exc:
            self.log(f"could not promote the standby: {first_line(exc)}; trying again")
            return False
        self.log(
            f"the standby {standby} is the primary now and takes writes. Fence the old primary "
            f"{shown(self.primary)}: it must not start as a primary again; rebuild it as a "
            "standby of the new one (pg_basebackup -R into an empty data directory, or "
            "pg_rewind then standby.signal) before starting it"
        )
        return True
