"""The tracking server's application: routes, error answers, and request size limits.

Errors keep their kind across the wire: a :class:`~mlship.errors.NotFoundError` becomes a 404, a
review refusal a 409, any other :class:`~mlship.errors.MlshipError` a 400, each with the message
and the class name, so the client raises the same error the local store would have.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError as DBDataError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlship import __version__
from mlship.errors import IntegrityError, MlshipError, NotFoundError
from mlship.registry.lifecycle import ReviewError
from mlship.security.audit import AuditLog
from mlship.server import admin, alerts, artifacts, registry, tracking
from mlship.server.access import RateLimiter, role_route
from mlship.workspace import Workspace

MiB = 1024 * 1024
_STATUS: tuple[tuple[type[MlshipError], int], ...] = (
    (NotFoundError, 404),
    (ReviewError, 409),
    (IntegrityError, 409),
    (MlshipError, 400),
)


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__


class BodyLimit:
    """Refuse request bodies over a size (413) before a route reads them whole.

    A declared ``Content-Length`` over the limit is refused at once; a body without one is
    counted as it streams. Artifact uploads have their own, larger, limit (checked by the route
    while it spools to disk), since models and datasets are bigger than any JSON request.
    """

    def __init__(self, app: ASGIApp, limit: int, exempt_prefix: str) -> None:
        self.app = app
        self.limit = limit
        self.exempt_prefix = exempt_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        started = refused = False

        async def counting() -> Message:
            # Over the limit, the answer is sent here and the route is told the client left:
            # raising instead would reach the route's body parser, which answers 400.
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit and not refused:
                    refused = True
                    if not started:
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, tracking)
        except Exception:
            if not refused:  # a route failing on the cut-off body is expected; others are not
                raise

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"error": "BodyTooLarge", "detail": f"request body over {self.limit} bytes"}
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def create_app(
    workspace: Workspace,
    *,
    max_body_bytes: int = 16 * MiB,
    max_artifact_bytes: int = 4096 * MiB,
    requests_per_minute: int = 6000,
) -> FastAPI:
    """The tracking server over ``workspace`` (which must be a local one: a server does not
    forward to another server)."""
    if workspace.remote is not None:
        raise MlshipError("mlship server serves a local workspace; unset MLSHIP_URL to run one")
    app = FastAPI(
        title="mlship tracking server",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.workspace = workspace
    app.state.users = workspace.users
    app.state.audit = AuditLog(workspace.metadata)
    app.state.limiter = RateLimiter(requests_per_minute)
    app.state.max_artifact_bytes = max_artifact_bytes
    for module in (tracking, registry, artifacts, admin, alerts):
        app.include_router(module.router)

    @app.get("/api/v1/openapi.json", include_in_schema=False, **role_route("viewer"))
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/api/v1/health", **role_route("viewer"))
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.exception_handler(MlshipError)
    async def known(_request: Request, exc: MlshipError) -> JSONResponse:
        status = next(code for kind, code in _STATUS if isinstance(exc, kind))
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=status)

    @app.exception_handler(DBDataError)
    async def unstorable(_request: Request, exc: DBDataError) -> JSONResponse:
        # A value the database cannot hold (a NUL character, a number out of range): the
        # client's input, so a 422 with the driver's first line, never the statement.
        detail = f"a value the database cannot store: {_first_line(exc)}"
        return JSONResponse({"error": "DataError", "detail": detail}, status_code=422)

    @app.exception_handler(DBIntegrityError)
    async def conflict(_request: Request, exc: DBIntegrityError) -> JSONResponse:
        detail = f"conflicts with stored rows: {_first_line(exc)}"
        return JSONResponse({"error": "ConflictError", "detail": detail}, status_code=409)

    app.add_middleware(BodyLimit, limit=max_body_bytes, exempt_prefix="/api/v1/artifacts/")
    return app
