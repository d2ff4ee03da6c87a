"""Sessions of the web UI: an API token exchanged once for a cookie a browser can keep.

A browser should not hold the API token itself (it would sit in a cookie or in script's reach for
as long as the tab is open), so signing in checks the token and hands back a new random session
id (256 bits) instead. The store keeps only the id's SHA-256, like a token's, so a copy of the
database signs nobody in. A session is bound to its token: revoking the token, disabling its user
or the token's expiry ends the session at the next request, and the session expires on its own
after :data:`SESSION_LIFETIME` even if the token does not. Signing out deletes the row.

The CSRF token of a session's forms is derived from the session id (an HMAC under a label), so it
needs no storage and is useless without the cookie it belongs to.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from mlship.security.users import SqlUsers, token_digest
from mlship.store.accounts import ROLES, Identity
from mlship.store.audit import Actor, acting
from mlship.store.metadata import MetadataStore
from mlship.store.tables import Token, UiSession, as_utc, utcnow

SESSION_LIFETIME = timedelta(hours=8)


@dataclass(frozen=True)
class NewSession:
    """A session just opened: its id goes into the cookie and nowhere else."""

    id: str
    identity: Identity
    expires_at: datetime


def csrf_token(session_id: str) -> str:
    """The CSRF token of the forms of the session ``session_id``."""
    return hmac.new(session_id.encode(), b"mlship ui csrf", hashlib.sha256).hexdigest()


class SqlSessions:
    """The UI's sessions in the metadata store."""

    def __init__(self, metadata: MetadataStore, users: SqlUsers) -> None:
        self.metadata = metadata
        self.users = users

    def open(
        self,
        api_token: str,
        *,
        actor: Callable[[Identity], Actor] | None = None,
        now: datetime | None = None,
    ) -> NewSession | None:
        """A new session for a valid ``api_token``; None when the token is not valid (the caller
        says so without saying why). Expired sessions are swept on the way. The audit log
        records the new session as the act of ``actor(identity)`` when given (the token's user,
        from where they signed in)."""
        identity = self.users.authenticate(api_token.strip(), now=now)
        if identity is None:
            return None
        moment = as_utc(now or utcnow())
        session_id = secrets.token_urlsafe(32)
        expires = moment + SESSION_LIFETIME
        with (
            acting(actor(identity)) if actor is not None else nullcontext(),
            self.metadata.transaction() as session,
        ):
            session.execute(delete(UiSession).where(UiSession.expires_at <= moment))
            session.add(
                UiSession(
                    id_sha256=token_digest(session_id),
                    token_id=identity.token_id,
                    created_at=moment,
                    expires_at=expires,
                )
            )
        return NewSession(session_id, identity, expires)

    def identity(self, session_id: str, *, now: datetime | None = None) -> Identity | None:
        """Who the session ``session_id`` belongs to, or None when it is unknown, expired, or its
        token no longer works (revoked, expired, its user disabled)."""
        if not session_id:
            return None
        moment = as_utc(now or utcnow())

        def look() -> Identity | None:
            with self.metadata.transaction() as session:
                row = session.scalar(
                    select(UiSession)
                    .where(UiSession.id_sha256 == token_digest(session_id))
                    .options(selectinload(UiSession.token).selectinload(Token.user))
                )
                if row is None or as_utc(row.expires_at) <= moment:
                    return None
                token = row.token
                if token.revoked_at is not None or token.user.disabled:
                    return None
                if token.expires_at is not None and as_utc(token.expires_at) <= moment:
                    return None
                role = token.user.role
                if role not in ROLES:
                    return None
                return Identity(token.user.name, role, token.id)

        return self.metadata.retrying(look, idempotent=True)

    def close(self, session_id: str) -> bool:
        """Delete the session (signing out); whether there was one."""
        with self.metadata.transaction() as session:
            gone = session.scalars(
                select(UiSession).where(UiSession.id_sha256 == token_digest(session_id))
            ).all()
            for row in gone:
                session.delete(row)
            return bool(gone)
