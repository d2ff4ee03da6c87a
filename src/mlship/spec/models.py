"""Pydantic models of the pipeline spec.

Types here are the documentation: each field says what it accepts, and pydantic turns a mismatch
into an error that the loader maps back to a line of the YAML file.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ColumnType = Literal["integer", "float", "string", "category", "boolean", "datetime"]
Role = Literal["feature", "target", "id", "ignore"]
Task = Literal["classification", "regression"]
SourceFormat = Literal["csv", "parquet"]

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """A file to ingest. Relative paths are relative to the spec file."""

    path: str = Field(min_length=1)
    format: SourceFormat | None = Field(
        None, description="csv or parquet; taken from the file suffix when omitted."
    )
    delimiter: str = Field(",", min_length=1, max_length=1, description="CSV field separator.")

    @property
    def resolved_format(self) -> SourceFormat | None:
        if self.format is not None:
            return self.format
        suffix = self.path.rsplit(".", 1)[-1].lower() if "." in self.path else ""
        known: dict[str, SourceFormat] = {"csv": "csv", "parquet": "parquet", "pq": "parquet"}
        return known.get(suffix)


class Column(_Strict):
    """A column of the dataset: its type, its role in the model, and whether it may be empty."""

    name: str = Field(min_length=1)
    type: ColumnType
    role: Role = "feature"
    nullable: bool = True


class ModelSpec(_Strict):
    """A candidate: an estimator from the catalog (or a dotted class path) with fixed params."""

    name: str | None = Field(None, pattern=NAME_PATTERN)
    estimator: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.estimator


class Split(_Strict):
    """How data is divided: a holdout scored once at the end, k-fold CV on the rest."""

    holdout: float = Field(0.2, gt=0.0, lt=0.9)
    folds: int = Field(5, ge=2, le=50)
    seed: int = 42
    stratify: bool = Field(True, description="Keep class proportions in every split.")


class PipelineSpec(_Strict):
    """What a run ingests, how it trains and what it registers."""

    name: str = Field(pattern=NAME_PATTERN, description="Pipeline name; also the registry name.")
    description: str = ""
    task: Task
    sources: list[Source] = Field(min_length=1)
    columns: list[Column] = Field(min_length=2)
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
    def id_columns(self) -> list[Column]:
        return [c for c in self.columns if c.role == "id"]
