"""The ``[[budgets]]`` setting: how much a team or a model may spend in a calendar month.

Declared here, apart from the cost arithmetic (:mod:`mlship.costs.budgets`), so the settings can
validate budgets without importing the domain. Budgets are settings of the workspace rather than
entries of an alert rules file because ``mlship cost budgets`` shows them without any rules
file, and one figure must not be written twice: the monitor turns a budget with ``alert = true``
into rules of its own.
"""

from __future__ import annotations

import math

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

TEAM_LENGTH = 190
"""The longest team name: alerts about a team are about ``team:NAME``, which the alert history
keeps in 200 characters, like a model's name."""
MODEL_LENGTH = 200


class Budget(BaseModel):
    """One monthly budget of a team (the models tagged ``team = ...``) or of one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: str | None = Field(None, description="The team billed: models tagged `team` so.")
    model: str | None = Field(None, description="The registered model billed.")
    monthly: float = Field(gt=0, description="Money this team or model may spend a month.")
    warn_at: float = Field(
        0.8, gt=0, lt=1, description="Share of the budget whose forecast is a warning."
    )
    alert: bool = Field(
        False, description="Let the monitor alert when the forecast crosses warn_at and 1.0."
    )

    @field_validator("team", "model")
    @classmethod
    def _named(cls, name: str | None, info: ValidationInfo) -> str | None:
        longest = TEAM_LENGTH if info.field_name == "team" else MODEL_LENGTH
        if name is not None and not (0 < len(name) <= longest and not name[0].isspace()):
            raise ValueError(
                f"expected a name of 1 to {longest} characters, not starting with a space"
            )
        return name

    @field_validator("monthly")
    @classmethod
    def _finite(cls, amount: float) -> float:
        if not math.isfinite(amount):
            raise ValueError("expected a finite amount of money")
        return amount

    @model_validator(mode="after")
    def _one_subject(self) -> Budget:
        if (self.team is None) == (self.model is None):
            raise ValueError('a budget names either team = "..." or model = "...", exactly one')
        return self

    @property
    def described(self) -> str:
        """``team growth`` or ``model churn``, for messages and tables."""
        return f"team {self.team}" if self.team is not None else f"model {self.model}"

    @property
    def subject(self) -> str:
        """``team:growth`` or ``model:churn``: what the budget is of, as alerts name it."""
        return f"team:{self.team}" if self.team is not None else f"model:{self.model}"


def repeated(budgets: tuple[Budget, ...]) -> str | None:
    """Why ``budgets`` contradict each other (two budgets of one team or model), else None."""
    seen: dict[str, int] = {}
    for index, budget in enumerate(budgets):
        if budget.subject in seen:
            first = seen[budget.subject]
            return f"two budgets of {budget.described}: budgets[{first}] and budgets[{index}]"

        seen[budget.subject] = index
    return None
