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
            inputs=list(spec.features),
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
