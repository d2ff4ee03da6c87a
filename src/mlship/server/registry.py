"""The model registry over HTTP: versions, stages, reviews, rollback, tags, history.

The acting user of every change is the caller's token (the registry reads it from the request's
audit actor), never a name the client sends, which is what makes the four-eyes rule of production
promotions mean something: the requester and the approver are two different tokens' users. The
rules between people are the registry's own; the routes add the roles: deciding a promotion or
rolling back takes a reviewer, a requester (a scientist) may withdraw their own request; any
scientist comments, asks for changes or objects, and overruling an objection takes an admin. Request
bodies are declared in :mod:`mlship.remote.registry_api`, answers are the registry's entities.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, HTTPException, Response

from mlship.errors import IntegrityError
from mlship.remote import registry_api as api
from mlship.server.access import role_route
from mlship.server.deps import WorkspaceDep
from mlship.server.idempotency import RecordedRoute
from mlship.server.tracking import TagQuery, tag_filter
from mlship.store.entities import to_json

router = APIRouter(prefix="/api/v1/models", tags=["registry"], route_class=RecordedRoute)

VersionRef = str
"""A version number, or ``latest``."""


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
) -> Any:
    return to_json(workspace.metadata.list_models(owner=owner, tags=tag_filter(tag)))


@router.get("/{name}/versions/{version}", **role_route("viewer"))
def get_version(name: str, version: VersionRef, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.metadata.get_version(name, _number(version)))


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


# -- the registry: answers are entities (``to_json``), the actor is the token's user -----------


@router.get("/{name}/stages/{stage}", **role_route("viewer"))
def in_stage(name: str, stage: str, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.in_stage(name, stage))  # type: ignore[arg-type]


@router.get("/{name}/history", **role_route("viewer"))
def history(name: str, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.history(name))


@router.get("/{name}/requests", **role_route("viewer"))
def requests(name: str, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.requests(name))


@router.get("/{name}/versions/{version}/notes", **role_route("viewer"))
def version_notes(name: str, version: int, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.version_notes(name, version))


@router.post("/{name}/versions/{version}/notes", **role_route("scientist"))
def add_note(name: str, version: int, body: api.NoteBody, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.add_note(name, version, body.body))


# -- reviews between people: scientists comment and review, reviewers decide, admins overrule --


@router.get("/{name}/reviews", **role_route("viewer"))
def reviews(name: str, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.reviews(name))


@router.get("/{name}/versions/{version}/comments", **role_route("viewer"))
def comments(name: str, version: int, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.comments(name, version))


@router.post("/{name}/versions/{version}/comments", **role_route("scientist"))
def comment(name: str, version: int, body: api.CommentBody, workspace: WorkspaceDep) -> Any:
    found = workspace.registry.comment(name, version, body.body, body.reply_to, body.on_request)
    return to_json(found)


@router.post("/{name}/versions/{version}/changes", **role_route("scientist"))
def request_changes(
    name: str, version: int, body: api.ReviewReason, workspace: WorkspaceDep
) -> Any:
    return to_json(workspace.registry.request_changes(name, version, body.reason))


@router.post("/{name}/versions/{version}/objections", **role_route("scientist"))
def raise_objection(
    name: str, version: int, body: api.ReviewReason, workspace: WorkspaceDep
) -> Any:
    return to_json(workspace.registry.raise_objection(name, version, body.reason))


@router.post("/{name}/versions/{version}/objections/withdraw", **role_route("scientist"))
def withdraw_objection(name: str, version: int, body: api.Decision, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.withdraw_objection(name, version, body.note))


@router.post("/{name}/versions/{version}/objections/overrule", **role_route("admin"))
def overrule_objections(
    name: str, version: int, body: api.ReviewReason, workspace: WorkspaceDep
) -> Any:
    return to_json(workspace.registry.overrule_objections(name, version, body.reason))


@router.post("/{name}/versions/{version}/rerequest", **role_route("scientist"))
def request_review_again(
    name: str, version: int, body: api.Decision, workspace: WorkspaceDep
) -> Any:
    return to_json(workspace.registry.request_review_again(name, version, body.note))


@router.post("/{name}/owner", **role_route("scientist"))
def set_owner(name: str, body: api.Owner, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.set_owner(name, body.owner))


@router.post("/{name}/versions/{version}/stage", **role_route("scientist"))
def set_stage(name: str, version: int, body: api.StageMove, workspace: WorkspaceDep) -> Any:
    change = workspace.registry.set_stage(name, version, body.stage, body.reason)  # type: ignore[arg-type]
    return to_json(change)


@router.post("/{name}/versions/{version}/promotion", **role_route("scientist"))
def request_promotion(name: str, version: int, body: api.Reason, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.request_promotion(name, version, body.reason))


@router.post("/{name}/versions/{version}/withdraw", **role_route("scientist"))
def withdraw(name: str, version: int, body: api.Decision, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.withdraw(name, version, body.note))


@router.post("/{name}/versions/{version}/approve", **role_route("reviewer"))
def approve(name: str, version: int, body: api.Decision, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.approve(name, version, body.note))


@router.post("/{name}/versions/{version}/reject", **role_route("reviewer"))
def reject(name: str, version: int, body: api.Decision, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.reject(name, version, body.note))


@router.post("/{name}/rollback", **role_route("reviewer"))
def rollback(name: str, body: api.Reason, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.rollback(name, body.reason))


@router.post("/{name}/tags", **role_route("scientist"))
def tag(name: str, body: api.Tags, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.tag(name, body.version, body.tags))


@router.post("/{name}/description", **role_route("scientist"))
def describe(name: str, body: api.Description, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.registry.describe(name, body.version, body.text))


@router.post("/{name}/versions/{version}/signature", **role_route("admin"))
def record_signature(name: str, version: int, workspace: WorkspaceDep) -> Any:
    """Sign a version registered before signing, after checking the stored bytes' checksum."""
    found = workspace.metadata.get_version(name, version)
    data = workspace.artifacts.get_bytes(found.artifact_sha256)
    if hashlib.sha256(data).hexdigest() != found.artifact_sha256:
        raise IntegrityError(f"{name}:{version}: the artifact does not match its checksum")
    signature = workspace.signer.sign(found.artifact_sha256)
    return to_json(workspace.registry.record_signature(name, version, signature))
