"""The model server: ``POST /predict``, ``GET /health`` and OpenAPI docs for one model version.

No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime,
and the request model is a local class built from the signature.
"""

from typing import Any

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mlship import __version__
from mlship.features.transformers import parse_datetimes
from mlship.registry.model_io import LoadedModel
from mlship.serve.schemas import Health, PredictResponse, record_model, request_model


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p != "body"]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """422 with the standard ``detail`` list plus one readable line per problem."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    readable = []
    for err in errors:
        line = f"{_field_path(tuple(err['loc']))}: {err['msg']}"
        if err["type"] == "extra_forbidden":
            line = f"{_field_path(tuple(err['loc']))}: unknown field, not an input of this model"
        readable.append(line)
    detail = [
        {k: v for k, v in err.items() if k in ("type", "loc", "msg", "input")} for err in errors
    ]
    return JSONResponse(status_code=422, content={"detail": detail, "errors": readable})


def create_app(model: LoadedModel) -> FastAPI:
    """An app serving ``model``; its request schema is generated from the model's signature."""
    signature = model.signature
    Record = record_model(signature)
    PredictRequest = request_model(Record)
    names = [c.name for c in signature.inputs]
    # Requests bring datetimes with any offset; as UTC timestamps they are typed as in training.
    datetimes = [c.name for c in signature.inputs if c.type == "datetime"]
    classes = [str(c) for c in signature.classes] if signature.classes else None

    app = FastAPI(
        title=f"mlship model server: {model.ref}",
        version=__version__,
        description=f"Serves {signature.task} model {model.ref}.",
    )
    app.add_exception_handler(RequestValidationError, _validation_error)

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health(status="ok", model=model.name, version=model.version)

    @app.post("/predict", response_model=PredictResponse)
    def predict(body: PredictRequest) -> PredictResponse:  # type: ignore[valid-type]
        records = body.records  # type: ignore[attr-defined]
        frame = pd.DataFrame({name: [getattr(r, name) for r in records] for name in names})
        for name in datetimes:
            frame[name] = parse_datetimes(frame[name])
        predictions, proba = model.predict(frame)
        probabilities = None
        if proba is not None and classes is not None:
            probabilities = [dict(zip(classes, map(float, row), strict=True)) for row in proba]
        return PredictResponse(
            model=model.name,
            version=model.version,
            predictions=[p.item() if hasattr(p, "item") else p for p in predictions],
            probabilities=probabilities,
        )

    return app
