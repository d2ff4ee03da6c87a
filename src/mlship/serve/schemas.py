"""Request and response models derived from a model's signature.

Declaring the input record as a pydantic model gives three things from one place: validation that
names the offending field, OpenAPI documentation of every input, and a typed record to predict on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from mlship.registry.signature import Signature

_PY_TYPES: dict[str, Any] = {
    "integer": int,
    "float": float,
    "boolean": bool,
    "string": str,
    "category": str,
    "datetime": datetime,  # ISO 8601; without an offset it is taken as UTC, as in training
}

MAX_RECORDS = 10_000


def record_model(signature: Signature) -> type[BaseModel]:
    """A pydantic model with one field per model input (nullable inputs may be null or omitted)."""
    fields: dict[str, Any] = {}
    for column in signature.inputs:
        kind: Any = _PY_TYPES[column.type]
        description = f"{column.type}{', may be null' if column.nullable else ''}"
        if column.type == "category" and column.name in signature.categories:
            known = signature.categories[column.name]
            description += f"; seen in training: {', '.join(known[:20])}"
        if column.type == "datetime":
            description += "; ISO 8601 such as 2024-03-01T09:30:00+01:00 (UTC without an offset)"
        if column.nullable:
            fields[column.name] = (kind | None, Field(None, description=description))
        else:
            fields[column.name] = (kind, Field(..., description=description))
    return create_model(
        "Record",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )


def request_model(record: type[BaseModel]) -> type[BaseModel]:
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        records=(list[record], Field(..., min_length=1, max_length=MAX_RECORDS)),  # type: ignore[valid-type]
        key=(
            str | None,
            Field(None, description="Pins the request to one route of a split deployment."),
        ),
    )


class PredictResponse(BaseModel):
    model: str
    version: int
    request_id: str | None = None
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = Field(
        None, description="Per record, the probability of each class (classifiers only)."
    )


class Health(BaseModel):
    status: Literal["ok"]
    model: str
    version: int
