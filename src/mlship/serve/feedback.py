"""``POST /feedback``: true labels for answers the server gave, sent when they become known.

The body is one label, ``{"request_id": "...", "label": "yes"}`` (``row`` defaults to 0, the first
record of the request), or many, ``{"feedback": [{...}, {...}]}``. Labels are checked against the
served model's signature (a class label must be one of its classes, a regression label a number)
and all of them are stored, in one part, or none: a 422 names each bad item
(``feedback[2].label``). The answer says how many were stored.
"""

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictBool, StrictFloat, StrictInt, StrictStr, TypeAdapter
from pydantic import ValidationError as PydanticError
from starlette.concurrency import run_in_threadpool

from mlship.errors import DataError, MlshipError
from mlship.monitor.feedback import FeedbackStore, Label, check_labels
from mlship.serve.bodies import check_content_type, decode_json
from mlship.serve.errors import ScoringError

MAX_ITEMS = 100_000


class FeedbackItem(BaseModel, extra="forbid"):
    request_id: StrictStr = Field(min_length=1, description="The X-Request-Id of the answer.")
    row: StrictInt = Field(
        0, ge=0, le=2**63 - 1, description="Index of the record within that request."
    )
    label: StrictStr | StrictInt | StrictFloat | StrictBool = Field(description="The true label.")


class FeedbackBatch(BaseModel, extra="forbid"):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=MAX_ITEMS)


class FeedbackStored(BaseModel):
    stored: int


_ITEM = TypeAdapter(FeedbackItem)
_BATCH = TypeAdapter(FeedbackBatch)


def _where(loc: tuple[Any, ...], batch: bool) -> str:
    parts = list(loc)
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text if batch else f"feedback[0]{'.' if text else ''}{text}"


def parse_feedback(body: bytes) -> list[FeedbackItem]:
    """The items of a body (one or many), or a ScoringError naming each bad field (400 for a
    body that is not JSON, 422 otherwise)."""
    payload = decode_json(body)
    batch = isinstance(payload, dict) and "feedback" in payload
    try:
        if batch:
            return _BATCH.validate_python(payload).feedback
        return [_ITEM.validate_python(payload)]
    except PydanticError as exc:
        errors = exc.errors()
        lines = [f"{_where(tuple(e['loc']), batch)}: {e['msg']}" for e in errors[:20]]
        if len(errors) > 20:
            lines.append(f"... and {len(errors) - 20} more problems")
        raise ScoringError(422, lines) from None


def _body_schema() -> dict[str, Any]:
    """One item, or ``{"feedback": [items]}`` (inline: the body is parsed by hand)."""
    item = _ITEM.json_schema()
    batch = {
        "type": "object",
        "properties": {
            "feedback": {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_ITEMS}
        },
        "required": ["feedback"],
        "additionalProperties": False,
    }
    return {"anyOf": [item, batch]}


def add_feedback(app: FastAPI, signature: Any, store: FeedbackStore) -> None:
    """Add ``POST /feedback``, checking labels against ``signature`` and storing in ``store``."""

    @app.post(
        "/feedback",
        response_model=FeedbackStored,
        openapi_extra={
            "requestBody": {
                "content": {"application/json": {"schema": _body_schema()}},
                "required": True,
            }
        },
    )
    async def feedback(request: Request) -> Response:
        """Store true labels of earlier answers (by request id), for performance monitoring."""
        check_content_type(request.headers.get("content-type"))
        items = parse_feedback(await request.body())
        labels = [Label(item.request_id, item.row, item.label) for item in items]
        try:
            checked = check_labels(labels, signature)
        except DataError as exc:
            raise ScoringError(422, str(exc).splitlines()) from None
        try:
            stored = await run_in_threadpool(store.append, checked, "http")
        except MlshipError as exc:  # the store refused: nothing was stored, the caller may retry
            raise ScoringError(503, [f"the labels were not stored: {exc}"]) from None
        return Response(orjson.dumps({"stored": stored}), media_type="application/json")
