"""The tracking repositories of a server, over HTTP.

:class:`RemoteMetadata` implements the interfaces of :mod:`mlship.store.repositories` as the SQL
store does, and hands out the same frozen entities, rebuilt from the server's JSON with the
adapter the server wrote it with. Request bodies are the models of
:mod:`mlship.remote.tracking_api`, shared with the server. Who acts is the token's user: no call
names a user.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any
from urllib.parse import quote

from optuna.storages.journal import BaseJournalBackend
from pydantic import BaseModel

from mlship.remote import tracking_api as api
from mlship.remote.client import Client
from mlship.store.entities import (
    Dataset,
    IngestMarks,
    ModelVersion,
    Note,
    RegisteredModel,
    Run,
    parse,
    parse_list,
)
from mlship.store.liveness import Worker
from mlship.store.repositories import Journals, NewCandidate, NewMetric, NewVersion
from mlship.store.run_search import RunFields, RunPage, RunQuery


def part(value: str) -> str:
    """``value`` as one path segment (names may hold ``~``, ``:`` or ``/``)."""
    return quote(value, safe="")


def _json(body: BaseModel) -> Any:
    return body.model_dump(mode="json")


class RemoteMetadata:
    """Datasets, runs, the model catalogue and tuning journals of the server at ``client``."""

    def __init__(self, client: Client) -> None:
        self.client = client

    # -- datasets -------------------------------------------------------------------------------

    def get_or_add_dataset(
        self,
        data_hash: str,
        artifact_sha256: str,
        n_rows: int,
        columns: list[dict[str, Any]],
        sources: list[dict[str, Any]],
        **details: Any,
    ) -> tuple[Dataset, bool]:
        body = api.NewDatasetBody(
            data_hash=data_hash,
            artifact_sha256=artifact_sha256,
            n_rows=n_rows,
            columns=columns,
            sources=sources,
            details=details,
        )
        answer = api.AddedDataset.model_validate(self.client.post("/datasets", _json(body)))
        return answer.dataset, answer.created

    def cached_dataset(self, key: str) -> Dataset | None:
        found = self.client.get(f"/ingest-cache/{part(key)}")
        return api.CachedDataset.model_validate(found).dataset

    def remember_ingest(self, key: str, dataset_id: int) -> None:
        body = api.IngestEntry(dataset_id=dataset_id)
        self.client.put(f"/ingest-cache/{part(key)}", _json(body))

    def list_datasets(self, limit: int = 50) -> list[Dataset]:
        return parse_list(Dataset, self.client.get("/datasets", limit=limit))

    def get_dataset(self, ref: str) -> Dataset:
        return parse(Dataset, self.client.get(f"/datasets/{part(ref)}"))

    # -- ingest marks ---------------------------------------------------------------------------

    def ingest_marks(self, pipeline: str) -> IngestMarks | None:
        found = self.client.get(f"/ingest-marks/{part(pipeline)}")
        return api.FoundMarks.model_validate(found).marks

    def advance_marks(
        self, pipeline: str, *, serial: int, dataset_id: int, marks: dict[str, Any]
    ) -> IngestMarks:
        body = api.MarksMove(serial=serial, dataset_id=dataset_id, marks=marks)
        return parse(IngestMarks, self.client.post(f"/ingest-marks/{part(pipeline)}", _json(body)))

    # -- runs -----------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        pipeline: str,
        task: str,
        metric: str,
        spec_path: str,
        spec_hash: str,
        spec: dict[str, Any],
        git_commit: str | None,
        environment: dict[str, Any],
        executor: str | None = None,
        worker: Worker | None = None,
    ) -> str:
        body = api.NewRun(
            pipeline=pipeline,
            task=task,
            metric=metric,
            spec_path=spec_path,
            spec_hash=spec_hash,
            spec=spec,
            git_commit=git_commit,
            environment=environment,
            executor=executor,
            **_process(worker),
        )
        return api.StartedRun.model_validate(self.client.post("/runs", _json(body))).id

    def reopen_run(
        self,
        pipeline: str,
        spec_hash: str,
        *,
        run_id: str | None = None,
        worker: Worker | None = None,
    ) -> tuple[str, int] | None:
        body = api.Reopen(pipeline=pipeline, spec_hash=spec_hash, run_id=run_id, **_process(worker))
        found = api.ReopenAnswer.model_validate(self.client.post("/runs/reopen", _json(body)))
        return None if found.run is None else (found.run.id, found.run.attempts)

    def fail_run(self, run_id: str, error: str, started: datetime) -> None:
        body = api.Failure(error=error, started=started)
        self.client.post(f"/runs/{part(run_id)}/fail", _json(body))

    def heartbeat(self, run_id: str) -> bool:
        return api.Beat.model_validate(self.client.post(f"/runs/{part(run_id)}/heartbeat")).running

    def abandon_run(self, ref: str, *, reason: str, force: bool = False) -> Run:
        body = api.Abandon(reason=reason, force=force)
        return parse(Run, self.client.post(f"/runs/{part(ref)}/abandon", _json(body)))

    def finish_run(
        self,
        run_id: str,
        *,
        dataset_id: int,
        candidates: Sequence[NewCandidate],
        metrics: Sequence[NewMetric],
        best_candidate: str,
        wall_seconds: float,
        outcome: dict[str, Any] | None = None,
        register: NewVersion | None = None,
    ) -> ModelVersion | None:
        registration = None
        if register is not None:  # the server signs with its own key
            fields = {k: v for k, v in asdict(register).items() if k != "artifact_signature"}
            registration = api.Registration(**fields)
        body = api.Results(
            dataset_id=dataset_id,
            candidates=list(candidates),
            metrics=list(metrics),
            best_candidate=best_candidate,
            wall_seconds=wall_seconds,
            outcome=outcome,
            registration=registration,
        )
        found = self.client.post(f"/runs/{part(run_id)}/finish", _json(body))
        return api.Finished.model_validate(found).version

    def list_runs(
        self, limit: int = 50, owner: str | None = None, tags: dict[str, str] | None = None
    ) -> list[Run]:
        found = self.client.get("/runs", limit=limit, owner=owner, tag=_tag_query(tags))
        return parse_list(Run, found)

    def search_runs(self, query: RunQuery) -> RunPage:
        found = self.client.get(
            "/search/runs",
            filter=query.filter,
            text=query.text,
            sort=str(query.sort),
            page=query.page,
            page_size=query.page_size,
            column=list(query.columns) or None,
        )
        return parse(RunPage, found)

    def run_fields(self, most: int = 200) -> RunFields:
        return parse(RunFields, self.client.get("/search/runs/fields", most=most))

    def get_run(self, run_id: str) -> Run:
        return parse(Run, self.client.get(f"/runs/{part(run_id)}"))

    def tag_run(self, run_id: str, tags: dict[str, str | None]) -> Run:
        body = api.RunTags(tags=tags)
        return parse(Run, self.client.post(f"/runs/{part(run_id)}/tags", _json(body)))

    def set_run_owner(self, run_id: str, owner: str) -> Run:
        body = api.Owner(owner=owner)
        return parse(Run, self.client.post(f"/runs/{part(run_id)}/owner", _json(body)))

    def add_run_note(self, run_id: str, body: str, reply_to: int | None = None) -> Note:
        note = api.NoteBody(body=body, reply_to=reply_to)
        return parse(Note, self.client.post(f"/runs/{part(run_id)}/notes", _json(note)))

    def notes(self, target_kind: str, target_id: str) -> list[Note]:
        return parse_list(Note, self.client.get("/notes", kind=target_kind, target=target_id))

    # -- tuning journals ------------------------------------------------------------------------

    def read_journal(self, run_id: str, start: int = 0) -> list[dict[str, Any]]:
        return list(self.client.get(f"/runs/{part(run_id)}/journal", **{"from": start}))

    def append_journal(self, run_id: str, entries: Sequence[dict[str, Any]]) -> None:
        body = api.Journal(logs=list(entries))
        self.client.post(f"/runs/{part(run_id)}/journal", _json(body))

    # -- models ---------------------------------------------------------------------------------

    def list_models(
        self, owner: str | None = None, tags: dict[str, str] | None = None
    ) -> list[RegisteredModel]:
        found = self.client.get("/models", owner=owner, tag=_tag_query(tags))
        return parse_list(RegisteredModel, found)

    def get_version(self, name: str, version: int | None = None) -> ModelVersion:
        number = "latest" if version is None else str(version)
        return parse(ModelVersion, self.client.get(f"/models/{part(name)}/versions/{number}"))


def _process(worker: Worker | None) -> dict[str, Any]:
    return {} if worker is None else {"host": worker.host, "pid": worker.pid}


def _tag_query(tags: dict[str, str] | None) -> list[str] | None:
    return None if not tags else [f"{key}={value}" for key, value in tags.items()]


class RemoteJournal(BaseJournalBackend):
    """A run's tuning journal on the server: Optuna's journal storage over HTTP, so a client
    tunes (and resumes, and shows trials) without a database connection of its own."""

    def __init__(self, journals: Journals, run_id: str) -> None:
        self.journals = journals
        self.run_id = run_id

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        return self.journals.read_journal(self.run_id, log_number_from)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self.journals.append_journal(self.run_id, logs)
