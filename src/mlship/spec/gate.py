"""The gate a candidate version must pass before it may replace the version in production.

Declared as a ``gate:`` block of the pipeline spec (so the run records it beside the model it
judges) or in a gate file of its own (``mlship gate --gate gate.yaml``), which wins when both
exist. Only the metric's name is checked against the task when the gate runs, since a gate file
does not know the task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from mlship.errors import SpecError
from mlship.spec.data import Strict
from mlship.yamlfile import parse, read_text, validation_problems

Require = Literal["significant", "not_worse"]


class SliceBudget(Strict):
    """No group of test rows may lose more than ``max_loss`` of the metric against the baseline."""

    columns: list[str] = Field(
        default_factory=list,
        description="The columns whose values are the groups; by default the card's sensitive "
        "columns.",
    )
    max_loss: float = Field(
        ge=0,
        allow_inf_nan=False,
        description="The largest loss of the metric any group of enough rows may show.",
    )


class DriftBudget(Strict):
    """How much the candidate's training data may differ from the baseline's."""

    max_share: float = Field(
        gt=0,
        le=1,
        description="The largest share of the candidate's input columns that may have drifted "
        "from the baseline's dataset (each column by the monitor's default method).",
    )


class GateBudgets(Strict):
    """Limits the candidate must keep whatever its metric says."""

    max_size_mb: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="The candidate's model artifact, in MiB, at most this.",
    )
    max_latency_ms: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="The 95th percentile of one-row predictions of the candidate, in ms.",
    )
    max_cost_per_1000: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="What 1,000 one-row predictions of the candidate cost at the settings' "
        "prices (one CPU for the median latency, and the model's memory), at most this.",
    )
    slices: SliceBudget | None = Field(
        None, description="Fairness: the metric of each group, candidate against baseline."
    )
    drift: DriftBudget | None = Field(
        None, description="Training-data drift: the candidate's dataset against the baseline's."
    )
    latency_rows: int = Field(
        200, ge=10, le=100_000, description="How many test rows are timed one by one."
    )


class GateSpec(Strict):
    """What a candidate must show against the baseline on the same held-out rows."""

    metric: str | None = Field(
        None, min_length=1, description="The metric compared; by default the run's own metric."
    )
    require: Require = Field(
        "significant",
        description="significant: the improvement's interval lies above zero, and above "
        "min_improvement when that is positive (and McNemar's or DeLong's test agrees where one "
        "applies); not_worse: its low end stays above -max_loss.",
    )
    min_improvement: float = Field(
        0.0,
        allow_inf_nan=False,
        description="The point estimate of the improvement must reach this (in the metric's "
        "units, positive is better; negative allows a small loss); with require: significant "
        "a positive one is asked of the interval's low end too.",
    )
    max_loss: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="require: not_worse only: how far below zero the interval's low end may go.",
    )
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="The interval's confidence.")
    resamples: int = Field(1000, ge=100, le=100_000, description="Paired bootstrap resamples.")
    seed: int = Field(0, ge=0, description="The resamples' seed: the same rows, the same verdict.")
    budgets: GateBudgets = Field(default_factory=GateBudgets)

    @model_validator(mode="after")
    def _margin_for_not_worse(self) -> GateSpec:
        if self.require == "not_worse" and self.max_loss is None:
            raise ValueError(
                "require: not_worse needs max_loss, the largest loss the interval's low end may "
                "show (in the metric's units, e.g. 0.01)"
            )
        if self.require == "significant" and self.max_loss is not None:
            raise ValueError("max_loss is for require: not_worse; significant allows no loss")
        return self


class GateFile(Strict):
    """A gate file: the ``gate:`` block on its own."""

    gate: GateSpec


def load_gate_file(path: Path) -> GateSpec:
    """Read a gate file (a mapping with one key, ``gate``); errors name the file, line and field."""
    data, locator = parse(read_text(path, "gate file", SpecError), path, SpecError)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping with a `gate:` block")
    try:
        return GateFile.model_validate(data).gate
    except ValidationError as exc:
        raise SpecError(locator.errors(validation_problems(exc, GateFile))) from None
