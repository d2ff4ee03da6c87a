"""The model server: one deployment behind three protocols, with metrics, logs and a prediction log.

Endpoints: the native ``POST /predict``; MLflow's scoring protocol ``POST /invocations``
(``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``); the Open Inference
Protocol v2 (``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/{name}``,
``/v2/models/{name}/infer``); ``GET /health``, Prometheus ``GET /metrics`` and OpenAPI docs.
All of them score through one path: pick a route of the current table (by weight, or pinned by
the request key), validate the records against that version's signature (422 naming the field),
predict, answer; then copy the request to the shadows off the request path, and log every answer.
A request routed to a version and then refused (422, ...) or failed (500) is logged as one ``error``
row of that version, so error rates can be read from the prediction log.

Bad input never gets a 5xx: every body is read by one strict JSON reader
(:mod:`mlship.serve.bodies`: 415 for a body that is not JSON by its Content-Type, 400 for one
that does not parse, 422 naming each value no model can take), bodies over ``max_body_bytes``
get a 413 before they are read, requests over ``max_records`` records a 413, and records outside
what training saw are answered with per-record ``warnings`` (or refused, ``strict``).

No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime,
and the request model is a local class built from the signature.
"""

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import ValidationError

from mlship import __version__
from mlship.bodylimit import BodyLimit, MiB
from mlship.monitor.feedback import FeedbackStore
from mlship.monitor.predlog import Entry, PredictionLog
from mlship.serve import protocols
from mlship.serve.auth import Authenticating, Guard
from mlship.serve.batching import Batcher
from mlship.serve.bodies import check_content_type, decode_json
from mlship.serve.drain import CloseWhileDraining, Drain
from mlship.serve.errors import ScoringError
from mlship.serve.feedback import add_feedback
from mlship.serve.live import LiveModels, Served, Table, settle_memory
from mlship.serve.novelty import Flag
from mlship.serve.records import (
    MAX_ERRORS,
    frame_of,
    outputs_of,
    plain_list,
    probability_dicts,
    readable_errors,
)
from mlship.serve.schemas import Health, PredictResponse, body_schema, request_model
from mlship.serve.usage import UsageMeter
from mlship.spec.deployment import Batching, Limits
from mlship.text import shorten
from mlship.train.model_io import LoadedModel

access = logging.getLogger("mlship.serve.access")

MAX_ERROR_CHARS = 2000
"""Longest error text kept in the prediction log (a large batch can fail on every record)."""


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    """422 with the standard ``detail`` list (without FastAPI's ``input``, which echoes the
    request) plus one readable line per problem."""
    errors = list(exc.errors())[:MAX_ERRORS]
    detail = [{k: v for k, v in err.items() if k in ("type", "loc", "msg")} for err in errors]
    return JSONResponse(
        status_code=422, content={"detail": detail, "errors": readable_errors(errors)}
    )


@dataclass(frozen=True)
class Scored:
    """What the scoring path gives an endpoint for one request's records."""

    predictions: np.ndarray[Any, Any]
    proba: np.ndarray[Any, Any] | None
    flags: list[list[Flag]]
    ids: list[dict[str, Any]] | None

    def warnings(self) -> list[list[dict[str, Any]]]:
        return [[flag.as_dict() for flag in row] for row in self.flags]

    @property
    def flagged(self) -> bool:
        return any(self.flags)


class _Static:
    """A fixed table for one loaded model (tests and embedding; nothing to refresh)."""

    def __init__(self, model: LoadedModel) -> None:
        self.table = Table((Served.of(model.ref, model, 1.0),), ())
        self.deployment_name = model.ref

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("route", "model", "version", "status")
        self.requests = Counter(
            "mlship_requests", "Requests answered", labels, registry=self.registry
        )
        self.latency = Histogram(
            "mlship_request_seconds",
            "Time to answer a request",
            ("route", "model", "version"),
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.batch_requests = Histogram(
            "mlship_batch_requests",
            "Requests scored together in one predict call",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.batch_rows = Histogram(
            "mlship_batch_rows",
            "Rows scored in one predict call",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
        )
        self.rows = Counter(
            "mlship_rows_scored", "Records scored", ("model", "version", "role"),
            registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "mlship_errors", "Requests refused or failed", ("route", "reason"),
            registry=self.registry,
        )  # fmt: skip
        self.input_warnings = Counter(
            "mlship_input_warnings",
            "Record inputs outside what training saw (answered, or refused when strict)",
            ("model", "version", "column", "kind"),
            registry=self.registry,
        )


class Scorer:
    """The one scoring path every endpoint uses, with the metrics and logs it feeds."""

    def __init__(
        self,
        live: Any,
        prediction_log: PredictionLog | None,
        sticky_header: str,
        batching: Batching | None = None,
        limits: Limits | None = None,
        strict: bool = False,
        usage: UsageMeter | None = None,
    ) -> None:
        self.live = live
        self.usage = usage
        self.prediction_log = prediction_log
        self.sticky_header = sticky_header
        self.batching = batching or Batching()
        self.limits = limits or Limits()
        self.strict = strict
        self.metrics = _Metrics()
        self.shadows = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mlship-shadow")
        self.batchers: dict[str, Batcher] = {}

    def _batcher(self, served: Served) -> Batcher:
        batcher = self.batchers.get(served.label)
        if batcher is None:

            def observe(requests: int, rows: int, seconds: float) -> None:
                if rows:
                    self.metrics.batch_requests.observe(requests)
                    self.metrics.batch_rows.observe(rows)
                if self.usage is not None:
                    self.usage.predicted(served.usage_key, seconds)

            batcher = Batcher(
                served.model,
                lambda typed: frame_of(served, typed),
                self.batching.max_rows,
                self.batching.max_wait_ms,
                observe,
            )
            self.batchers[served.label] = batcher
        return batcher

    @property
    def table(self) -> Table:
        table: Table = self.live.table
        return table

    def choose(self, request: Request, key: str | None = None) -> Served:
        served = self.table.choose(key or request.headers.get(self.sticky_header))
        request.state.served = served  # for the access log and an error row
        return served

    def log_error(self, request: Request, served: Served | None, status: int, error: str) -> None:
        """One ``error`` row for a request routed to ``served`` and then refused or failed; none
        for a request refused before a route was chosen (``served`` None): no version to blame.
        Its latency runs from the request's arrival to now."""
        if self.prediction_log is None or served is None:
            return
        started: float | None = getattr(request.state, "started", None)
        latency = 0.0 if started is None else (time.perf_counter() - started) * 1000
        error = shorten(error, MAX_ERROR_CHARS)
        model = served.model
        request_id: str = request.state.request_id
        self.prediction_log.append_error(
            request_id, model.name, model.version, latency, status, error
        )

    async def run(
        self, route: str, request: Request, served: Served, records: list[dict[str, Any]]
    ) -> Scored:
        """Check ``records`` (count, ``served``'s signature, what training saw when strict),
        predict in a batch, log; feed the shadows."""
        request_id: str = request.state.request_id
        started = time.perf_counter()
        self._check_count(route, len(records))
        try:
            typed = served.records.validate_python(records)
        except ValidationError as exc:
            self.metrics.errors.labels(route, "invalid input").inc()
            raise ScoringError(422, readable_errors(exc.errors(), ("records",))) from None
        flags = served.support.flags(typed)
        name, version = served.model.name, str(served.model.version)
        for row in flags:
            for flag in row:
                self.metrics.input_warnings.labels(name, version, flag.column, flag.kind).inc()
        if self.strict and any(flags):
            self.metrics.errors.labels(route, "outside training").inc()
            lines = [flag.describe(i) for i, row in enumerate(flags) for flag in row]
            raise ScoringError(422, lines[:MAX_ERRORS])
        try:
            predictions, proba = await self._batcher(served).predict(typed)
        except Exception as exc:
            self.metrics.errors.labels(route, type(exc).__name__).inc()
            self.log_error(request, served, 500, f"{type(exc).__name__}: {exc}")
            raise
        elapsed = time.perf_counter() - started
        self.metrics.latency.labels(route, name, version).observe(elapsed)
        self.metrics.requests.labels(route, name, version, "200").inc()
        self.metrics.rows.labels(name, version, "route").inc(len(records))
        if self.usage is not None:
            self.usage.answered(served.usage_key, len(records))
        scored = Scored(predictions, proba, flags, _ids(served, records, typed))
        durable = self._log(
            served, "route", elapsed, records, request_id, predictions, proba, flags
        )
        if durable is not None:  # a write-ahead log: on disk before the answer
            try:
                await asyncio.wrap_future(durable)
            except OSError as exc:
                self.metrics.errors.labels(route, "write-ahead log").inc()
                raise ScoringError(
                    503,
                    [f"the prediction log's write-ahead file in {self.prediction_log_wal} "
                     f"cannot be written ({exc}); no answer is given without its record"],
                ) from None  # fmt: skip
        for shadow in self.table.shadows:
            self.shadows.submit(self._shadow, shadow, records, request_id)
        return scored

    def _check_count(self, route: str, count: int) -> None:
        if count == 0:
            self.metrics.errors.labels(route, "invalid input").inc()
            raise ScoringError(422, ["records: none given; send at least one record"])
        limit = self.limits.max_records
        if count > limit:
            self.metrics.errors.labels(route, "too many records").inc()
            raise ScoringError(
                413,
                [f"records: {count} in one request; this server takes at most {limit} "
                 "(limits.max_records, --max-records)"],
            )  # fmt: skip

    def _shadow(self, shadow: Served, records: list[dict[str, Any]], request_id: str) -> None:
        started = time.perf_counter()
        try:
            typed = shadow.records.validate_python(records)
            predictions, proba = shadow.model.predict(frame_of(shadow, typed))
        except Exception as exc:  # a shadow never affects the answer; it is counted
            self.metrics.errors.labels("shadow", type(exc).__name__).inc()
            if self.usage is not None:
                self.usage.predicted(shadow.usage_key, time.perf_counter() - started)
            return
        name, version = shadow.model.name, str(shadow.model.version)
        self.metrics.rows.labels(name, version, "shadow").inc(len(records))
        elapsed = time.perf_counter() - started
        if self.usage is not None:  # a shadow's work is its version's, though never answered
            self.usage.predicted(shadow.usage_key, elapsed)
            self.usage.answered(shadow.usage_key, len(records))
        flags = shadow.support.flags(typed)
        self._log(shadow, "shadow", elapsed, records, request_id, predictions, proba, flags)

    def _log(
        self,
        served: Served,
        role: str,
        seconds: float,
        records: list[dict[str, Any]],
        request_id: str,
        predictions: np.ndarray[Any, Any],
        proba: np.ndarray[Any, Any] | None,
        flags: list[list[Flag]],
    ) -> Future[None] | None:
        if self.prediction_log is None:
            return None
        outputs = outputs_of(served, predictions, proba)
        for output, row in zip(outputs, flags, strict=True):
            if row:
                output["warnings"] = [flag.as_dict() for flag in row]
        model = served.model
        entry = Entry(request_id, model.name, model.version, role, seconds * 1000, records, outputs)
        return self.prediction_log.append(entry)

    @property
    def prediction_log_wal(self) -> str:
        log = self.prediction_log
        return "" if log is None or log.write_ahead is None else log.write_ahead.where

    def close(self) -> None:
        """Stop refreshing, finish the shadows, then write the prediction log's last rows."""
        self.live.stop()
        self.shadows.shutdown(wait=True)
        written = 0
        if self.prediction_log is not None:
            self.prediction_log.close()
            written = self.prediction_log.written
        logging.getLogger("mlship.serve").info(
            "shut down; %d prediction log rows written", written, extra={"event": "shutdown"}
        )


def create_app(
    source: LoadedModel | LiveModels,
    *,
    prediction_log: PredictionLog | None = None,
    sticky_header: str = "X-Request-Key",
    batching: Batching | None = None,
    feedback: FeedbackStore | None = None,
    limits: Limits | None = None,
    strict: bool = False,
    guard: Guard | None = None,
    drain: Drain | None = None,
    usage: UsageMeter | None = None,
) -> FastAPI:
    """An app serving ``source``: one model version, or a deployment's live routing table;
    with ``feedback``, ``POST /feedback`` stores true labels there. ``limits`` bound a request's
    body and records; ``strict`` refuses records outside what training saw; ``guard`` asks
    callers for a token (:mod:`mlship.serve.auth`); ``drain`` says how SIGTERM is met
    (``serve/drain.py``; by default it is left to the server); ``usage`` records what the
    process uses per version in the usage ledger (``serve/usage.py``)."""
    live: Any = _Static(source) if isinstance(source, LoadedModel) else source
    deployment = live.deployment_name if isinstance(live, _Static) else live.deployment.name
    scorer = Scorer(live, prediction_log, sticky_header, batching, limits, strict, usage)
    drain = drain or Drain(0)
    first = scorer.table.routes[0]

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        live.start()
        settle_memory()
        if prediction_log is not None:
            prediction_log.start()
        if usage is not None:
            usage.start()
        drain.start()
        # One line per worker process, so an operator (or a test) can tell when all of them
        # take requests: a worker signalled before this line stops at once, with nothing to drain.
        logging.getLogger("mlship.serve").info(
            "worker %d ready", os.getpid(), extra={"event": "ready"}
        )
        try:
            yield
        finally:
            drain.stop()
            for batcher in scorer.batchers.values():
                await batcher.close()
            scorer.close()
            if usage is not None:  # after the prediction log's last part: that is work too
                usage.close()
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    app = FastAPI(
        title=f"mlship model server: {', '.join(s.label for s in scorer.table.routes)}",
        version=__version__,
        description=f"Serves {first.model.signature.task} deployment {deployment}.",
        lifespan=lifespan,
    )
    _add_error_handlers(app, scorer)
    app.add_middleware(BodyLimit, limit=scorer.limits.max_body_bytes, refusal=_too_large)
    if guard is not None:  # outside the body limit, inside the request ids
        registry = scorer.metrics.registry
        app.add_middleware(Authenticating, guard=guard, error_body=_error_body, registry=registry)
    app.add_middleware(RequestIds)
    app.add_middleware(CloseWhileDraining, drain=drain)
    _add_operations(app, scorer, drain)
    _add_native(app, scorer, first.record)
    _add_mlflow(app, scorer)
    _add_v2(app, scorer, drain)
    if feedback is not None:
        add_feedback(app, first.model.signature, feedback)
    return app


class RequestIds:
    """Every request gets an id (the caller's X-Request-Id, or a new one), echoed in the response,
    and one JSON log line. A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs about
    a millisecond per request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = given.decode("latin-1") or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        state["started"] = started
        status = 500

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access.isEnabledFor(logging.INFO):
                access.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                        "served_by": _label(state.get("served")),
                        "caller": state.get("caller"),
                    },
                )


def _label(served: Served | None) -> str | None:
    return None if served is None else served.label


def _add_error_handlers(app: FastAPI, scorer: Scorer) -> None:
    """Errors answered in each protocol's shape, and logged when a version was chosen."""

    async def invalid_body(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _validation_error(exc)

    async def scoring_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ScoringError)
        served = getattr(request.state, "served", None)
        scorer.log_error(request, served, exc.status, "; ".join(exc.errors))
        return _scoring_error(request, exc)

    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(ScoringError, scoring_error)


def _scoring_error(request: Request, exc: ScoringError) -> Response:
    """The error in the shape of the protocol that was spoken."""
    return _json_response(_error_body(request.url.path, exc.errors), status_code=exc.status)


def _error_body(path: str, errors: list[str]) -> dict[str, Any]:
    if path.startswith("/v2/"):
        return {"error": "; ".join(errors)}
    if path == "/invocations":
        return {"error_code": "BAD_REQUEST", "message": "; ".join(errors), "errors": errors}
    return {"errors": errors}


def _too_large(limit: int, path: str) -> dict[str, Any]:
    """The 413 of a body over ``limit`` bytes, in the shape of the protocol at ``path``."""
    message = (
        f"body: larger than {limit} bytes ({limit / MiB:.3g} MiB), the most this server takes "
        "(limits.max_body_mib, --max-body-mib)"
    )
    return _error_body(path, [message])


def _add_operations(app: FastAPI, scorer: Scorer, drain: Drain) -> None:
    @app.get("/health", response_model=Health)
    def health() -> Health:
        model = scorer.table.routes[0].model
        log = scorer.prediction_log
        return Health(
            status="ok",
            ready=not drain.draining,
            model=model.name,
            version=model.version,
            prediction_log=log.failure if log is not None else None,
            prediction_log_dropped=log.dropped if log is not None else 0,
        )

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        registry = scorer.metrics.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # several workers: add up their files
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _add_native(app: FastAPI, scorer: Scorer, record: Any) -> None:
    documented, components = body_schema(request_model(record, scorer.limits.max_records))
    _add_components(app, components)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        openapi_extra={
            "requestBody": {
                "content": {"application/json": {"schema": documented}},
                "required": True,
            }
        },
    )
    async def predict(request: Request) -> Response:
        """Predictions for ``records`` (objects keyed by input name), with per-record
        ``warnings`` for inputs outside what training saw and the id columns echoed in ``ids``."""
        check_content_type(request.headers.get("content-type"))
        payload = decode_json(await request.body())
        if not isinstance(payload, dict):
            raise ScoringError(422, ["body: expected an object {records: [...], key: ...}"])
        # Routed before the records are checked, so a refusal is logged against a version.
        key = payload.get("key")
        served = scorer.choose(request, key if isinstance(key, str) else None)
        records = _native_records(payload)
        scored = await scorer.run("/predict", request, served, records)
        # Serialised here by orjson; ``response_model`` documents the same shape.
        return _json_response(
            {
                "model": served.model.name,
                "version": served.model.version,
                "request_id": request.state.request_id,
                "predictions": plain_list(scored.predictions),
                "probabilities": probability_dicts(served, scored.proba),
                "ids": scored.ids,
                "warnings": scored.warnings(),
            }
        )


def _add_components(app: FastAPI, schemas: dict[str, Any]) -> None:
    """Add ``schemas`` to the OpenAPI document's components (where ``$ref`` points)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _native_records(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """``{"records": [...], "key": ...}``'s records, or a 422 naming what is wrong."""
    unknown = [name for name in payload if name not in ("records", "key")]
    problems = [f"{name}: unknown field; expected records and key" for name in unknown[:5]]
    records = payload.get("records")
    if "records" not in payload:
        problems.append("records: Field required")
    elif not isinstance(records, list):
        problems.append("records: expected a list of records (objects keyed by input name)")
    else:
        problems += [
            f"records[{i}]: expected an object keyed by input name"
            for i, item in enumerate(records)
            if not isinstance(item, dict)
        ][:MAX_ERRORS]
    key = payload.get("key")
    if key is not None and not isinstance(key, str):
        problems.append("key: expected a string")
    if problems:
        raise ScoringError(422, problems)
    assert isinstance(records, list)
    return records


def _add_mlflow(app: FastAPI, scorer: Scorer) -> None:
    @app.get("/ping", include_in_schema=False)
    def ping() -> Response:
        """MLflow's liveness check (its clients wait on it)."""
        return Response("\n", media_type="application/json")

    @app.post("/invocations", openapi_extra=protocols.request_body(protocols.MLFLOW_BODY))
    async def invocations(request: Request) -> Response:
        """MLflow's scoring protocol (what ``mlflow models serve`` accepts)."""
        check_content_type(request.headers.get("content-type"))
        payload = decode_json(await request.body())
        served = scorer.choose(request)
        signature = served.model.signature
        columns = [c.name for c in signature.inputs]
        records = protocols.mlflow_records(payload, columns, signature.id_columns)
        scored = await scorer.run("/invocations", request, served, records)
        answer: dict[str, Any] = {"predictions": plain_list(scored.predictions)}
        if scored.ids is not None:
            answer["ids"] = scored.ids
        if scored.flagged:
            answer["warnings"] = scored.warnings()
        return _json_response(answer)


def _add_v2(app: FastAPI, scorer: Scorer, drain: Drain) -> None:
    # The names served when the app was built, documented (not enforced: a 404 names the
    # served ones), so that clients and generated tests find the model.
    names = sorted({served.model.name for served in scorer.table.routes})
    Name = Annotated[str, Path(json_schema_extra={"examples": names, "enum": names})]

    @app.get("/v2/health/live")
    def live_check() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    def ready_check() -> Response:
        """200 while the server takes traffic; 503 once it drains (a load balancer's check)."""
        ready = bool(scorer.table.routes) and not drain.draining
        return _json_response({"ready": ready}, status_code=200 if ready else 503)

    @app.get("/v2/models/{name}")
    def model_metadata(name: Name) -> Response:
        table = scorer.table
        return _json_response(protocols.v2_metadata(name, table, _by_name(table, name)))

    @app.get("/v2/models/{name}/ready")
    def model_ready(name: Name) -> dict[str, Any]:
        _by_name(scorer.table, name)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer", openapi_extra=protocols.request_body(protocols.V2_BODY))
    async def infer(name: Name, request: Request) -> Response:
        """Open Inference Protocol v2 inference: one tensor per input column."""
        header = request.headers.get("inference-header-content-length")
        content_type = request.headers.get("content-type")
        if header is None or content_type != "application/octet-stream":
            check_content_type(content_type, missing_is_json=True)
        payload = protocols.v2_payload(await request.body(), header)
        _by_name(scorer.table, name)
        served = scorer.choose(request)
        records = protocols.v2_records(payload, served.model.signature)
        scored = await scorer.run("/v2/infer", request, served, records)
        answer = protocols.v2_response(name, served, payload, scored.predictions, scored.proba)
        return _json_response(protocols.v2_extras(answer, records, scored.ids, scored.warnings()))


def _by_name(table: Table, name: str) -> Served:
    for served in table.routes:
        if served.model.name == name:
            return served
    known = ", ".join(sorted({s.model.name for s in table.routes}))
    raise ScoringError(404, [f"no model named {name!r} is served here (served: {known})"])


def _json_response(content: Any, status_code: int = 200) -> Response:
    """A JSON answer serialised by orjson (numbers, strings and lists of them: no model needed)."""
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def _ids(
    served: Served, records: list[dict[str, Any]], typed: Sequence[Any]
) -> list[dict[str, Any]] | None:
    """Each record's id columns, or None when no record sent any (answers stay as they were
    for callers that send none)."""
    names = [
        name
        for name in served.model.signature.id_columns
        if any(name in record for record in records)
    ]
    if not names:
        return None
    return [{name: getattr(record, name, None) for name in names} for record in typed]
