"""Users of a shared mlship server and their API tokens.

A user has a name and one role (``viewer``, ``scientist``, ``reviewer``, ``admin``; what each
may do is the server's business). A token is ``mls_`` and 43 random URL-safe characters (256
bits), shown once when it is created; the store keeps only its SHA-256, plus its first 12
characters to recognise it in lists. A plain hash suffices for secrets of that entropy (a slow
password hash protects guessable secrets, which these are not), and it lets a request's token be
found by an index lookup instead of a comparison with every stored token. A token may expire,
can be revoked, and stops working when its user is disabled; none of this deletes a row, so the
history of who could do what stays readable.

This is the :class:`~mlship.store.accounts.Users` protocol in the metadata store, plus what
only the server does with it: checking a request's token (:meth:`SqlUsers.authenticate`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mlship.errors import MlshipError, NotFoundError
from mlship.store import entities
from mlship.store.accounts import ROLES, Identity, NewToken, Role
from mlship.store.audit import acting_user
from mlship.store.metadata import MetadataStore
from mlship.store.tables import Token, User, as_utc, utcnow

__all__ = ["ROLES", "Identity", "NewToken", "Role", "SqlUsers", "token_digest"]

PREFIX = "mls_"
SHOWN = 12
"""Characters of a token kept in clear: ``mls_`` and 8 of the random part."""

LAST_USED_EVERY = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per token: not a write per request."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,199}")


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class SqlUsers:
    """Users and tokens in the metadata store; each method is one transaction."""

    def __init__(self, metadata: MetadataStore, user: str) -> None:
        """``user`` acts when no request of the tracking server names someone else."""
        self.metadata = metadata
        self.user = user

    # -- users ---------------------------------------------------------------------------------

    def add(self, name: str, role: str) -> entities.User:
        if not _NAME.fullmatch(name):
            raise MlshipError(
                f"user name {name!r}: letters, digits and . _ @ - (starting with a letter or digit)"
            )
        checked = _role(role)
        with self.metadata.transaction() as session:
            if session.scalar(select(User).where(User.name == name)) is not None:
                raise MlshipError(f"user {name!r} already exists")
            by = acting_user(self.user)
            user = User(name=name, role=checked, disabled=False, created_by=by)
            session.add(user)
            session.flush()
            return entities.from_row(entities.User, user)

    def all(self) -> list[entities.User]:
        with self.metadata.transaction() as session:
            query = select(User).order_by(User.name).options(selectinload(User.tokens))
            return [entities.from_row(entities.User, row) for row in session.scalars(query)]

    def set_disabled(self, name: str, disabled: bool) -> entities.User:
        with self.metadata.transaction() as session:
            user = _user(session, name)
            user.disabled = disabled
            session.flush()
            return entities.from_row(entities.User, user, depth=0)

    # -- tokens --------------------------------------------------------------------------------

    def create_token(self, user: str, name: str, expires_in: timedelta | None = None) -> NewToken:
        """A new token for ``user``, valid for ``expires_in`` (forever when None)."""
        if expires_in is not None and expires_in <= timedelta(0):
            raise MlshipError("a token must expire in the future")
        if not name.strip() or len(name) > 200 or "\x00" in name:
            raise MlshipError(f"token name {name[:40]!r}: 1 to 200 characters, no NUL")
        secret = PREFIX + secrets.token_urlsafe(32)
        with self.metadata.transaction() as session:
            owner = _user(session, user)
            if owner.disabled:
                raise MlshipError(f"user {user!r} is disabled")
            expires = utcnow() + expires_in if expires_in is not None else None
            token = Token(
                user_id=owner.id,
                name=name,
                secret_sha256=token_digest(secret),
                prefix=secret[:SHOWN],
                expires_at=expires,
            )
            session.add(token)
            session.flush()
            return NewToken(token.id, owner.name, name, secret, expires)

    def tokens(self, user: str | None = None) -> list[entities.Token]:
        with self.metadata.transaction() as session:
            query = select(Token).options(selectinload(Token.user)).order_by(Token.id)
            if user is not None:
                query = query.where(Token.user_id == _user(session, user).id)
            return [entities.from_row(entities.Token, row) for row in session.scalars(query)]

    def revoke(self, token_id: int) -> entities.Token:
        with self.metadata.transaction() as session:
            token = session.get(Token, token_id, options=[selectinload(Token.user)])
            if token is None:
                raise NotFoundError(f"no token #{token_id} (`mlship tokens list` shows them)")
            if token.revoked_at is None:
                token.revoked_at = utcnow()
                session.flush()
            return entities.from_row(entities.Token, token)

    def authenticate(self, secret: str, *, now: datetime | None = None) -> Identity | None:
        """The identity of a valid token; None for an unknown, revoked or expired token or a
        disabled user (the caller answers 401 without saying which)."""
        if not secret.startswith(PREFIX):
            return None
        moment = as_utc(now or utcnow())
        # Every request of the tracking server passes here: after a failover it waits for the
        # new primary instead of failing (a token's lookup gives the same answer twice).
        return self.metadata.retrying(lambda: self._identity(secret, moment), idempotent=True)

    def _identity(self, secret: str, moment: datetime) -> Identity | None:
        with self.metadata.transaction() as session:
            token = session.scalar(
                select(Token)
                .where(Token.secret_sha256 == token_digest(secret))
                .options(selectinload(Token.user))
            )
            if token is None or token.revoked_at is not None or token.user.disabled:
                return None
            if token.expires_at is not None and as_utc(token.expires_at) <= moment:
                return None
            last = token.last_used_at
            if last is None or moment - as_utc(last) >= LAST_USED_EVERY:
                token.last_used_at = moment
            return Identity(token.user.name, _role(token.user.role), token.id)


def _role(role: str) -> Role:
    if role not in ROLES:
        raise MlshipError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return role


def _user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        known = ", ".join(session.scalars(select(User.name).order_by(User.name))) or "none yet"
        raise NotFoundError(f"no user named {name!r} (users: {known})")
    return user
