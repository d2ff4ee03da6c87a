"""Datasets, runs and their tuning journals over HTTP: the tracking half of the metadata store.

Each route calls the same repository method the command line calls locally, so a client gets the
same rows, rebuilt by :mod:`mlship.store.records`. What the server decides itself, it decides here:
who a run belongs to is the caller, not what the client says, and only that person (or an admin)
may finish it; a version is signed with the server's key, over an artifact the server holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from mlship.security.users import Identity
from mlship.server.access import RANK, role_route
from mlship.server.deps import Caller, WorkspaceDep
from mlship.store.liveness import RunStateError, Worker
from mlship.store.metadata import NewVersion
from mlship.store.records import from_record, to_record, to_records
from mlship.store.tables import Candidate, Metric
from mlship.workspace import Workspace

router = APIRouter(prefix="/api/v1", tags=["tracking"])

SHA256 = r"^[0-9a-f]{64}$"
Limit = Query(50, ge=1, le=1000)
TagQuery = Query([], description="key=value; several must all match")


class NewDataset(BaseModel):
    data_hash: str = Field(pattern=SHA256)
    artifact_sha256: str = Field(pattern=SHA256)
    n_rows: int = Field(ge=0)
    columns: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    details: dict[str, Any] = Field(default_factory=dict)


class IngestEntry(BaseModel):
    dataset_id: int = Field(ge=1)


class NewRun(BaseModel):
    pipeline: str = Field(min_length=1, max_length=200)
    task: str = Field(max_length=40)
    metric: str = Field(max_length=60)
    spec_path: str
    spec_hash: str = Field(max_length=64)
    spec: dict[str, Any]
    git_commit: str | None = Field(None, max_length=64)
    environment: dict[str, Any]
    executor: str | None = Field(None, max_length=200)
    host: str | None = Field(None, min_length=1, max_length=255)
    pid: int | None = Field(None, ge=1, le=2**31 - 1)

    def worker(self) -> Worker | None:
        return _worker(self.host, self.pid)


class Reopen(BaseModel):
    pipeline: str = Field(min_length=1, max_length=200)
    spec_hash: str = Field(max_length=64)
    host: str | None = Field(None, min_length=1, max_length=255)
    pid: int | None = Field(None, ge=1, le=2**31 - 1)

    def worker(self) -> Worker | None:
        return _worker(self.host, self.pid)


def _worker(host: str | None, pid: int | None) -> Worker | None:
    """The process a client says works on a run: both its host and pid, or nothing."""
    if (host is None) != (pid is None):
        raise HTTPException(
            422, "host and pid of a run's process go together: give both or neither"
        )
    return None if host is None or pid is None else Worker(host, pid)


class Abandon(BaseModel):
    reason: str = Field("", max_length=2000)
    force: bool = False


class Failure(BaseModel):
    error: str
    started: datetime


class Registration(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    dataset_hash: str = Field(max_length=64)
    estimator: str = Field(max_length=300)
    params: dict[str, Any]
    artifact_sha256: str = Field(pattern=SHA256)
    artifact_size: int = Field(ge=0)
    signature: dict[str, Any]
    metrics: dict[str, Any]


class Results(BaseModel):
    dataset_id: int = Field(ge=1)
    candidates: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    best_candidate: str = Field(max_length=200)
    wall_seconds: float
    outcome: dict[str, Any] | None = None
    registration: Registration | None = None


class Journal(BaseModel):
    logs: list[dict[str, Any]] = Field(max_length=10_000)


def _missing_artifact(workspace: Workspace, sha256: str) -> None:
    if not workspace.artifacts.exists(sha256):
        raise HTTPException(400, f"artifact {sha256} is not on the server; upload it first")


# -- datasets -----------------------------------------------------------------------------------


@router.post("/datasets", **role_route("scientist"))
def add_dataset(body: NewDataset, workspace: WorkspaceDep) -> dict[str, Any]:
    _missing_artifact(workspace, body.artifact_sha256)
    dataset, created = workspace.metadata.get_or_add_dataset(
        body.data_hash, body.artifact_sha256, body.n_rows, body.columns, body.sources,
        **body.details,
    )  # fmt: skip
    return {"dataset": to_record(dataset), "created": created}


@router.get("/datasets", **role_route("viewer"))
def list_datasets(workspace: WorkspaceDep, limit: int = Limit) -> list[dict[str, Any]]:
    return to_records(workspace.metadata.list_datasets(limit))


@router.get("/datasets/{ref}", **role_route("viewer"))
def get_dataset(ref: str, workspace: WorkspaceDep) -> dict[str, Any]:
    return to_record(workspace.metadata.get_dataset(ref))


@router.get("/ingest-cache/{key}", **role_route("viewer"))
def cached_dataset(key: str, workspace: WorkspaceDep) -> dict[str, Any]:
    found = workspace.metadata.cached_dataset(key)
    return {"dataset": None if found is None else to_record(found)}


@router.put("/ingest-cache/{key}", **role_route("scientist"))
def remember_ingest(key: str, body: IngestEntry, workspace: WorkspaceDep) -> dict[str, Any]:
    workspace.metadata.remember_ingest(key[:64], body.dataset_id)
    return {"key": key[:64], "dataset_id": body.dataset_id}


# -- runs ---------------------------------------------------------------------------------------


@router.post("/runs", **role_route("scientist"))
def start_run(body: NewRun, workspace: WorkspaceDep, caller: Caller) -> dict[str, Any]:
    fields = body.model_dump(exclude={"host", "pid"})
    run_id = workspace.metadata.start_run(user=caller.user, worker=body.worker(), **fields)
    return {"id": run_id}


@router.post("/runs/reopen", **role_route("scientist"))
def reopen_run(body: Reopen, workspace: WorkspaceDep, caller: Caller) -> dict[str, Any]:
    try:
        found = workspace.metadata.reopen_run(
            body.pipeline, body.spec_hash, user=caller.user, worker=body.worker()
        )
    except RunStateError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"run": None if found is None else {"id": found[0], "attempts": found[1]}}


def _own(owner: str, caller: Identity, run_id: str) -> None:
    if owner != caller.user and RANK[caller.role] < RANK["admin"]:
        detail = f"run {run_id} belongs to {owner}; only they or an admin may change it"
        raise HTTPException(403, detail)


@router.post("/runs/{run_id}/fail", **role_route("scientist"))
def fail_run(run_id: str, body: Failure, workspace: WorkspaceDep, caller: Caller) -> dict[str, Any]:
    run = workspace.metadata.get_run(run_id)
    _own(run.user, caller, run.id)
    workspace.metadata.fail_run(run.id, body.error, body.started)
    return {"id": run.id}


@router.post("/runs/{run_id}/heartbeat", **role_route("scientist"))
def heartbeat(run_id: str, workspace: WorkspaceDep, caller: Caller) -> dict[str, Any]:
    """Renew a running run's lease, by the server's clock (a client's may be off)."""
    run = workspace.metadata.get_run(run_id)
    _own(run.user, caller, run.id)
    return {"id": run.id, "running": workspace.metadata.heartbeat(run.id)}


@router.post("/runs/{ref}/abandon", **role_route("scientist"))
def abandon_run(ref: str, body: Abandon, workspace: WorkspaceDep, caller: Caller) -> dict[str, Any]:
    run = workspace.metadata.get_run(ref)
    _own(run.owner or run.user, caller, run.id)
    try:
        found = workspace.metadata.abandon_run(
            run.id, reason=body.reason, user=caller.user, force=body.force
        )
    except RunStateError as exc:
        raise HTTPException(409, str(exc)) from None
    return to_record(found, depth=0)


@router.post("/runs/{run_id}/finish", **role_route("scientist"))
def finish_run(
    run_id: str, body: Results, workspace: WorkspaceDep, caller: Caller
) -> dict[str, Any]:
    run = workspace.metadata.get_run(run_id)
    _own(run.user, caller, run.id)
    register = None
    if body.registration is not None:
        sha256 = body.registration.artifact_sha256
        _missing_artifact(workspace, sha256)
        register = NewVersion(
            **body.registration.model_dump(),
            artifact_signature=workspace.signer.sign(sha256),
            created_by=caller.user,
        )
    version = workspace.metadata.finish_run(
        run.id,
        dataset_id=body.dataset_id,
        candidates=[from_record(Candidate, _fresh(c)) for c in body.candidates],
        metrics=[from_record(Metric, _fresh(m)) for m in body.metrics],
        best_candidate=body.best_candidate,
        wall_seconds=body.wall_seconds,
        outcome=body.outcome,
        register=register,
    )
    return {"version": None if version is None else to_record(version)}


def _fresh(record: dict[str, Any]) -> dict[str, Any]:
    """A child row as a new row of this run: ids and the run are the server's to assign."""
    return {k: v for k, v in record.items() if k not in ("id", "run_id", "run")}


class RunTags(BaseModel):
    tags: dict[str, str | None]


class Owner(BaseModel):
    owner: str = Field(min_length=1, max_length=200)


class NoteBody(BaseModel):
    body: str = Field(min_length=1, max_length=100_000)


def tag_filter(tag: list[str]) -> dict[str, str] | None:
    """``key=value`` query values as the repositories' tag filter."""
    if not tag:
        return None
    pairs = [item.partition("=") for item in tag]
    if any(not key or not sep for key, sep, _ in pairs):
        raise HTTPException(422, "a tag filter is key=value")
    return {key: value for key, _, value in pairs}


@router.get("/runs", **role_route("viewer"))
def list_runs(
    workspace: WorkspaceDep,
    limit: int = Limit,
    owner: str | None = None,
    tag: list[str] = TagQuery,
) -> list[dict[str, Any]]:
    return to_records(workspace.metadata.list_runs(limit, owner=owner, tags=tag_filter(tag)))


@router.post("/runs/{ref}/tags", **role_route("scientist"))
def tag_run(ref: str, body: RunTags, workspace: WorkspaceDep) -> dict[str, Any]:
    return to_record(workspace.metadata.tag_run(ref, body.tags), depth=0)


@router.post("/runs/{ref}/owner", **role_route("scientist"))
def set_run_owner(ref: str, body: Owner, workspace: WorkspaceDep, caller: Caller) -> dict[str, Any]:
    run = workspace.metadata.get_run(ref)
    _own(run.owner or run.user, caller, run.id)
    return to_record(workspace.metadata.set_run_owner(run.id, body.owner), depth=0)


@router.post("/runs/{ref}/notes", **role_route("scientist"))
def add_run_note(
    ref: str, body: NoteBody, workspace: WorkspaceDep, caller: Caller
) -> dict[str, Any]:
    return to_record(workspace.metadata.add_run_note(ref, body.body, caller.user))


@router.get("/notes", **role_route("viewer"))
def notes(
    workspace: WorkspaceDep, kind: Literal["run", "version"], target: str
) -> list[dict[str, Any]]:
    return to_records(workspace.metadata.notes(kind, target))


@router.get("/runs/{ref}", **role_route("viewer"))
def get_run(ref: str, workspace: WorkspaceDep) -> dict[str, Any]:
    return to_record(workspace.metadata.get_run(ref))


@router.get("/runs/{run_id}/journal", **role_route("viewer"))
def read_journal(
    run_id: str, workspace: WorkspaceDep, start: int = Query(0, ge=0, alias="from")
) -> list[dict[str, Any]]:
    return workspace.metadata.read_journal(run_id, start)


@router.post("/runs/{run_id}/journal", **role_route("scientist"))
def append_journal(
    run_id: str, body: Journal, workspace: WorkspaceDep, caller: Caller
) -> dict[str, Any]:
    run = workspace.metadata.get_run(run_id)
    _own(run.user, caller, run.id)
    workspace.metadata.append_journal(run.id, body.logs)
    return {"appended": len(body.logs)}
