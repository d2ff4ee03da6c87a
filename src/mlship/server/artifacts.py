"""The artifact store over HTTP: content-addressed uploads and downloads.

An upload names the sha256 its bytes must have; the body is spooled to a temporary file (never
held whole in memory), hashed, and stored only if it matches, so a client cannot file bytes under
another artifact's address. Addresses are checked to be 64 hex digits before they reach a path,
which also rules out any path traversal.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from mlship.errors import NotFoundError
from mlship.server.access import role_route
from mlship.server.deps import WorkspaceDep
from mlship.store.artifacts import ArtifactRef, ArtifactStore

router = APIRouter(prefix="/api/v1/artifacts", tags=["artifacts"])


@router.put("/{sha256}", **role_route("scientist"))
async def put_artifact(sha256: str, request: Request, workspace: WorkspaceDep) -> dict[str, Any]:
    _check(sha256)
    store = workspace.artifacts
    limit: int = request.app.state.max_artifact_bytes
    with tempfile.TemporaryDirectory(prefix="mlship-upload-") as directory:
        spool = Path(directory) / "body"
        digest = hashlib.sha256()
        size = 0
        with spool.open("wb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"artifact larger than the limit of {limit} bytes")
                digest.update(chunk)
                handle.write(chunk)
        if digest.hexdigest() != sha256:
            raise HTTPException(
                400, f"the body hashes to {digest.hexdigest()}, not to the address {sha256}"
            )
        ref: ArtifactRef = await run_in_threadpool(_store, store, spool)
    return {"sha256": ref.sha256, "size": ref.size}


def _store(store: ArtifactStore, path: Path) -> ArtifactRef:
    return store.put_file(path)


@router.get("/{sha256}", **role_route("viewer"))
def get_artifact(sha256: str, workspace: WorkspaceDep) -> Response:
    _check(sha256)
    if not workspace.artifacts.exists(sha256):  # a NotFoundError, as from every other store
        raise NotFoundError(f"artifact {sha256} is not stored on this server")
    return Response(workspace.artifacts.get_bytes(sha256), media_type="application/octet-stream")


@router.get("/{sha256}/exists", **role_route("viewer"))
def artifact_exists(sha256: str, workspace: WorkspaceDep) -> dict[str, bool]:
    _check(sha256)
    return {"exists": workspace.artifacts.exists(sha256)}


def _check(sha256: str) -> None:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise HTTPException(422, "an artifact address is 64 lowercase hex digits (its sha256)")
