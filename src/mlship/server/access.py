"""Who may call what: tokens, roles, rate limits, and the audit of refused mutations.

Every route declares the least role it needs with :func:`role_route`; the declaration is both the
check (a dependency) and documentation (``x-mlship-role`` in the OpenAPI spec, which the role
matrix test walks). Roles are ordered, each including the ones before it: a ``viewer`` reads, a
``scientist`` also runs and registers, a ``reviewer`` also decides promotions and rolls back, an
``admin`` also manages users and tokens and reads the audit log.

A request without a valid ``Authorization: Bearer`` token gets 401 without saying why (unknown,
expired, revoked, disabled user), and one whose role is too low gets 403; both are recorded in the
audit log when they tried to change something. The token itself is never logged: the access log
shows the path, and the audit log the user.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from mlship.security.users import SqlUsers
from mlship.server.idempotency import recorded

# Re-exported: the routes and the role matrix test rank roles from here, as the UI does from
# mlship.store.accounts.
from mlship.store.accounts import RANK as RANK  # noqa: PLC0414
from mlship.store.accounts import Identity, Role
from mlship.store.audit import ACTOR, Actor
from mlship.store.audit_log import SqlAuditLog
from mlship.store.rate_limits import SqlRateLimits

ROLE_KEY = "x-mlship-role"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RateLimiter:
    """A token bucket per API token, ``per_minute`` requests on average and bursts up to that,
    kept in the database (:mod:`mlship.store.rate_limits`): every server process on it shares
    one limit, so a client gets the same rate whichever replica answers."""

    def __init__(self, per_minute: int, buckets: SqlRateLimits) -> None:
        self.per_minute = per_minute
        self.buckets = buckets

    def allow(self, token_id: int) -> float | None:
        """None when the request may go on, else the seconds to wait."""
        return self.buckets.take(token_id, self.per_minute)


def _client(request: Request) -> str:
    return f"http {request.client.host}" if request.client else "http unknown"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


async def _deny(request: Request, status: int, detail: str, actor: Actor) -> None:
    if request.method in MUTATING:
        audit: SqlAuditLog = request.app.state.audit
        await run_in_threadpool(audit.denied, actor, f"{status}: {detail}")
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    raise HTTPException(status_code=status, detail=detail, headers=headers)


def requires(role: Role) -> Callable[[Request], Awaitable[Identity]]:
    """A dependency that admits requests whose token's role is ``role`` or above.

    It is async on purpose: the actor it sets for the audit log then lives in the request's own
    context, which the route's worker thread inherits.
    """

    async def check(request: Request) -> Identity:
        action = f"{request.method} {request.url.path}"
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        anonymous = Actor("anonymous", _client(request), action, None, request_id[:64])
        secret = _bearer(request)
        users: SqlUsers = request.app.state.users
        identity = None if secret is None else await run_in_threadpool(users.authenticate, secret)
        if identity is None:
            await _deny(request, 401, "a valid API token is required", anonymous)
        assert identity is not None
        actor = Actor(identity.user, _client(request), action, identity.role, request_id[:64])
        if RANK[identity.role] < RANK[role]:
            detail = f"{identity.user} is a {identity.role}; this needs the {role} role or above"
            await _deny(request, 403, detail, actor)
        limiter: RateLimiter = request.app.state.limiter
        wait = await run_in_threadpool(limiter.allow, identity.token_id)
        if wait is not None:
            raise HTTPException(
                status_code=429,
                detail=f"too many requests for this token; retry in {wait:.1f} s",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        ACTOR.set(actor)
        request.state.identity = identity
        return identity

    return check


def role_route(role: Role) -> dict[str, Any]:
    """The keyword arguments that make a route require ``role`` and say so in OpenAPI."""
    checks = [Depends(requires(role)), Depends(recorded)]  # in this order: who, then which write
    return {"dependencies": checks, "openapi_extra": {ROLE_KEY: role}}


def identity(request: Request) -> Identity:
    """The caller, as checked by the route's role dependency."""
    found: Identity = request.state.identity
    return found
