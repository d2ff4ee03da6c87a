"""A model's input signature: the columns it needs, their types, and what it predicts.

The signature is derived from the spec at training time, stored with the model version, and used to
validate every input at prediction time (files and HTTP requests alike).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from mlship.spec.models import Column, PipelineSpec, Task


@dataclass(frozen=True)
class Signature:
    task: Task
    inputs: list[Column]
    target: Column
    id_columns: list[str] = field(default_factory=list)
    classes: list[Any] | None = None
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_spec(
        cls, spec: PipelineSpec, train: pd.DataFrame, classes: list[Any] | None
    ) -> Signature:
        categories = {
            c.name: sorted(str(v) for v in train[c.name].dropna().unique())
            for c in spec.features
            if c.type == "category"
        }
        return cls(
            task=spec.task,
            inputs=[_with_source_formats(c, spec) for c in spec.features],
            target=spec.target,
            id_columns=[c.name for c in spec.id_columns],
            classes=classes,
            categories=categories,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = [c.model_dump() for c in self.inputs]
        data["target"] = self.target.model_dump()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(
            task=data["task"],
            inputs=[Column.model_validate(c) for c in data["inputs"]],
            target=Column.model_validate(data["target"]),
            id_columns=list(data.get("id_columns", [])),
            classes=data.get("classes"),
            categories=dict(data.get("categories", {})),
        )


def _with_source_formats(column: Column, spec: PipelineSpec) -> Column:
    """``column`` with the value formats it was read with, so that files scored later are read
    the same way: its own, over those every source declares alike (sources that disagree leave
    only the column's own, since a scored file cannot say which source it resembles)."""
    declared = [source.values for source in spec.sources]
    base = declared[0] if declared and all(v == declared[0] for v in declared) else None
    if base is None:
        return column
    return column.model_copy(update={"values": column.values.over(base) if column.values else base})
