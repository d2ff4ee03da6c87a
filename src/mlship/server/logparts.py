"""The logs' parts over HTTP, so replicas that use a tracking server share their logs.

Servers of a deployment and ``mlship predict`` on other machines put their parts here, and
``mlship monitor`` anywhere reads them back; the server keeps them in its own log store (its home,
or the object storage of its artifacts). Parts arrive sealed by their writer and are stored as
they are. Log and part names are checked before they reach a path or a key, which rules out any
path traversal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from mlship.errors import NotFoundError
from mlship.server.access import role_route
from mlship.server.deps import WorkspaceDep
from mlship.store.logstore import PartRef, check_log, check_part

router = APIRouter(prefix="/api/v1/logs", tags=["logs"])


class PartNames(BaseModel):
    names: list[str]


def _log(log: str) -> str:
    try:
        return check_log(log)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def _part(log: str, name: str) -> PartRef:
    try:
        return PartRef(_log(log), check_part(name))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("", **role_route("viewer"))
def list_logs(workspace: WorkspaceDep, under: str = "predictions") -> dict[str, Any]:
    return {"logs": workspace.logs.logs(_log(under))}


@router.get("/{log:path}/parts", **role_route("viewer"))
def list_parts(log: str, workspace: WorkspaceDep, since_ns: int | None = None) -> dict[str, Any]:
    since = None if since_ns is None else datetime.fromtimestamp(since_ns / 1e9, UTC)
    return {"parts": [part.name for part in workspace.logs.parts(_log(log), since)]}


@router.put("/{log:path}/parts/{name}", **role_route("scientist"))
async def put_part(
    log: str, name: str, request: Request, workspace: WorkspaceDep
) -> dict[str, Any]:
    part = _part(log, name)
    limit: int = request.app.state.max_artifact_bytes
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(413, f"log part larger than the limit of {limit} bytes")
    await run_in_threadpool(workspace.logs.put, part.log, part.name, bytes(body))
    return {"log": part.log, "name": part.name, "size": len(body)}


@router.get("/{log:path}/parts/{name}", **role_route("viewer"))
def get_part(log: str, name: str, workspace: WorkspaceDep) -> Response:
    part = _part(log, name)
    try:
        data = workspace.logs.read(part)
    except FileNotFoundError:
        raise NotFoundError(f"log part {part.log}/{part.name} is not on this server") from None
    return Response(data, media_type="application/octet-stream")


@router.post("/{log:path}/delete", **role_route("scientist"))
def delete_parts(log: str, body: PartNames, workspace: WorkspaceDep) -> dict[str, Any]:
    parts = [_part(log, name) for name in body.names]
    workspace.logs.delete(parts)
    return {"deleted": len(parts)}
