"""Rate limits kept in the database, so every server process on it enforces one limit.

A token bucket per API token: ``per_minute`` requests on average, bursts up to that many. The
bucket is read, refilled for the time gone by, charged and written back in one statement
(``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``, which PostgreSQL and SQLite both run
atomically), so two servers taking from one bucket at once cannot both take its last request.
Time is each server's wall clock; a server whose clock is behind the bucket's refills nothing and
never moves the bucket's time back, so skew between servers costs a little rate, never extra.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, case, literal
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.types import Float

from mlship.store.tables import RateBucket


class SqlRateLimits:
    """The buckets of the tokens of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def take(self, token_id: int, per_minute: int, now: float | None = None) -> float | None:
        """Take one request from the token's bucket: None when it may go on, else the seconds
        until it may (``per_minute`` of 0 or less: no limit)."""
        if per_minute <= 0:
            return None
        rate = per_minute / 60.0
        capacity = float(per_minute)
        moment = literal(time.time() if now is None else now, Float)
        level, at = RateBucket.level, RateBucket.at
        elapsed = case((moment > at, moment - at), else_=0.0)
        refilled = level + elapsed * rate
        capped = case((refilled > capacity, capacity), else_=refilled)
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = (
            insert(RateBucket)
            .values(token_id=token_id, level=capacity - 1.0, at=moment, granted=True)
            .on_conflict_do_update(
                index_elements=[RateBucket.token_id],
                set_={
                    "level": case((capped >= 1.0, capped - 1.0), else_=capped),
                    "at": case((moment > at, moment), else_=at),
                    "granted": capped >= 1.0,
                },
            )
            .returning(RateBucket.level, RateBucket.granted)
        )
        with self.engine.begin() as connection:
            left, granted = connection.execute(statement).one()
        if granted:
            return None
        return (1.0 - float(left)) / rate
