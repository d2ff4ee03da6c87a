"""Reading the audit log, and recording the attempts the tracking server refused.

The :class:`~mlship.store.audit_trail.AuditLog` protocol in the metadata store, plus what only the
server does: recording a refusal (:meth:`SqlAuditLog.denied`). Apart from :mod:`mlship.store.audit`
because it works through a :class:`MetadataStore`, which itself installs the audit hooks: one module
each way would import the other.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from mlship.store import entities
from mlship.store.audit import Actor, entry_values
from mlship.store.metadata import MetadataStore
from mlship.store.tables import AuditEntry, as_utc


class SqlAuditLog:
    """Reading the audit log, and recording refused attempts (which change nothing)."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def denied(self, actor: Actor, reason: str) -> None:
        """Record a mutation the server refused (a wrong role, a bad token, a rate limit)."""
        with self.metadata.transaction() as session:
            session.execute(
                insert(AuditEntry).values(**entry_values(actor, "denied", {"reason": reason}))
            )

    def list(
        self,
        *,
        user: str | None = None,
        action: str | None = None,
        table: str | None = None,
        since: datetime | None = None,
        outcome: str | None = None,
        limit: int = 100,
        until: datetime | None = None,
        before: int | None = None,
    ) -> list[entities.AuditEntry]:
        """The newest entries first, filtered: ``action`` is a substring of the action, ``table``
        keeps entries that touched that table, ``until`` those before that time and ``before``
        those with a smaller id (the next page after an entry, read from the primary key)."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc())
        if before is not None:
            query = query.where(AuditEntry.id < before)
        if until is not None:
            query = query.where(AuditEntry.at < as_utc(until))
        if user is not None:
            query = query.where(AuditEntry.user == user)
        if action is not None:
            query = query.where(AuditEntry.action.contains(action, autoescape=True))
        if since is not None:
            query = query.where(AuditEntry.at >= as_utc(since))
        if outcome is not None:
            query = query.where(AuditEntry.outcome == outcome)
        found: list[entities.AuditEntry] = []
        with self.metadata.transaction() as session:
            for entry in session.scalars(query.execution_options(yield_per=500)):
                if table is None or table in (entry.changes or {}):
                    found.append(entities.from_row(entities.AuditEntry, entry))
                    if len(found) >= limit:
                        break
        return found
