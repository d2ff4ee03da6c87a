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

Task = Literal["classification", "regression"]


class ModelSpec(Strict):
    """A candidate: an estimator from the catalog (or a dotted class path) with fixed params."""

    name: str | None = Field(None, pattern=NAME_PATTERN)
    estimator: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.estimator


class Split(Strict):
    """How data is divided: a holdout scored once at the end, k-fold CV on the rest."""

    holdout: float = Field(0.2, gt=0.0, lt=0.9)
    folds: int = Field(5, ge=2, le=50)
    seed: int = 42
    stratify: bool = Field(True, description="Keep class proportions in every split.")


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
