"""A model's input signature: the columns it needs, their types, and what it predicts.

The signature is derived from the spec at training time, stored with the model version, and used to
validate every input at prediction time (files and HTTP requests alike). It also records what the
model saw in training, the range of every numeric input and the categories of every categorical
one, so that a server can flag inputs the model never learned from. Versions registered before
``ranges`` was recorded have none: nothing is flagged for them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
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
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Numeric inputs' smallest and largest value in the training rows."""

    @classmethod
    def from_spec(
        cls, spec: PipelineSpec, train: pd.DataFrame, classes: list[Any] | None
    ) -> Signature:
        categories = {
            c.name: sorted(str(v) for v in train[c.name].dropna().unique())
            for c in spec.features
            if c.type == "category"
        }
        ranges: dict[str, tuple[float, float]] = {}
        for c in spec.features:
            if c.type in ("integer", "float"):
                seen = pd.to_numeric(train[c.name], errors="coerce").astype(float)
                seen = seen[np.isfinite(seen)]
                if len(seen):
                    ranges[c.name] = (float(seen.min()), float(seen.max()))
        return cls(
            task=spec.task,
            inputs=[_with_source_formats(c, spec) for c in spec.features],
            target=spec.target,
            id_columns=[c.name for c in spec.id_columns],
            classes=classes,
            categories=categories,
            ranges=ranges,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = [c.model_dump() for c in self.inputs]
        data["target"] = self.target.model_dump()
        data["ranges"] = {name: list(bounds) for name, bounds in self.ranges.items()}
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
            ranges={
                name: (float(low), float(high))
                for name, (low, high) in dict(data.get("ranges", {})).items()
            },
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
