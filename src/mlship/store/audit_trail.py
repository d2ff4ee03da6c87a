"""Reading the audit log, whichever store keeps it: the :class:`AuditLog` protocol.

Two implementations: :class:`~mlship.store.audit_log.SqlAuditLog` in the metadata store and
:class:`~mlship.remote.admin.HttpAuditLog`, an admin's client of a tracking server. Writing is not
part of it: committed changes write their own entries (:mod:`mlship.store.audit`), and refused
requests are recorded by the server, which alone refuses them.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Protocol

from mlship.store.entities import AuditEntry


class AuditLog(Protocol):
    def list(
        self,
        *,
        user: str | None = None,
        action: str | None = None,
        table: str | None = None,
        since: datetime | None = None,
        outcome: str | None = None,
        limit: int = 100,
    ) -> builtins.list[AuditEntry]:
        """The newest entries first, filtered: ``action`` is a substring of the action,
        ``table`` keeps entries that touched that table, ``since`` is inclusive."""
        ...
