"""What the admin pages read: one page of the audit log, filtered, and the users with their
tokens.

The audit log pages by its primary key (each page asks for the entries older than the last one
shown), so the tenth page costs what the first does. A token is listed by its name, the first
characters kept in clear, its state and when it was last used: the secret itself is not in the
store to be shown, and its hash is not read here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from mlship.errors import MlshipError
from mlship.store.audit_log import SqlAuditLog
from mlship.store.clock import as_utc, utcnow
from mlship.store.entities import AuditEntry, Token, User
from mlship.workspace import Workspace

AUDIT_PAGE = 50
USERS_PAGE = 50
OUTCOMES = ("ok", "denied")
_TEXT_LIMIT = 200


def _text(values: dict[str, str], key: str) -> str | None:
    raw = (values.get(key) or "").strip()
    if len(raw) > _TEXT_LIMIT:
        raise MlshipError(f"{key}: at most {_TEXT_LIMIT} characters, got {len(raw)}")
    if "\x00" in raw:
        raise MlshipError(f"{key}: a NUL character is not allowed")
    return raw or None


def _moment(values: dict[str, str], key: str) -> datetime | None:
    raw = _text(values, key)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise MlshipError(
            f"{key}: expected a date or time such as 2026-12-07 or 2026-12-07T08:00, got {raw!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _number(values: dict[str, str], key: str) -> int | None:
    raw = (values.get(key) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12 or int(raw) < 1:
        raise MlshipError(f"{key}: expected a positive whole number, got {raw[:40]!r}")
    return int(raw)


@dataclass(frozen=True)
class AuditQuery:
    """The audit page's filters, as its form sends them."""

    user: str | None = None
    action: str | None = None
    table: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    """Entries with a smaller id than this (the page after the one that ended there)."""

    @classmethod
    def parse(cls, values: dict[str, str]) -> AuditQuery:
        outcome = _text(values, "outcome")
        if outcome is not None and outcome not in OUTCOMES:
            raise MlshipError(f"outcome: expected one of {', '.join(OUTCOMES)}, got {outcome!r}")
        since, until = _moment(values, "since"), _moment(values, "until")
        if since is not None and until is not None and since >= until:
            raise MlshipError("since: must be earlier than until")
        return cls(
            user=_text(values, "user"),
            action=_text(values, "action"),
            table=_text(values, "table"),
            outcome=outcome,
            since=since,
            until=until,
            before=_number(values, "before"),
        )

    def params(self, **changes: str | int | None) -> dict[str, str]:
        """The filters as request parameters (for the next page's link)."""
        values: dict[str, str | int | None] = {
            "user": self.user,
            "action": self.action,
            "table": self.table,
            "outcome": self.outcome,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "before": self.before,
        }
        values.update(changes)
        return {key: str(value) for key, value in values.items() if value not in (None, "")}


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before: int | None
    """The ``before`` of the next (older) page; None on the last page."""


def audit_page(workspace: Workspace, query: AuditQuery) -> AuditPage:
    found = SqlAuditLog(workspace.metadata).list(
        user=query.user,
        action=query.action,
        table=query.table,
        since=query.since,
        until=query.until,
        outcome=query.outcome,
        before=query.before,
        limit=AUDIT_PAGE + 1,
    )
    entries = found[:AUDIT_PAGE]
    more = len(found) > AUDIT_PAGE
    return AuditPage(entries, entries[-1].id if more and entries else None)


@dataclass(frozen=True)
class TokenLine:
    """A token as the users page lists it: never its secret."""

    token: Token
    status: str
    """``live``, ``expired`` or ``revoked``."""


@dataclass(frozen=True)
class UserLine:
    user: User
    tokens: list[TokenLine]

    @property
    def live_tokens(self) -> int:
        return sum(line.status == "live" for line in self.tokens)


@dataclass(frozen=True)
class UsersPage:
    lines: list[UserLine]
    total: int
    page: int
    pages: int


def token_status(token: Token, now: datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and as_utc(token.expires_at) <= now:
        return "expired"
    return "live"


def users_page(workspace: Workspace, page: int) -> UsersPage:
    """One page of the users, by name, each with its tokens.

    The users of a server are a team's people, a few dozen: they are read in one query (with
    their tokens) and cut into pages here."""
    users = workspace.users.all()
    now = utcnow()
    pages = max(1, math.ceil(len(users) / USERS_PAGE))
    shown = min(page, pages)
    lines = [
        UserLine(user, [TokenLine(token, token_status(token, now)) for token in user.tokens])
        for user in users[(shown - 1) * USERS_PAGE : shown * USERS_PAGE]
    ]
    return UsersPage(lines, len(users), shown, pages)
