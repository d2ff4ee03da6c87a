"""Datasets, runs and their tuning journals over HTTP: the tracking half of the metadata store.

Each route calls the same repository method the command line calls locally and answers with the
entity it returns (:func:`~mlship.store.entities.to_json`); request bodies are the models of
:mod:`mlship.remote.tracking_api`, which the client builds too. Who acts is the caller's token,
set as the store's actor before the route runs, so no body says who it is. What the server decides
itself, it decides here: only a run's starter (or owner, for handing over and abandoning) or an
admin may change it; a version is signed with the server's key. The repositories' own refusals
(an unknown ref, a run still alive, an artifact the store does not hold) travel as their error
class and message, so a client raises what the local store would.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from mlship.remote.tracking_api import Abandon as AbandonBody
from mlship.remote.tracking_api import (
    AddedDataset,
    Appended,
    Beat,
    CachedDataset,
    Failure,
    Finished,
    FoundMarks,
    IngestEntry,
    Journal,
    MarksMove,
    NewDatasetBody,
    NewRun,
    NoteBody,
    Owner,
    Process,
    Reopen,
    ReopenAnswer,
    Reopened,
    Results,
    RunRef,
    RunTags,
    StartedRun,
)
from mlship.security.users import Identity
from mlship.server.access import RANK, role_route
from mlship.server.deps import Caller, WorkspaceDep
from mlship.server.idempotency import RecordedRoute
from mlship.store.entities import to_json
from mlship.store.liveness import Worker
from mlship.store.repositories import NewVersion
from mlship.store.run_search import MAX_COLUMNS, MAX_PAGE_SIZE, RunQuery

router = APIRouter(prefix="/api/v1", tags=["tracking"], route_class=RecordedRoute)

Limit = Query(50, ge=1, le=1000)
TagQuery = Query([], description="key=value; several must all match")
ColumnQuery = Query([], max_length=MAX_COLUMNS, description="metric.NAME or param.NAME")


def _worker(process: Process) -> Worker | None:
    """The process a client says works on a run: both its host and pid, or nothing."""
    if (process.host is None) != (process.pid is None):
        raise HTTPException(
            422, "host and pid of a run's process go together: give both or neither"
        )
    return (
        None if process.host is None or process.pid is None else Worker(process.host, process.pid)
    )


# -- datasets -----------------------------------------------------------------------------------


@router.post("/datasets", **role_route("scientist"))
def add_dataset(body: NewDatasetBody, workspace: WorkspaceDep) -> dict[str, Any]:
    dataset, created = workspace.metadata.get_or_add_dataset(
        body.data_hash, body.artifact_sha256, body.n_rows, body.columns, body.sources,
        **body.details,
    )  # fmt: skip
    return AddedDataset(dataset=dataset, created=created).model_dump(mode="json")


@router.get("/datasets", **role_route("viewer"))
def list_datasets(workspace: WorkspaceDep, limit: int = Limit) -> list[Any]:
    return list(to_json(workspace.metadata.list_datasets(limit)))


@router.get("/datasets/{ref}", **role_route("viewer"))
def get_dataset(ref: str, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.metadata.get_dataset(ref))


@router.get("/ingest-cache/{key}", **role_route("viewer"))
def cached_dataset(key: str, workspace: WorkspaceDep) -> dict[str, Any]:
    found = workspace.metadata.cached_dataset(key)
    return CachedDataset(dataset=found).model_dump(mode="json")


@router.put("/ingest-cache/{key}", **role_route("scientist"))
def remember_ingest(key: str, body: IngestEntry, workspace: WorkspaceDep) -> dict[str, Any]:
    workspace.metadata.remember_ingest(key, body.dataset_id)
    return body.model_dump(mode="json")


@router.get("/ingest-marks/{pipeline}", **role_route("viewer"))
def ingest_marks(pipeline: str, workspace: WorkspaceDep) -> dict[str, Any]:
    found = workspace.metadata.ingest_marks(pipeline)
    return FoundMarks(marks=found).model_dump(mode="json")


@router.post("/ingest-marks/{pipeline}", **role_route("scientist"))
def advance_marks(pipeline: str, body: MarksMove, workspace: WorkspaceDep) -> Any:
    moved = workspace.metadata.advance_marks(
        pipeline, serial=body.serial, dataset_id=body.dataset_id, marks=body.marks
    )
    return to_json(moved)


# -- runs ---------------------------------------------------------------------------------------


@router.post("/runs", **role_route("scientist"))
def start_run(body: NewRun, workspace: WorkspaceDep) -> dict[str, Any]:
    fields = body.model_dump(exclude={"host", "pid"})
    run_id = workspace.metadata.start_run(worker=_worker(body), **fields)
    return StartedRun(id=run_id).model_dump(mode="json")


@router.post("/runs/reopen", **role_route("scientist"))
def reopen_run(body: Reopen, workspace: WorkspaceDep) -> dict[str, Any]:
    found = workspace.metadata.reopen_run(
        body.pipeline, body.spec_hash, run_id=body.run_id, worker=_worker(body)
    )
    run = None if found is None else Reopened(id=found[0], attempts=found[1])
    return ReopenAnswer(run=run).model_dump(mode="json")


def _own(owner: str, caller: Identity, run_id: str) -> None:
    if owner != caller.user and RANK[caller.role] < RANK["admin"]:
        detail = f"run {run_id} belongs to {owner}; only they or an admin may change it"
        raise HTTPException(403, detail)


@router.post("/runs/{run_id}/fail", **role_route("scientist"))
def fail_run(run_id: str, body: Failure, workspace: WorkspaceDep, caller: Caller) -> dict[str, Any]:
    run = workspace.metadata.get_run(run_id)
    _own(run.user, caller, run.id)
    workspace.metadata.fail_run(run.id, body.error, body.started)
    return RunRef(id=run.id).model_dump(mode="json")


@router.post("/runs/{run_id}/heartbeat", **role_route("scientist"))
def heartbeat(run_id: str, workspace: WorkspaceDep, caller: Caller) -> dict[str, Any]:
    """Renew a running run's lease, by the server's clock (a client's may be off)."""
    run = workspace.metadata.get_run(run_id)
    _own(run.user, caller, run.id)
    return Beat(id=run.id, running=workspace.metadata.heartbeat(run.id)).model_dump(mode="json")


@router.post("/runs/{ref}/abandon", **role_route("scientist"))
def abandon_run(ref: str, body: AbandonBody, workspace: WorkspaceDep, caller: Caller) -> Any:
    run = workspace.metadata.get_run(ref)
    _own(run.owner or run.user, caller, run.id)
    return to_json(workspace.metadata.abandon_run(run.id, reason=body.reason, force=body.force))


@router.post("/runs/{run_id}/finish", **role_route("scientist"))
def finish_run(
    run_id: str, body: Results, workspace: WorkspaceDep, caller: Caller
) -> dict[str, Any]:
    run = workspace.metadata.get_run(run_id)
    _own(run.user, caller, run.id)
    register = None
    if body.registration is not None:  # the store refuses it if the artifact is not there
        sha256 = body.registration.artifact_sha256
        register = NewVersion(
            **body.registration.model_dump(), artifact_signature=workspace.signer.sign(sha256)
        )
    version = workspace.metadata.finish_run(run.id, **_results(body), register=register)
    return Finished(version=version).model_dump(mode="json")


def _results(body: Results) -> dict[str, Any]:
    return {
        "dataset_id": body.dataset_id,
        "candidates": body.candidates,
        "metrics": body.metrics,
        "best_candidate": body.best_candidate,
        "wall_seconds": body.wall_seconds,
        "outcome": body.outcome,
    }


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
) -> list[Any]:
    return list(to_json(workspace.metadata.list_runs(limit, owner=owner, tags=tag_filter(tag))))


@router.get("/search/runs", **role_route("viewer"))
def search_runs(
    workspace: WorkspaceDep,
    filter: str = Query("", max_length=20_000, description="e.g. metric.auc > 0.8 and tag.a = b"),
    text: str | None = Query(None, max_length=200),
    sort: str | None = Query(None, max_length=300, description="KEY[:asc|desc]"),
    page: int = Query(1, ge=1, le=2**31 - 1),
    page_size: int = Query(50, ge=1, le=MAX_PAGE_SIZE),
    column: list[str] = ColumnQuery,
) -> Any:
    """A page of runs (a bad filter or sort key is a 400 naming the character and token)."""
    query = RunQuery.of(
        filter, sort=sort, text=text, page=page, page_size=page_size, columns=column
    )
    return to_json(workspace.metadata.search_runs(query))


@router.get("/search/runs/fields", **role_route("viewer"))
def run_fields(workspace: WorkspaceDep, most: int = Query(200, ge=1, le=10_000)) -> Any:
    """The metric and param names runs recorded, and the newest scored run's metrics."""
    return to_json(workspace.metadata.run_fields(most))


@router.post("/runs/{ref}/tags", **role_route("scientist"))
def tag_run(ref: str, body: RunTags, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.metadata.tag_run(ref, body.tags))


@router.post("/runs/{ref}/owner", **role_route("scientist"))
def set_run_owner(ref: str, body: Owner, workspace: WorkspaceDep, caller: Caller) -> Any:
    run = workspace.metadata.get_run(ref)
    _own(run.owner or run.user, caller, run.id)
    return to_json(workspace.metadata.set_run_owner(run.id, body.owner))


@router.post("/runs/{ref}/notes", **role_route("scientist"))
def add_run_note(ref: str, body: NoteBody, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.metadata.add_run_note(ref, body.body, body.reply_to))


@router.get("/notes", **role_route("viewer"))
def notes(workspace: WorkspaceDep, kind: str, target: str) -> list[Any]:
    return list(to_json(workspace.metadata.notes(kind, target)))


@router.get("/runs/{ref}", **role_route("viewer"))
def get_run(ref: str, workspace: WorkspaceDep) -> Any:
    return to_json(workspace.metadata.get_run(ref))


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
    return Appended(appended=len(body.logs)).model_dump(mode="json")
