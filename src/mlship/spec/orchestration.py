"""When and how a scheduler runs the pipeline: the ``orchestration:`` block of the spec.

The spec already says what a run does; this block says how often it runs and how patient the
scheduler is with it, so ``mlship airflow export`` writes a DAG whose every setting can be traced
to the spec under review rather than to an edit made in the scheduler's own files. Everything is
checked here (a cron field out of range, a duration without a unit), with the spec's line, so a
mistake surfaces when the spec is loaded and not when the scheduler first parses the DAG.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from mlship.durations import seconds_in
from mlship.spec.data import Strict

PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
_UNITS = ("s", "m", "h", "d")
_DURATION_HINT = "a whole number and a unit above 0, such as 45s, 30m, 6h or 2d"

# Each cron field: its name, its lowest and highest value, and the names it accepts for values.
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_ITEM = re.compile(r"^(?:\*|(?P<low>[A-Za-z0-9]+)(?:-(?P<high>[A-Za-z0-9]+))?)(?:/(?P<step>\d+))?$")
_TAG = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")


def _cron_value(text: str, field: tuple[str, int, int, tuple[str, ...]]) -> int:
    name, low, high, names = field
    if text.lower() in names:
        return names.index(text.lower()) + (1 if name == "month" else 0)
    if not text.isdigit() or not low <= int(text) <= high:
        spelled = f" or {names[0]}-{names[-1]}" if names else ""
        raise ValueError(f"{name} {text!r} is not {low}-{high}{spelled}")
    return int(text)


def check_cron(expression: str) -> None:
    """Raise ``ValueError`` saying which field is wrong unless ``expression`` is a five-field cron
    expression (minute hour day-of-month month day-of-week) with values in range."""
    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        raise ValueError(
            f"{expression!r} has {len(fields)} field(s); expected one of {', '.join(PRESETS)} or "
            "five cron fields: minute hour day-of-month month day-of-week, such as '30 2 * * *'"
        )
    for text, field in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            match = _ITEM.match(item)
            if match is None:
                raise ValueError(f"{field[0]} {item!r}: expected *, N, N-M or one of them /STEP")
            if match["low"] is not None:
                first = _cron_value(match["low"], field)
                if match["high"] is not None and _cron_value(match["high"], field) < first:
                    raise ValueError(f"{field[0]} {item!r}: the range runs backwards")
            if match["step"] is not None and int(match["step"]) == 0:
                raise ValueError(f"{field[0]} {item!r}: a step of 0")


class Orchestration(Strict):
    """How a scheduler (Airflow, through `mlship airflow export`) runs the pipeline."""

    schedule: str | None = Field(
        "@daily",
        description="When a run starts: one of @hourly, @daily, @weekly, @monthly, @quarterly, "
        "@yearly, a five-field cron expression ('30 2 * * 1-5'), or null to run only when "
        "triggered. Missed intervals are not caught up: one run stands for them all.",
    )
    retries: int = Field(
        2, ge=0, le=20, description="How often a failed step is tried again before the run fails."
    )
    retry_delay: str = Field("5m", description="How long to wait before trying a step again.")
    timeout: str | None = Field(
        None,
        description="The longest one step may take before it is stopped and counts as failed "
        "(its retries still apply); none by default.",
    )
    run_timeout: str | None = Field(
        None,
        description="The longest a whole run may take, retries included, before it is failed; "
        "none by default.",
    )
    owner: str = Field(
        "mlship",
        min_length=1,
        max_length=100,
        description="Who answers for the pipeline's runs (shown by the scheduler).",
    )
    tags: list[str] = Field(
        default_factory=list,
        description="Labels to find the pipeline by in the scheduler, besides mlship.",
    )
    bundles: str = Field(
        "bundles",
        min_length=1,
        description="The directory the package step writes each version's bundle under "
        "(MODEL-VERSION inside it); relative to the spec's directory.",
    )

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = " ".join(value.split())
        if value.startswith("@"):
            if value not in PRESETS:
                raise ValueError(
                    f"{value!r} is not a preset; expected one of {', '.join(PRESETS)}, "
                    "a five-field cron expression or null"
                )
            return value
        check_cron(value)
        return value

    @field_validator("retry_delay", "timeout", "run_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None:
            return value
        seconds = seconds_in(value, _UNITS) if isinstance(value, str) else None
        if seconds is None or seconds <= 0:
            raise ValueError(f"{value!r} is not a duration: expected {_DURATION_HINT}")
        return value.strip()

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not _TAG.match(tag):
                raise ValueError(
                    f"tag {tag!r}: expected 1 to 100 characters without control characters"
                )
        return list(dict.fromkeys(value))

    @property
    def retry_delay_seconds(self) -> float:
        return seconds_in(self.retry_delay, _UNITS) or 0.0

    @property
    def timeout_seconds(self) -> float | None:
        return None if self.timeout is None else seconds_in(self.timeout, _UNITS)

    @property
    def run_timeout_seconds(self) -> float | None:
        return None if self.run_timeout is None else seconds_in(self.run_timeout, _UNITS)
