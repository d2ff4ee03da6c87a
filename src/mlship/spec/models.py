"""Pydantic models of the pipeline spec.

Types here are the documentation: each field says what it accepts, and pydantic turns a mismatch
into an error that the loader maps back to a line of the YAML file.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mlship.spec.data import (
    NAME_PATTERN,
    Column,
    ColumnType,
    Combine,
    Role,
    Source,
    SourceFormat,
    Strict,
    TableChecks,
)
from mlship.spec.training import Imbalance, Leakage, Selection, Space, Split, Tuning

Task = Literal["classification", "regression"]


class ModelSpec(Strict):
    """A candidate: an estimator from the catalog (or a dotted class path) with fixed params,
    and optionally the hyper-parameters to tune (``search: default`` is the catalog's space)."""

    name: str | None = Field(None, pattern=NAME_PATTERN)
    estimator: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    search: Literal["default"] | Space | None = None

    @property
    def label(self) -> str:
        return self.name or self.estimator


class CardSpec(Strict):
    """What a model card says that only people know: what the model is for, where it must not be
    trusted, and which columns describe groups of people whose results are compared."""

    intended_use: str = Field(
        "", description="Who uses the predictions, for what decision (a sentence or two)."
    )
    limitations: list[str] = Field(
        default_factory=list, description="Known limits, one per item; the card adds measured ones."
    )
    sensitive: list[str] = Field(
        default_factory=list,
        description="Columns whose groups get their own test-set metrics (fairness slices).",
    )


class PipelineSpec(Strict):
    """What a run ingests, how it trains and what it registers."""

    name: str = Field(pattern=NAME_PATTERN, description="Pipeline name; also the registry name.")
    description: str = ""
    task: Task
    sources: list[Source] = Field(min_length=1)
    combine: Combine = Field(default_factory=Combine)
    columns: list[Column] = Field(min_length=2)
    checks: TableChecks = Field(default_factory=TableChecks)
    models: list[ModelSpec] = Field(min_length=1)
    split: Split = Field(default_factory=Split)
    metric: str = Field(description="The CV metric that picks the best candidate.")
    tuning: Tuning = Field(default_factory=Tuning)
    imbalance: Imbalance = Field(default_factory=Imbalance)
    selection: Selection = Field(default_factory=Selection)
    leakage: Leakage = Field(
        default_factory=Leakage,
        description="Screen features for target leakage: warn (default), fail or off.",
    )
    card: CardSpec | None = Field(None, description="The model card's own words (optional).")
    executor: str = Field(
        "process",
        description="Where folds and trials run: inline, process (a local pool of all cores), "
        "ray (a local Ray instance) or ray://host:port (a Ray cluster).",
    )

    @property
    def target(self) -> Column:
        return next(c for c in self.columns if c.role == "target")

    @property
    def features(self) -> list[Column]:
        return [c for c in self.columns if c.role == "feature"]

    @property
    def source_names(self) -> list[str]:
        return [s.label for s in self.sources]

    @property
    def id_columns(self) -> list[Column]:
        return [c for c in self.columns if c.role == "id"]


__all__ = [
    "NAME_PATTERN",
    "CardSpec",
    "Column",
    "ColumnType",
    "ModelSpec",
    "PipelineSpec",
    "Role",
    "Source",
    "SourceFormat",
    "Split",
    "Task",
]
