"""Request and response models derived from a model's signature.

Declaring the input record as a pydantic model gives three things from one place: validation that
names the offending field, OpenAPI documentation of every input, and a typed record to predict on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    create_model,
)

from mlship.train.signature import Signature


def _no_boolean(value: Any) -> Any:
    """JSON's ``true`` is not the number 1 to a model: refuse it where a number is expected
    (pydantic's lax mode would take it)."""
    if isinstance(value, bool):
        raise ValueError("true and false are not numbers")
    return value


_PY_TYPES: dict[str, Any] = {
    "integer": Annotated[int, BeforeValidator(_no_boolean), Field(ge=-(2**63), le=2**63 - 1)],
    "float": Annotated[float, BeforeValidator(_no_boolean), Field(allow_inf_nan=False)],
    "boolean": bool,
    "string": str,
    "category": str,
    "datetime": datetime,  # ISO 8601; without an offset it is taken as UTC, as in training
}

MAX_RECORDS = 10_000
"""Most records one request may hold by default (``max_rows`` of a deployment)."""

IdValue = StrictStr | StrictInt | None


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
    for name in signature.id_columns:
        if name not in fields:
            fields[name] = (
                IdValue,
                Field(None, description="id: not an input of the model, echoed in the answer"),
            )
    return create_model(
        "Record",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )


def request_model(record: type[BaseModel], max_records: int = MAX_RECORDS) -> type[BaseModel]:
    """The native request: records, and an optional routing key (documents the body)."""
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        records=(list[record], Field(..., min_length=1, max_length=max_records)),  # type: ignore[valid-type]
        key=(
            str | None,
            Field(None, description="Pins the request to one route of a split deployment."),
        ),
    )


def body_schema(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``model``'s JSON schema for an OpenAPI request body, and the schemas it refers to, to add
    to the document's components (the body is read by hand, so FastAPI does not list them)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    return schema, defs


class InputWarning(BaseModel):
    column: str
    kind: Literal["below_training_range", "above_training_range", "unseen_category"]
    value: Any


class PredictResponse(BaseModel):
    model: str
    version: int
    request_id: str | None = None
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = Field(
        None, description="Per record, the probability of each class (classifiers only)."
    )
    ids: list[dict[str, Any]] | None = Field(
        None, description="Per record, its id columns as sent (when the model has any)."
    )
    warnings: list[list[InputWarning]] = Field(
        default_factory=list,
        description="Per record, its inputs outside what training saw (empty when none).",
    )


class Health(BaseModel):
    status: Literal["ok"] = Field(description="The server answers predictions.")
    ready: bool = Field(
        True,
        description="False once the server drains after SIGTERM: it still answers, closing "
        "each connection, until it stops.",
    )
    model: str
    version: int
    prediction_log: str | None = Field(
        None,
        description="Why the prediction log cannot be written (answers go on; its rows wait "
        "in memory, the oldest dropped beyond a bound), or null when it is fine or off.",
    )
    prediction_log_dropped: int = Field(
        0, description="Rows of the prediction log given up while it could not be written."
    )
