"""The bodies of the admin and alert HTTP requests, declared once for the server and its clients.

The server validates them, the client builds them and posts ``model_dump(mode="json")``. None of
them says who is acting (who created a user is the token's user); ``TokenRequest.user`` is whose
token it will be.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewUser(_Body):
    name: str = Field(max_length=200)
    """Checked by the users repository, with the message every backend gives."""
    role: str = Field(max_length=40)
    """Checked by the users repository, with the message every backend gives."""


class Disabled(_Body):
    disabled: bool


class TokenRequest(_Body):
    user: str
    name: str = "cli"
    """Checked by the users repository, with the message every backend gives."""
    expires_seconds: int | None = Field(None, le=10 * 366 * 86400)
    """None: never; zero or less is refused by the users repository, with its message."""


class NewAlert(_Body):
    """Texts are checked by the alert history (lengths, status), with the message every backend
    gives; the body limit of the server bounds them all."""

    model: str
    rule: str
    metric: str
    value: float
    condition: str
    severity: str
    window: str
    status: str
    deliveries: list[dict[str, Any]] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    at: datetime | None = None
