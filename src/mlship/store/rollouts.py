"""Where progressive rollouts are kept, whichever store keeps them: the :class:`Rollouts`
protocol.

The state of a rollout (its step, the candidate's share of the traffic, its status) lives in the
metadata store rather than in a process, because several processes read and move it: every
worker of ``mlship serve`` reads the candidate's share at each refresh, and ``mlship rollout
step`` may run from cron on one host while someone watches from another. The implementation is
:class:`~mlship.registry.rollouts.SqlRollouts`; each move is one transaction that also appends a
:class:`~mlship.store.entities.ModelEvent` to the model's history, and only applies if the
rollout still stands where the judge saw it, so two judges running together move it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from mlship.errors import MlshipError
from mlship.store.entities import Rollout

Status = Literal["running", "holding", "rolled back", "done"]
MoveAction = Literal["advanced", "holding", "rolled back", "done"]


class RolloutConflict(MlshipError):
    """The rollout moved (or another started) between reading it and moving it."""


@dataclass(frozen=True)
class RolloutPlan:
    """What a deployment file's ``rollout:`` block asks for."""

    model: str
    candidate: int
    deployment: str
    steps: tuple[float, ...]
    hold_seconds: float
    alpha: float
    effect: float | None
    checks: dict[str, Any]


@dataclass(frozen=True)
class Move:
    """One decision on a rollout: the state it moves to and the figures behind it, for the
    model's history."""

    action: MoveAction
    step: int
    weight: float
    status: Status
    reasons: tuple[str, ...]
    figures: dict[str, Any] = field(default_factory=dict)


class Rollouts(Protocol):
    def start(self, plan: RolloutPlan, at: datetime) -> tuple[Rollout, bool]:
        """Start ``plan`` at its first step; the rollout and whether it started now (False:
        the same candidate's rollout was already active, and is returned unchanged)."""
        ...

    def current(self, model: str) -> Rollout | None:
        """The newest rollout of ``model``, active or not; None when it never had one."""
        ...

    def move(self, rollout: Rollout, move: Move, at: datetime) -> Rollout:
        """Apply ``move`` to ``rollout`` if it still stands at the same step and status (else
        :class:`RolloutConflict`); a rollback also rejects the candidate's pending promotion
        request."""
        ...
