"""The tracking server's application: routes, error answers, and request size limits.

Errors keep their kind across the wire: a :class:`~mlship.errors.NotFoundError` becomes a 404, a
review refusal a 409, any other :class:`~mlship.errors.MlshipError` a 400, each with the message
and the class name, so the client raises the same error the local store would have.

A store on the server's side that cannot be written (full, read-only, refusing, failing) is the
server's problem, not the request's: a 507 for a full disk or quota, a 503 otherwise, with the
message that names the store and what its operator must do, also written to the server's log.
A database that cannot be reached (down, failing over, locked too long) is a 503 as well, which
clients retry.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError as DBDataError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.exc import OperationalError as DBOperationalError

from mlship import __version__
from mlship.bodylimit import BodyLimit, MiB
from mlship.errors import IntegrityError, MlshipError, NotFoundError, StorageError
from mlship.security.users import SqlUsers
from mlship.server import admin, alerts, artifacts, logparts, registry, rollouts, tracking
from mlship.server.access import RateLimiter, role_route
from mlship.store.audit_log import SqlAuditLog
from mlship.store.failures import anywhere, is_full, is_storage_failure
from mlship.store.idempotency import SqlIdempotencyKeys
from mlship.store.liveness import RunStateError
from mlship.store.rate_limits import SqlRateLimits
from mlship.store.registry import ReviewError
from mlship.store.repositories import MarksMoved
from mlship.store.rollouts import RolloutConflict
from mlship.ui import create_ui
from mlship.workspace import Workspace

__all__ = ["MiB", "create_app"]

logger = logging.getLogger("mlship.server")
_STATUS: tuple[tuple[type[MlshipError], int], ...] = (
    (NotFoundError, 404),
    (ReviewError, 409),
    (RolloutConflict, 409),
    (MarksMoved, 409),
    (RunStateError, 409),
    (IntegrityError, 409),
    (MlshipError, 400),
)


def _unavailable(exc: StorageError) -> JSONResponse:
    logger.error("%s", exc)
    status = 507 if is_full(exc.code) else 503
    return JSONResponse({"error": "StorageError", "detail": str(exc)}, status_code=status)


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__


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
    app.state.users = SqlUsers(workspace.metadata, workspace.settings.user)
    app.state.audit = SqlAuditLog(workspace.metadata)
    app.state.limiter = RateLimiter(requests_per_minute, SqlRateLimits(workspace.metadata.engine))
    app.state.idempotency_keys = SqlIdempotencyKeys(workspace.metadata.engine)
    app.state.max_artifact_bytes = max_artifact_bytes
    for module in (tracking, registry, artifacts, logparts, admin, alerts, rollouts):
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

    @app.exception_handler(StorageError)
    async def storage(_request: Request, exc: StorageError) -> JSONResponse:
        return _unavailable(exc)

    @app.exception_handler(OSError)
    async def disk(request: Request, exc: OSError) -> JSONResponse:
        if not is_storage_failure(exc):
            raise exc  # not the disk: the generic 500 handler and its traceback in the log
        return _unavailable(anywhere(exc))

    @app.exception_handler(DBDataError)
    async def unstorable(_request: Request, exc: DBDataError) -> JSONResponse:
        # A value the database cannot hold (a NUL character, a number out of range): the
        # client's input, so a 422 with the driver's first line, never the statement.
        detail = f"a value the database cannot store: {_first_line(exc)}"
        return JSONResponse({"error": "DataError", "detail": detail}, status_code=422)

    @app.exception_handler(DBOperationalError)
    async def database_unavailable(_request: Request, exc: DBOperationalError) -> JSONResponse:
        # The database is unreachable, restarting, failing over or busy beyond the lock timeout:
        # the request may succeed a moment later, here or on another server, so a 503, which
        # clients retry (with the same idempotency key for a write: nothing was committed).
        logger.error("the metadata database is unavailable: %s", _first_line(exc))
        detail = f"the metadata database is unavailable ({_first_line(exc)}); try again"
        return JSONResponse({"error": "DatabaseUnavailable", "detail": detail}, status_code=503)

    @app.exception_handler(DBIntegrityError)
    async def conflict(_request: Request, exc: DBIntegrityError) -> JSONResponse:
        detail = f"conflicts with stored rows: {_first_line(exc)}"
        return JSONResponse({"error": "ConflictError", "detail": detail}, status_code=409)

    app.mount("/ui", create_ui(workspace, "server"))
    app.add_middleware(BodyLimit, limit=max_body_bytes, exempt_prefix="/api/v1/artifacts/")
    return app
