"""Users, tokens and the audit log over HTTP (admins), and ``whoami`` (everyone)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from mlship.security.users import Role
from mlship.server.access import role_route
from mlship.server.deps import Caller, WorkspaceDep
from mlship.store.records import to_record, to_records

router = APIRouter(prefix="/api/v1", tags=["admin"])


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role


class Disabled(BaseModel):
    disabled: bool


class TokenRequest(BaseModel):
    user: str = Field(min_length=1, max_length=200)
    name: str = Field("cli", min_length=1, max_length=200)
    expires_seconds: int | None = Field(None, ge=1, le=10 * 366 * 86400)


@router.get("/whoami", **role_route("viewer"))
def whoami(caller: Caller) -> dict[str, Any]:
    return {"user": caller.user, "role": caller.role, "token_id": caller.token_id}


@router.get("/users", **role_route("admin"))
def list_users(workspace: WorkspaceDep) -> list[dict[str, Any]]:
    return [_without_secrets(record) for record in to_records(workspace.users.all())]


@router.post("/users", **role_route("admin"))
def add_user(body: NewUser, workspace: WorkspaceDep, caller: Caller) -> dict[str, Any]:
    return to_record(workspace.users.add(body.name, body.role, caller.user))


@router.post("/users/{name}/disabled", **role_route("admin"))
def set_disabled(name: str, body: Disabled, workspace: WorkspaceDep) -> dict[str, Any]:
    return to_record(workspace.users.set_disabled(name, body.disabled), depth=0)


@router.post("/tokens", **role_route("admin"))
def create_token(body: TokenRequest, workspace: WorkspaceDep) -> dict[str, Any]:
    lifetime = None if body.expires_seconds is None else timedelta(seconds=body.expires_seconds)
    token = workspace.users.create_token(body.user, body.name, lifetime)
    return {
        "id": token.id,
        "user": token.user,
        "name": token.name,
        "secret": token.secret,
        "expires_at": None if token.expires_at is None else token.expires_at.isoformat(),
    }


@router.get("/tokens", **role_route("admin"))
def list_tokens(workspace: WorkspaceDep, user: str | None = None) -> list[dict[str, Any]]:
    return [_without_secrets(record) for record in to_records(workspace.users.tokens(user))]


@router.post("/tokens/{token_id}/revoke", **role_route("admin"))
def revoke_token(token_id: int, workspace: WorkspaceDep) -> dict[str, Any]:
    return _without_secrets(to_record(workspace.users.revoke(token_id), depth=0))


def _without_secrets(record: dict[str, Any]) -> dict[str, Any]:
    """A user or token record without token hashes (which identify a token to whoever has it)."""
    record.pop("secret_sha256", None)
    for token in record.get("tokens") or []:
        token.pop("secret_sha256", None)
    return record


@router.get("/audit", **role_route("admin"))
def audit(
    workspace: WorkspaceDep,
    user: str | None = None,
    action: str | None = None,
    table: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    limit: int = Query(100, ge=1, le=10_000),
) -> list[dict[str, Any]]:
    entries = workspace.audit.list(
        user=user, action=action, table=table, since=since, outcome=outcome, limit=limit
    )
    return to_records(entries)
