"""Who may use a shared mlship server: the :class:`Users` protocol, roles and new tokens.

Two implementations: :class:`~mlship.security.users.SqlUsers` in the metadata store (what a
server runs, and what ``mlship users`` uses on the server's own host) and
:class:`~mlship.remote.admin.HttpUsers`, an admin's client of a server. Both hand out the frozen
:class:`~mlship.store.entities.User` and :class:`~mlship.store.entities.Token` (never a token's
hash); who created a user is the acting user, never an argument. Checking a token
(``authenticate``) is not part of the protocol: only the server does it, against its own store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol, get_args

from mlship.store.entities import Token, User

Role = Literal["viewer", "scientist", "reviewer", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}
"""Each role's rank: a role may do what every role of a lower rank may."""


@dataclass(frozen=True)
class Identity:
    """Who a valid token belongs to."""

    user: str
    role: Role
    token_id: int


@dataclass(frozen=True)
class NewToken:
    id: int
    user: str
    name: str
    secret: str
    """The token itself: shown once, stored nowhere."""
    expires_at: datetime | None


class Users(Protocol):
    """Users and their tokens; each method is one transaction."""

    def add(self, name: str, role: str) -> User:
        """A new user with ``role``, created by the acting user."""
        ...

    def all(self) -> list[User]:
        """Every user, by name, with their tokens."""
        ...

    def set_disabled(self, name: str, disabled: bool) -> User:
        """Disable (or enable again) a user: a disabled user's tokens stop working."""
        ...

    def create_token(self, user: str, name: str, expires_in: timedelta | None = None) -> NewToken:
        """A new token for ``user``, valid for ``expires_in`` (forever when None)."""
        ...

    def tokens(self, user: str | None = None) -> list[Token]:
        """The tokens of ``user`` (of everyone when None), oldest first, with their user."""
        ...

    def revoke(self, token_id: int) -> Token:
        """Revoke a token (revoking it again changes nothing)."""
        ...
