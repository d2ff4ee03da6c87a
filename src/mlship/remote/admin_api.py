"""The bodies of the admin and alert HTTP requests, declared once for the server and its clients.

The server validates them, the client builds them and posts ``model_dump(mode="json")``. None of
them says who is acting (who created a user is the token's user); ``TokenRequest.user`` is whose
token it will be.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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
    user: str = Field(min_length=1, max_length=200)
    name: str = Field("cli", min_length=1, max_length=200)
    expires_seconds: int | None = Field(None, le=10 * 366 * 86400)
    """None: never; zero or less is refused by the users repository, with its message."""


class NewAlert(_Body):
    model: str = Field(max_length=200)
    rule: str = Field(max_length=200)
    metric: str = Field(max_length=200)
    value: float
    condition: str = Field(max_length=60)
    severity: str = Field(max_length=20)
    window: str = Field(max_length=60)
    status: Literal["fired", "suppressed"]
    deliveries: list[dict[str, Any]] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    at: datetime | None = None
