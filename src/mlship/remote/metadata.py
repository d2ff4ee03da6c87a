"""The metadata store of a tracking server, with the local store's methods and results.

:class:`RemoteMetadata` overrides every public method of
:class:`~mlship.store.metadata.MetadataStore` (a test checks that none is left to the base class)
and rebuilds the same ORM rows from the server's records. Who acts is the token's user: the
``user`` a caller passes is ignored by the server.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any
from urllib.parse import quote

from optuna.storages.journal import BaseJournalBackend
from sqlalchemy.orm import Session

from mlship.errors import MlshipError
from mlship.remote.client import Client
from mlship.store.liveness import Worker
from mlship.store.metadata import MetadataStore, NewVersion
from mlship.store.records import from_record, to_record
from mlship.store.tables import (
    Candidate,
    Dataset,
    Metric,
    ModelVersion,
    Note,
    RegisteredModel,
    Run,
)


def part(value: str) -> str:
    """``value`` as one path segment (names may hold ``~``, ``:`` or ``/``)."""
    return quote(value, safe="")


class RemoteMetadata(MetadataStore):
    def __init__(self, client: Client) -> None:  # the base's engine and sessions are not used
        self.client = client

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        raise MlshipError(
            f"this needs direct database access, which a client of {self.client.url} does not "
            "have; run it on the server's host"
        )
        yield  # pragma: no cover

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
        body = {
            "data_hash": data_hash,
            "artifact_sha256": artifact_sha256,
            "n_rows": n_rows,
            "columns": columns,
            "sources": sources,
            "details": details,
        }
        answer = self.client.post("/datasets", body)
        return from_record(Dataset, answer["dataset"]), bool(answer["created"])

    def cached_dataset(self, key: str) -> Dataset | None:
        found = self.client.get(f"/ingest-cache/{part(key)}")["dataset"]
        return None if found is None else from_record(Dataset, found)

    def remember_ingest(self, key: str, dataset_id: int) -> None:
        self.client.put(f"/ingest-cache/{part(key)}", {"dataset_id": dataset_id})

    def list_datasets(self, limit: int = 50) -> list[Dataset]:
        return [from_record(Dataset, r) for r in self.client.get("/datasets", limit=limit)]

    def get_dataset(self, ref: str) -> Dataset:
        return from_record(Dataset, self.client.get(f"/datasets/{part(ref)}"))

    # -- runs -----------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        pipeline: str,
        user: str,
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
        body = {
            "pipeline": pipeline,
            "task": task,
            "metric": metric,
            "spec_path": spec_path,
            "spec_hash": spec_hash,
            "spec": spec,
            "git_commit": git_commit,
            "environment": environment,
            "executor": executor,
            **_process(worker),
        }
        return str(self.client.post("/runs", body)["id"])

    def reopen_run(
        self,
        pipeline: str,
        spec_hash: str,
        *,
        user: str | None = None,
        worker: Worker | None = None,
    ) -> tuple[str, int] | None:
        body = {"pipeline": pipeline, "spec_hash": spec_hash, **_process(worker)}
        found = self.client.post("/runs/reopen", body)
        run = found["run"]
        return None if run is None else (str(run["id"]), int(run["attempts"]))

    def fail_run(self, run_id: str, error: str, started: datetime) -> None:
        self.client.post(
            f"/runs/{part(run_id)}/fail", {"error": error, "started": started.isoformat()}
        )

    def heartbeat(self, run_id: str) -> bool:
        return bool(self.client.post(f"/runs/{part(run_id)}/heartbeat")["running"])

    def abandon_run(self, ref: str, *, reason: str, user: str, force: bool = False) -> Run:
        body = {"reason": reason, "force": force}
        return from_record(Run, self.client.post(f"/runs/{part(ref)}/abandon", body))

    def finish_run(
        self,
        run_id: str,
        *,
        dataset_id: int,
        candidates: Sequence[Candidate],
        metrics: Sequence[Metric],
        best_candidate: str,
        wall_seconds: float,
        outcome: dict[str, Any] | None = None,
        register: NewVersion | None = None,
    ) -> ModelVersion | None:
        registration = None
        if register is not None:  # the server signs, and names the caller as the creator
            registration = {
                k: v
                for k, v in asdict(register).items()
                if k not in ("artifact_signature", "created_by")
            }
        body = {
            "dataset_id": dataset_id,
            "candidates": [to_record(c, depth=0) for c in candidates],
            "metrics": [to_record(m, depth=0) for m in metrics],
            "best_candidate": best_candidate,
            "wall_seconds": wall_seconds,
            "outcome": outcome,
            "registration": registration,
        }
        found = self.client.post(f"/runs/{part(run_id)}/finish", body)["version"]
        return None if found is None else from_record(ModelVersion, found)

    def list_runs(
        self, limit: int = 50, owner: str | None = None, tags: dict[str, str] | None = None
    ) -> list[Run]:
        found = self.client.get("/runs", limit=limit, owner=owner, tag=_tag_query(tags))
        return [from_record(Run, r) for r in found]

    def tag_run(self, run_id: str, tags: dict[str, str | None]) -> Run:
        return from_record(Run, self.client.post(f"/runs/{part(run_id)}/tags", {"tags": tags}))

    def set_run_owner(self, run_id: str, owner: str) -> Run:
        return from_record(Run, self.client.post(f"/runs/{part(run_id)}/owner", {"owner": owner}))

    def add_run_note(self, run_id: str, body: str, author: str) -> Note:
        return from_record(Note, self.client.post(f"/runs/{part(run_id)}/notes", {"body": body}))

    def notes(self, target_kind: str, target_id: str) -> list[Note]:
        found = self.client.get("/notes", kind=target_kind, target=target_id)
        return [from_record(Note, r) for r in found]

    def get_run(self, run_id: str) -> Run:
        return from_record(Run, self.client.get(f"/runs/{part(run_id)}"))

    def read_journal(self, run_id: str, start: int = 0) -> list[dict[str, Any]]:
        return list(self.client.get(f"/runs/{part(run_id)}/journal", **{"from": start}))

    def append_journal(self, run_id: str, entries: Sequence[dict[str, Any]]) -> None:
        self.client.post(f"/runs/{part(run_id)}/journal", {"logs": list(entries)})

    # -- models ---------------------------------------------------------------------------------

    def list_models(
        self, owner: str | None = None, tags: dict[str, str] | None = None
    ) -> list[RegisteredModel]:
        found = self.client.get("/models", owner=owner, tag=_tag_query(tags))
        return [from_record(RegisteredModel, r) for r in found]

    def get_version(self, name: str, version: int | None = None) -> ModelVersion:
        number = "latest" if version is None else str(version)
        return from_record(ModelVersion, self.client.get(f"/models/{part(name)}/versions/{number}"))


def _process(worker: Worker | None) -> dict[str, Any]:
    return {} if worker is None else {"host": worker.host, "pid": worker.pid}


def _tag_query(tags: dict[str, str] | None) -> list[str] | None:
    return None if not tags else [f"{key}={value}" for key, value in tags.items()]


class RemoteJournal(BaseJournalBackend):
    """A run's tuning journal on the server: Optuna's journal storage over HTTP, so a client
    tunes (and resumes, and shows trials) without a database connection of its own."""

    def __init__(self, metadata: MetadataStore, run_id: str) -> None:
        self.metadata = metadata
        self.run_id = run_id

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        return self.metadata.read_journal(self.run_id, log_number_from)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self.metadata.append_journal(self.run_id, logs)
