"""The bodies of the registry's HTTP requests, declared once for the server and its clients.

The server validates them, the client builds them and posts ``model_dump(mode="json")``, so a
field cannot be renamed on one side only. None of them says who is acting: that is the token's
user, decided by the server.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageMove(_Body):
    stage: str = Field(max_length=40)
    """Checked by the registry, with the message every backend gives."""
    reason: str | None = Field(None, max_length=10_000)


class Reason(_Body):
    reason: str | None = Field(None, max_length=10_000)


class Decision(_Body):
    """An approval, a rejection or a withdrawal, with an optional note for the history."""

    note: str | None = Field(None, max_length=10_000)


class Tags(_Body):
    version: int | None = Field(None, ge=1)
    tags: dict[str, str | None]


class Description(_Body):
    version: int | None = Field(None, ge=1)
    text: str = Field(max_length=100_000)


class Owner(_Body):
    owner: str
    """An empty one is refused by the registry, with the message every backend gives."""


class NoteBody(_Body):
    body: str = Field(max_length=100_000)
    """An empty one is refused by the registry, with the message every backend gives."""


class CommentBody(_Body):
    body: str = Field(max_length=100_000)
    """Bounded and checked by the registry, with the message every backend gives."""
    reply_to: int | None = Field(None, ge=1)
    on_request: bool = False


class ReviewReason(_Body):
    """A request for changes, an objection or an overrule: the registry refuses one without a
    reason, with the message every backend gives."""

    reason: str = Field(max_length=100_000)
