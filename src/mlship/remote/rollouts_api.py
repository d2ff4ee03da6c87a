"""The bodies of the rollout HTTP requests, declared once for the server and its clients.

None says who acts: the rollout's starter and each move's author are the token's user.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewRollout(_Body):
    model: str = Field(max_length=200)
    candidate: int = Field(ge=1)
    deployment: str = Field(max_length=200)
    steps: list[float] = Field(min_length=1, max_length=100)
    hold_seconds: float = Field(gt=0)
    alpha: float = Field(gt=0, lt=1)
    effect: float | None = Field(None, gt=0)
    checks: dict[str, Any] = Field(default_factory=dict)
    at: datetime


class RolloutMove(_Body):
    """A move of rollout ``rollout`` that applies only while it stands at ``step`` and
    ``status`` (what the judge saw)."""

    rollout: int
    step: int
    status: str
    action: Literal["advanced", "holding", "rolled back", "done"]
    to_step: int = Field(ge=0)
    weight: float = Field(ge=0, le=100)
    to_status: Literal["running", "holding", "rolled back", "done"]
    reasons: list[str] = Field(default_factory=list)
    figures: dict[str, Any] = Field(default_factory=dict)
    at: datetime
