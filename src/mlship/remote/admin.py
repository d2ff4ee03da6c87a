"""Users, tokens, the audit log and the alert history of a tracking server, over HTTP.

Each class implements its protocol (:class:`~mlship.store.accounts.Users`,
:class:`~mlship.store.audit_trail.AuditLog`, :class:`~mlship.store.alert_history.AlertHistory`)
by sending the request bodies of :mod:`mlship.remote.admin_api` and reading the server's answers
with the adapters of :mod:`mlship.store.entities`; what is allowed is the server's decision.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from mlship.remote import admin_api as api
from mlship.remote.client import Client
from mlship.remote.metadata import part
from mlship.store import entities
from mlship.store.accounts import NewToken
from mlship.store.alert_history import AlertStatus
from mlship.store.clock import as_utc
from mlship.store.entities import Alert, AuditEntry, Token, User


class HttpUsers:
    def __init__(self, client: Client) -> None:
        self.client = client

    def add(self, name: str, role: str) -> User:
        body = api.NewUser(name=name, role=role).model_dump(mode="json")
        return entities.parse(User, self.client.post("/users", body))

    def all(self) -> list[User]:
        return entities.parse_list(User, self.client.get("/users"))

    def set_disabled(self, name: str, disabled: bool) -> User:
        body = api.Disabled(disabled=disabled).model_dump(mode="json")
        return entities.parse(User, self.client.post(f"/users/{part(name)}/disabled", body))

    def create_token(self, user: str, name: str, expires_in: timedelta | None = None) -> NewToken:
        seconds = None
        if expires_in is not None:  # a lifetime of none or less is the server's to refuse
            whole = int(expires_in.total_seconds())
            seconds = max(1, whole) if expires_in > timedelta(0) else min(0, whole)
        body = api.TokenRequest(user=user, name=name, expires_seconds=seconds)
        return entities.parse(NewToken, self.client.post("/tokens", body.model_dump(mode="json")))

    def tokens(self, user: str | None = None) -> list[Token]:
        return entities.parse_list(Token, self.client.get("/tokens", user=user))

    def revoke(self, token_id: int) -> Token:
        return entities.parse(Token, self.client.post(f"/tokens/{token_id}/revoke"))


class HttpAuditLog:
    def __init__(self, client: Client) -> None:
        self.client = client

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
            since=None if since is None else as_utc(since).isoformat(),
            outcome=outcome,
            limit=limit,
        )
        return entities.parse_list(AuditEntry, found)


class HttpAlertHistory:
    def __init__(self, client: Client) -> None:
        self.client = client

    def last_delivered(self, model: str, rule: str) -> datetime | None:
        found = self.client.get("/alerts/last-delivered", model=model, rule=rule)["at"]
        return None if found is None else as_utc(datetime.fromisoformat(found))

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
        body = api.NewAlert(
            model=model,
            rule=rule,
            metric=metric,
            value=value,
            condition=condition,
            severity=severity,
            window=window,
            status=status,
            deliveries=[dict(d) for d in deliveries],
            details=dict(details or {}),
            at=None if at is None else as_utc(at),
        )
        return entities.parse(Alert, self.client.post("/alerts", body.model_dump(mode="json")))

    def list(
        self, model: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> builtins.list[Alert]:
        found = self.client.get(
            "/alerts",
            model=model,
            since=None if since is None else as_utc(since).isoformat(),
            limit=limit,
        )
        return entities.parse_list(Alert, found)
