"""Retention and tiering rules for ``mlship gc``: the ``[gc]`` settings and the ages they use.

``[[gc.rules]]`` say, for one kind of stored thing (dataset versions, model versions, run
reports, log parts), after how long it moves to cheaper storage (``tier``) or goes (``delete``:
dataset versions no run or model version uses, and log parts; a model version or a run always
names its artifact, so only tiering applies to them, and logs are only deleted). The rules are
declared with the settings so that a bad one is refused with the field it is in before any
collection starts, not halfway through one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

KINDS = ("datasets", "models", "reports", "logs")
"""What a rule may name: the kinds of artifact the metadata tells apart, and the logs."""


def parse_age(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s`` or ``0``: how old something must be to be collected."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    cleaned = text.strip().lower()
    if cleaned == "0":
        return timedelta(0)
    number, unit = cleaned[:-1], cleaned[-1:]
    if unit not in units or not number.isdigit():
        raise ValueError(
            f"--older-than {text!r}: expected a whole number and a unit, like 90d, 12h, 30m or 0"
        )
    return timedelta(seconds=int(number) * units[unit])


class GcRule(BaseModel):
    """One ``[[gc.rules]]`` entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    what: Literal["datasets", "models", "reports", "logs"] = Field(
        description="Which: dataset versions (data, quarantine, profile), model versions' "
        "models, run reports, or the parts of the prediction and usage logs."
    )
    action: Literal["tier", "delete"] = Field(
        description="tier: move to the cold tier (reads still find it); delete: drop dataset "
        "versions no run or model version uses, with their artifacts."
    )
    older_than: str = Field(
        "90d", description="Only what was created longer ago than this (90d, 12h, 30m or 0)."
    )
    keep_versions: int = Field(
        0,
        ge=0,
        description="Leave the N newest of each pipeline (datasets, reports) or model (models).",
    )

    @field_validator("older_than")
    @classmethod
    def _an_age(cls, text: str) -> str:
        try:
            parse_age(text)
        except ValueError:
            raise ValueError(
                f"{text!r} is not an age: expected a whole number and a unit, like 90d, 12h, "
                "30m or 0"
            ) from None
        return text

    @model_validator(mode="after")
    def _delete_what_may_go(self) -> GcRule:
        if self.action == "delete" and self.what not in ("datasets", "logs"):
            raise ValueError(
                f'action = "delete" applies to what = "datasets" or "logs" only: {self.what} '
                'are named by model versions and runs, which are kept; use action = "tier"'
            )
        if self.action == "tier" and self.what == "logs":
            raise ValueError(
                'action = "tier" applies to datasets, models and reports: log parts are '
                'deleted (action = "delete") once no monitoring window needs them'
            )
        return self

    @property
    def age(self) -> timedelta:
        return parse_age(self.older_than)


class GcSettings(BaseModel):
    """The ``[gc]`` settings: the rules, where tiered artifacts go and what they cost there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[GcRule, ...] = Field(default=(), description="`[[gc.rules]]`, applied in order.")
    cold_path: str | None = Field(
        None,
        min_length=1,
        description="A local artifact store's cold tier (another disk, say); "
        "<artifact root>/cold when unset.",
    )
    storage_class: str | None = Field(
        None,
        pattern=r"^[A-Z][A-Z_]{1,40}$",
        description="Object storage: tier by changing the object's storage class (STANDARD_IA, "
        "GLACIER_IR...); unset, tiered objects move under the store's cold/ prefix.",
    )
    monitor_rules: str | None = Field(
        None,
        min_length=1,
        description="The alert rules file whose windows the logs must keep serving.",
    )
    cold_class: str = Field(
        "s3-standard-ia",
        min_length=1,
        description="The price catalog's storage class that prices the cold tier.",
    )


__all__ = ["KINDS", "GcRule", "GcSettings", "parse_age"]
