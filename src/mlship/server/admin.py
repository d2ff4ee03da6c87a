"""Users, tokens and the audit log over HTTP (admins), and ``whoami`` (everyone).

Request bodies are declared in :mod:`mlship.remote.admin_api`, answers are the entities of
:mod:`mlship.store.entities` (a token's hash never leaves the store). Who created a user is the
caller's token's user, never a name in the body.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query

from mlship.remote import admin_api as api
from mlship.server.access import role_route
from mlship.server.deps import Caller, WorkspaceDep
from mlship.server.idempotency import RecordedRoute
from mlship.store.entities import to_json

router = APIRouter(prefix="/api/v1", tags=["admin"], route_class=RecordedRoute)


@router.get("/whoami", **role_route("viewer"))
def whoami(caller: Caller) -> dict[str, Any]:
    return {"user": caller.user, "role": caller.role, "token_id": caller.token_id}


@router.get("/users", **role_route("admin"))
def list_users(workspace: WorkspaceDep) -> Any:
    return to_json(workspace.users.all())


@router.post("/users", **role_route("admin"))
def add_user(body: api.NewUser, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.users.add(body.name, body.role))


@router.post("/users/{name}/disabled", **role_route("admin"))
def set_disabled(name: str, body: api.Disabled, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.users.set_disabled(name, body.disabled))


@router.post("/tokens", **role_route("admin"))
def create_token(body: api.TokenRequest, workspace: WorkspaceDep) -> Any:
    lifetime = None if body.expires_seconds is None else timedelta(seconds=body.expires_seconds)
    return to_json(workspace.users.create_token(body.user, body.name, lifetime))


@router.get("/tokens", **role_route("admin"))
def list_tokens(workspace: WorkspaceDep, user: str | None = None) -> Any:
    return to_json(workspace.users.tokens(user))


@router.post("/tokens/{token_id}/revoke", **role_route("admin"))
def revoke_token(token_id: int, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.users.revoke(token_id))


@router.get("/audit", **role_route("admin"))
def audit(
    workspace: WorkspaceDep,
    user: str | None = None,
    action: str | None = None,
    table: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    limit: int = Query(100, ge=1, le=10_000),
) -> Any:
    entries = workspace.audit.list(
        user=user, action=action, table=table, since=since, outcome=outcome, limit=limit
    )
    return to_json(entries)
