"""The model registry over HTTP: versions, stages, reviews, rollback, tags, history.

The acting user of every change is the caller's token, never a name the client sends, which is
what makes the four-eyes rule of production promotions mean something: the requester and the
approver are two different tokens' users. Deciding a promotion takes a reviewer; a requester may
withdraw their own request.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from mlship.errors import IntegrityError
from mlship.registry.lifecycle import Change, ReviewError
from mlship.server.access import role_route
from mlship.server.deps import Caller, WorkspaceDep
from mlship.server.tracking import TagQuery, tag_filter
from mlship.store.records import to_record, to_records

router = APIRouter(prefix="/api/v1/models", tags=["registry"])

VersionRef = str
"""A version number, or ``latest``."""


class StageMove(BaseModel):
    stage: Literal["none", "staging", "archived", "production"]
    reason: str | None = None


class Reason(BaseModel):
    reason: str | None = None


class Note(BaseModel):
    note: str | None = None


class Tags(BaseModel):
    version: int | None = Field(None, ge=1)
    tags: dict[str, str | None]


class Description(BaseModel):
    version: int | None = Field(None, ge=1)
    text: str


def _change(change: Change) -> dict[str, Any]:
    return asdict(change)


def _number(version: VersionRef) -> int | None:
    if version == "latest":
        return None
    if not version.isdigit() or int(version) < 1:
        raise HTTPException(422, f"version {version!r}: a positive number or 'latest'")
    return int(version)


@router.get("/signing-key", **role_route("viewer"))
def signing_key(workspace: WorkspaceDep) -> dict[str, str | None]:
    """How the server signs versions, and its Ed25519 public key (clients may pin it as
    MLSHIP_VERIFY_KEY to check signatures themselves)."""
    return {"scheme": workspace.signer.scheme, "public_key": workspace.signer.public_text()}


@router.get("", **role_route("viewer"))
def list_models(
    workspace: WorkspaceDep, owner: str | None = None, tag: list[str] = TagQuery
) -> list[dict[str, Any]]:
    return to_records(workspace.metadata.list_models(owner=owner, tags=tag_filter(tag)))


class Owner(BaseModel):
    owner: str = Field(min_length=1, max_length=200)


class NoteBody(BaseModel):
    body: str = Field(min_length=1, max_length=100_000)


@router.post("/{name}/owner", **role_route("scientist"))
def set_owner(name: str, body: Owner, workspace: WorkspaceDep, caller: Caller) -> dict[str, Any]:
    return _change(workspace.registry.set_owner(name, body.owner, caller.user))


@router.post("/{name}/versions/{version}/notes", **role_route("scientist"))
def add_note(
    name: str, version: int, body: NoteBody, workspace: WorkspaceDep, caller: Caller
) -> dict[str, Any]:
    return to_record(workspace.registry.add_note(name, version, body.body, caller.user))


@router.get("/{name}/versions/{version}/notes", **role_route("viewer"))
def version_notes(name: str, version: int, workspace: WorkspaceDep) -> list[dict[str, Any]]:
    return to_records(workspace.registry.version_notes(name, version))


@router.get("/{name}/versions/{version}", **role_route("viewer"))
def get_version(name: str, version: VersionRef, workspace: WorkspaceDep) -> dict[str, Any]:
    return to_record(workspace.metadata.get_version(name, _number(version)))


@router.get("/{name}/versions/{version}/artifact", **role_route("viewer"))
def model_artifact(name: str, version: VersionRef, workspace: WorkspaceDep) -> Response:
    """The model file, sent only after the server verified its signature and checksum."""
    found = workspace.metadata.get_version(name, _number(version))
    what = f"model {name}:{found.version}"
    workspace.signer.verify(found.artifact_sha256, found.artifact_signature, what)
    data = workspace.artifacts.get_bytes(found.artifact_sha256)
    if hashlib.sha256(data).hexdigest() != found.artifact_sha256:
        raise IntegrityError(f"refusing to send {what}: its artifact does not match its checksum")
    return Response(data, media_type="application/octet-stream")


@router.get("/{name}/stages/{stage}", **role_route("viewer"))
def in_stage(
    name: str, stage: Literal["none", "staging", "production", "archived"], workspace: WorkspaceDep
) -> dict[str, Any]:
    return to_record(workspace.registry.in_stage(name, stage))


@router.get("/{name}/history", **role_route("viewer"))
def history(name: str, workspace: WorkspaceDep) -> list[dict[str, Any]]:
    return to_records(workspace.registry.history(name))


@router.get("/{name}/requests", **role_route("viewer"))
def requests(name: str, workspace: WorkspaceDep) -> list[dict[str, Any]]:
    return to_records(workspace.registry.requests(name))


@router.post("/{name}/versions/{version}/stage", **role_route("scientist"))
def set_stage(
    name: str, version: int, body: StageMove, workspace: WorkspaceDep, caller: Caller
) -> dict[str, Any]:
    change = workspace.registry.set_stage(name, version, body.stage, caller.user, body.reason)
    return _change(change)


@router.post("/{name}/versions/{version}/promotion", **role_route("scientist"))
def request_promotion(
    name: str, version: int, body: Reason, workspace: WorkspaceDep, caller: Caller
) -> dict[str, Any]:
    change = workspace.registry.request_promotion(name, version, caller.user, body.reason)
    return _change(change)


@router.post("/{name}/versions/{version}/withdraw", **role_route("scientist"))
def withdraw(
    name: str, version: int, body: Note, workspace: WorkspaceDep, caller: Caller
) -> dict[str, Any]:
    pending = [r for r in workspace.registry.requests(name) if r.version == version]
    mine = [r for r in pending if r.status == "pending" and r.requested_by == caller.user]
    if not mine:
        raise ReviewError(f"{caller.user} has no pending promotion request for {name}:{version}")
    return _change(workspace.registry.reject(name, version, caller.user, body.note))


@router.post("/{name}/versions/{version}/approve", **role_route("reviewer"))
def approve(
    name: str, version: int, body: Note, workspace: WorkspaceDep, caller: Caller
) -> dict[str, Any]:
    return _change(workspace.registry.approve(name, version, caller.user, body.note))


@router.post("/{name}/versions/{version}/reject", **role_route("reviewer"))
def reject(
    name: str, version: int, body: Note, workspace: WorkspaceDep, caller: Caller
) -> dict[str, Any]:
    return _change(workspace.registry.reject(name, version, caller.user, body.note))


@router.post("/{name}/rollback", **role_route("reviewer"))
def rollback(name: str, body: Reason, workspace: WorkspaceDep, caller: Caller) -> dict[str, Any]:
    return _change(workspace.registry.rollback(name, caller.user, body.reason))


@router.post("/{name}/tags", **role_route("scientist"))
def tag(name: str, body: Tags, workspace: WorkspaceDep, caller: Caller) -> dict[str, Any]:
    return _change(workspace.registry.tag(name, body.version, body.tags, caller.user))


@router.post("/{name}/description", **role_route("scientist"))
def describe(
    name: str, body: Description, workspace: WorkspaceDep, caller: Caller
) -> dict[str, Any]:
    return _change(workspace.registry.describe(name, body.version, body.text, caller.user))


@router.post("/{name}/versions/{version}/signature", **role_route("admin"))
def record_signature(
    name: str, version: int, workspace: WorkspaceDep, caller: Caller
) -> dict[str, Any]:
    """Sign a version registered before signing, after checking the stored bytes' checksum."""
    found = workspace.metadata.get_version(name, version)
    data = workspace.artifacts.get_bytes(found.artifact_sha256)
    if hashlib.sha256(data).hexdigest() != found.artifact_sha256:
        raise IntegrityError(f"{name}:{version}: the artifact does not match its checksum")
    signature = workspace.signer.sign(found.artifact_sha256)
    return _change(workspace.registry.record_signature(name, version, signature, caller.user))
