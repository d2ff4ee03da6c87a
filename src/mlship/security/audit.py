"""The audit log, now at home in :mod:`mlship.store.audit` (the hooks the metadata store installs)
and :mod:`mlship.store.audit_trail` (reading it); the names stay importable from here."""

from mlship.store.audit import ACTOR, Actor, acting, install, local_actor
from mlship.store.audit_trail import AuditLog

__all__ = ["ACTOR", "Actor", "AuditLog", "acting", "install", "local_actor"]
