"""Pydantic models of the pipeline spec.

Types here are the documentation: each field says what it accepts, and pydantic turns a mismatch
into an error that the loader maps back to a line of the YAML file.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

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
from mlship.spec.gate import GateSpec
from mlship.spec.orchestration import Orchestration
from mlship.spec.training import Imbalance, Leakage, Selection, Space, Split, Tuning

Task = Literal["classification", "regression"]
Refit = Literal["all", "train"]


class ModelSpec(Strict):
    """A candidate: an estimator from the catalog (or a dotted class path) with fixed params,
    and optionally the hyper-parameters to tune (``search: default`` is the catalog's space)."""

    name: str | None = Field(None, pattern=NAME_PATTERN)
    estimator: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    search: Literal["default"] | Space | None = None
    distilled_from: str | None = Field(
        None,
        min_length=1,
        description="Another candidate's name: this one learns that teacher's predictions "
        "(its labels, for classification) instead of the target, within the same folds.",
    )

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


COLUMNS_MAPPING_KEYS = ("infer", "declared")


class PipelineSpec(Strict):
    """What a run ingests, how it trains and what it registers."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=NAME_PATTERN, description="Pipeline name; also the registry name.")
    description: str = ""
    task: Task
    sources: list[Source] = Field(min_length=1)
    combine: Combine = Field(default_factory=Combine)
    target_column: str | None = Field(
        None,
        alias="target",
        min_length=1,
        description="The column to predict, named here rather than declared with role: target "
        "(a declared column of this name without a role becomes the target). Needed when the "
        "target is inferred: `columns: {infer: true}`.",
    )
    columns: list[Column] = Field(
        default_factory=list,
        description="The dataset's columns: a list of declared columns, or a mapping "
        "`{infer: true, declared: [...]}` that also takes every column of the sources the list "
        "does not declare, with the type and role inferred from the data.",
    )
    infer_columns: bool = Field(
        False,
        description="Written `columns: {infer: true}`: columns of the sources that are not "
        "declared are inferred (type, role, nullability) when the data is read, and recorded.",
    )
    checks: TableChecks = Field(default_factory=TableChecks)
    models: list[ModelSpec] = Field(min_length=1)
    split: Split = Field(default_factory=Split)
    metric: str = Field(description="The CV metric that picks the best candidate.")
    tuning: Tuning = Field(default_factory=Tuning)
    imbalance: Imbalance = Field(default_factory=Imbalance)
    selection: Selection = Field(default_factory=Selection)
    refit: Refit = Field(
        "all",
        description="What the registered model is fitted on once the selected model has been "
        "scored on the test set: all (a fresh fit with the chosen params on every labelled row, "
        "test rows included, so the newest rows are learnt from; a tuned decision threshold is "
        "kept as tuned) or train (the very model that was scored, fitted on the training part).",
    )
    leakage: Leakage = Field(
        default_factory=Leakage,
        description="Screen features for target leakage: warn (default), fail or off.",
    )
    card: CardSpec | None = Field(None, description="The model card's own words (optional).")
    gate: GateSpec | None = Field(
        None,
        description="What a new version must show against the one in production before its "
        "promotion is requested (`mlship gate`).",
    )
    orchestration: Orchestration = Field(
        default_factory=Orchestration,
        description="How a scheduler runs the pipeline: schedule, retries, timeouts, owner and "
        "tags of the DAG `mlship airflow export` writes.",
    )
    executor: str = Field(
        "process",
        description="Where folds and trials run: inline, process (a local pool of all cores), "
        "ray (a local Ray instance) or ray://host:port (a Ray cluster).",
    )

    @model_validator(mode="before")
    @classmethod
    def _columns_forms(cls, data: Any) -> Any:
        """``columns: {infer: ..., declared: [...]}`` as the declared list and the flag, and a
        declared column named by ``target`` without a role of its own as the target."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        columns = data.get("columns")
        if isinstance(columns, dict):
            unknown = [str(key) for key in columns if key not in COLUMNS_MAPPING_KEYS]
            if unknown:
                raise ValueError(
                    f"columns: unknown key(s) {', '.join(unknown)}; as a mapping, columns takes "
                    "`infer: true` and `declared:` (a list of columns)"
                )
            data["columns"] = columns.get("declared", [])
            data["infer_columns"] = columns.get("infer", False)
        target = data.get("target", data.get("target_column"))
        if isinstance(target, str) and isinstance(data.get("columns"), list):
            data["columns"] = [_as_target(item, target) for item in data["columns"]]
        return data

    @property
    def target(self) -> Column:
        found = next((c for c in self.columns if c.role == "target"), None)
        if found is None:
            raise LookupError(
                f"the target {self.target_column!r} is inferred from the data; its column is "
                "known once the sources are read"
            )
        return found

    @property
    def features(self) -> list[Column]:
        return [c for c in self.columns if c.role == "feature"]

    @property
    def weight(self) -> Column | None:
        """The column of sample weights, if the spec has one."""
        return next((c for c in self.columns if c.role == "weight"), None)

    @property
    def source_names(self) -> list[str]:
        return [s.label for s in self.sources]

    @property
    def id_columns(self) -> list[Column]:
        return [c for c in self.columns if c.role == "id"]


def _as_target(item: Any, target: str) -> Any:
    """A declared column named ``target`` whose role is not written, as the target."""
    if isinstance(item, dict) and item.get("name") == target and "role" not in item:
        return {**item, "role": "target"}
    if isinstance(item, Column) and item.name == target and "role" not in item.model_fields_set:
        return item.model_copy(update={"role": "target"})
    return item


__all__ = [
    "NAME_PATTERN",
    "CardSpec",
    "Column",
    "ColumnType",
    "ModelSpec",
    "PipelineSpec",
    "Refit",
    "Role",
    "Source",
    "SourceFormat",
    "Split",
    "Task",
]
