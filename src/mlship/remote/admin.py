"""Users, tokens, the audit log and the alert history of a tracking server."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from mlship.errors import MlshipError
from mlship.monitor.history import AlertHistory, AlertStatus
from mlship.remote.client import Client
from mlship.remote.metadata import part
from mlship.security.users import Identity, NewToken, Users
from mlship.store.audit import Actor
from mlship.store.audit_log import AuditLog
from mlship.store.records import from_record
from mlship.store.tables import Alert, AuditEntry, Token, User


class RemoteUsers(Users):
    def __init__(self, client: Client) -> None:  # the base's metadata store is not used
        self.client = client

    def add(self, name: str, role: str, by: str) -> User:
        return from_record(User, self.client.post("/users", {"name": name, "role": role}))

    def all(self) -> list[User]:
        return [from_record(User, r) for r in self.client.get("/users")]

    def set_disabled(self, name: str, disabled: bool) -> User:
        found = self.client.post(f"/users/{part(name)}/disabled", {"disabled": disabled})
        return from_record(User, found)

    def create_token(self, user: str, name: str, expires_in: timedelta | None = None) -> NewToken:
        seconds = None if expires_in is None else max(1, int(expires_in.total_seconds()))
        body = {"user": user, "name": name, "expires_seconds": seconds}
        found = self.client.post("/tokens", body)
        expires = found["expires_at"]
        return NewToken(
            id=int(found["id"]),
            user=str(found["user"]),
            name=str(found["name"]),
            secret=str(found["secret"]),
            expires_at=None if expires is None else datetime.fromisoformat(expires),
        )

    def tokens(self, user: str | None = None) -> list[Token]:
        return [from_record(Token, r) for r in self.client.get("/tokens", user=user)]

    def revoke(self, token_id: int) -> Token:
        return from_record(Token, self.client.post(f"/tokens/{token_id}/revoke"))

    def authenticate(self, secret: str, *, now: datetime | None = None) -> Identity | None:
        raise MlshipError("tokens are checked by the server, not by its clients")


class RemoteAuditLog(AuditLog):
    def __init__(self, client: Client) -> None:  # the base's metadata store is not used
        self.client = client

    def denied(self, actor: Actor, reason: str) -> None:
        raise MlshipError("refused requests are recorded by the server, not by its clients")

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
        found = self.client.get(
            "/audit",
            user=user,
            action=action,
            table=table,
            since=None if since is None else since.isoformat(),
            outcome=outcome,
            limit=limit,
        )
        return [from_record(AuditEntry, r) for r in found]


class RemoteAlertHistory(AlertHistory):
    def __init__(self, client: Client) -> None:  # the base's metadata store is not used
        self.client = client

    def last_delivered(self, model: str, rule: str) -> datetime | None:
        found = self.client.get("/alerts/last-delivered", model=model, rule=rule)["at"]
        return None if found is None else datetime.fromisoformat(found)

    def record(
        self,
        *,
        model: str,
        rule: str,
        metric: str,
        value: float,
        condition: str,
        severity: str,
        window: str,
        status: AlertStatus,
        deliveries: Sequence[Mapping[str, Any]] = (),
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> Alert:
        body = {
            "model": model,
            "rule": rule,
            "metric": metric,
            "value": value,
            "condition": condition,
            "severity": severity,
            "window": window,
            "status": status,
            "deliveries": [dict(d) for d in deliveries],
            "details": dict(details or {}),
            "at": None if at is None else at.isoformat(),
        }
        return from_record(Alert, self.client.post("/alerts", body))

    def list(
        self, model: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> builtins.list[Alert]:
        found = self.client.get(
            "/alerts",
            model=model,
            since=None if since is None else since.isoformat(),
            limit=limit,
        )
        return [from_record(Alert, r) for r in found]
