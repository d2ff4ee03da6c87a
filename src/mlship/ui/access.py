"""Who is looking at a page, and whether a form they send may change anything.

Two homes, one rule set. On ``mlship ui`` the local workspace's user acts with every right, as on
the command line, and no one signs in; the pages are served on this machine's loopback only and
refuse any other ``Host`` (a web page elsewhere cannot point a name at them). On ``mlship server``
every page needs a session (:mod:`mlship.security.ui_sessions`), and a form is checked against
the same role ranks as the API; a refused change is written to the audit log as the API's are.

Every form carries a CSRF token bound to the session (on ``mlship ui``, to a secret drawn when
the process started); a POST without it, or with another, is refused with 403 before anything
else happens.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request

from mlship.security.ui_sessions import SqlSessions, csrf_token
from mlship.store.accounts import RANK, Identity, Role
from mlship.store.audit import Actor
from mlship.store.audit_log import SqlAuditLog

Home = Literal["local", "server"]
COOKIE = "mlship_session"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class Refused(Exception):
    """A request the UI answers with ``status`` and ``detail`` (an error page)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class SignInNeeded(Exception):
    """A page asked for without a valid session: the browser goes to the sign-in form."""


@dataclass(frozen=True)
class Viewer:
    """Who is looking: their identity and the CSRF token of their forms."""

    identity: Identity
    csrf: str
    home: Home

    def may(self, role: Role) -> bool:
        return RANK[self.identity.role] >= RANK[role]


class Gate:
    """The checks of one UI app."""

    def __init__(
        self, home: Home, user: str, sessions: SqlSessions | None, audit: SqlAuditLog | None
    ) -> None:
        if home == "server" and (sessions is None or audit is None):
            raise ValueError("the server's UI needs its sessions and audit log")
        self.home = home
        self.user = user
        self.sessions = sessions
        self.audit = audit
        self._local_secret = secrets.token_urlsafe(32)

    def viewer(self, request: Request) -> Viewer:
        """The viewer of ``request``; raises :class:`SignInNeeded` without a valid session."""
        if self.home == "local":
            host = (request.headers.get("host") or "").rsplit(":", 1)[0]
            if host.lower() not in LOOPBACK:
                raise Refused(421, f"this page is served on localhost only, not to {host!r}")
            return Viewer(Identity(self.user, "admin", 0), csrf_token(self._local_secret), "local")
        assert self.sessions is not None
        session_id = request.cookies.get(COOKIE, "")
        identity = self.sessions.identity(session_id) if session_id else None
        if identity is None:
            raise SignInNeeded
        return Viewer(identity, csrf_token(session_id), "server")

    def check_form(self, request: Request, viewer: Viewer, sent: str, role: Role) -> None:
        """Refuse a form without this viewer's CSRF token (403), or from a role below ``role``
        (403, and in the audit log)."""
        if not sent or not hmac.compare_digest(sent, viewer.csrf):
            self._deny(request, viewer, "the form's CSRF token is missing or wrong; reload it")
        if not viewer.may(role):
            who = viewer.identity
            self._deny(request, viewer, f"{who.user} is a {who.role}; this needs the {role} role")

    def actor(self, request: Request, who: Viewer | Identity | None) -> Actor:
        """Who the store records as acting for this request (``anonymous`` before sign-in)."""
        origin = f"ui {request.client.host}" if request.client else "ui unknown"
        action = f"{request.method} {request.url.path}"
        request_id = (request.headers.get("x-request-id") or uuid.uuid4().hex)[:64]
        identity = who.identity if isinstance(who, Viewer) else who
        if identity is None:
            return Actor("anonymous", origin, action, None, request_id)
        return Actor(identity.user, origin, action, identity.role, request_id)

    def failed_sign_in(self, request: Request) -> None:
        """Record a sign-in with a token that is not valid, as the API records a bad token."""
        if self.audit is not None:
            self.audit.denied(
                self.actor(request, None), "401: sign-in with a token that is not valid"
            )

    def _deny(self, request: Request, viewer: Viewer, detail: str) -> None:
        if self.audit is not None:
            self.audit.denied(self.actor(request, viewer), f"403: {detail}")
        raise Refused(403, detail)
