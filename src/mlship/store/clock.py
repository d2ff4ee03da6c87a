"""Times as the metadata store keeps them: aware, in UTC.

Apart from the tables so that code reading entities (a run's start, a token's expiry) can compare
times without importing the ORM mapping.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC time; naive times are taken to be UTC already (SQLite returns
    them so, having stored UTC wall-clock times)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
