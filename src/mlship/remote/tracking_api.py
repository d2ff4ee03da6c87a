"""The bodies of the tracking routes, declared once for both ends.

The server (:mod:`mlship.server.tracking`) validates requests with these models and a client
(:mod:`mlship.remote.metadata`) builds them and posts ``model_dump(mode="json")``, so a field
cannot be renamed on one side only. Answers are entities (:mod:`mlship.store.entities`), written
and read with the same pydantic adapter. No body names who acts: that is the token's user.

Limits are the server's guard against oversized input; what the repositories refuse themselves
(an empty note, a blank owner, an unknown note target) is left to them, so the message is the same
whichever backend a user has.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlship.store.entities import Dataset, IngestMarks, ModelVersion
from mlship.store.repositories import NewCandidate, NewMetric

SHA256 = r"^[0-9a-f]{64}$"


class Body(BaseModel):
    """A request body: unknown fields are refused, not dropped."""

    model_config = ConfigDict(extra="forbid")


class NewDatasetBody(Body):
    data_hash: str = Field(pattern=SHA256)
    artifact_sha256: str = Field(pattern=SHA256)
    n_rows: int = Field(ge=0)
    columns: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    details: dict[str, Any] = Field(default_factory=dict)


class AddedDataset(BaseModel):
    dataset: Dataset
    created: bool


class CachedDataset(BaseModel):
    dataset: Dataset | None


class IngestEntry(Body):
    dataset_id: int = Field(ge=1)


class FoundMarks(BaseModel):
    marks: IngestMarks | None


class MarksMove(Body):
    """Move a pipeline's marks from ``serial`` (see ``Marks.advance_marks``)."""

    serial: int = Field(ge=0)
    dataset_id: int = Field(ge=1)
    marks: dict[str, Any]


class Process(Body):
    """The process a client says works on a run: its host and pid together, or neither."""

    host: str | None = Field(None, min_length=1, max_length=255)
    pid: int | None = Field(None, ge=1, le=2**31 - 1)


class NewRun(Process):
    pipeline: str = Field(min_length=1, max_length=200)
    task: str = Field(max_length=40)
    metric: str = Field(max_length=60)
    spec_path: str
    spec_hash: str = Field(max_length=64)
    spec: dict[str, Any]
    git_commit: str | None = Field(None, max_length=64)
    environment: dict[str, Any]
    executor: str | None = Field(None, max_length=200)


class StartedRun(BaseModel):
    id: str


class Reopen(Process):
    pipeline: str = Field(min_length=1, max_length=200)
    spec_hash: str = Field(max_length=64)
    run_id: str | None = Field(default=None, min_length=1, max_length=64)


class Reopened(BaseModel):
    id: str
    attempts: int


class ReopenAnswer(BaseModel):
    run: Reopened | None


class Abandon(Body):
    reason: str = Field("", max_length=2000)
    force: bool = False


class Failure(Body):
    error: str
    started: datetime


class RunRef(BaseModel):
    id: str


class Beat(BaseModel):
    id: str
    running: bool


class Registration(Body):
    """A version to register; the server signs its artifact with its own key."""

    name: str = Field(min_length=1, max_length=200)
    dataset_hash: str = Field(max_length=64)
    estimator: str = Field(max_length=300)
    params: dict[str, Any]
    artifact_sha256: str = Field(pattern=SHA256)
    artifact_size: int = Field(ge=0)
    signature: dict[str, Any]
    metrics: dict[str, Any]


class Results(Body):
    dataset_id: int = Field(ge=1)
    candidates: list[NewCandidate] = Field(max_length=10_000)
    metrics: list[NewMetric] = Field(max_length=100_000)
    best_candidate: str = Field(max_length=200)
    wall_seconds: float
    outcome: dict[str, Any] | None = None
    registration: Registration | None = None


class Finished(BaseModel):
    version: ModelVersion | None


class RunTags(Body):
    tags: dict[str, str | None]


class Owner(Body):
    owner: str = Field(max_length=200)


class NoteBody(Body):
    body: str = Field(max_length=100_000)
    reply_to: int | None = Field(None, ge=1)
    """The note of the same run this one answers."""


class Journal(Body):
    logs: list[dict[str, Any]] = Field(max_length=10_000)


class Appended(BaseModel):
    appended: int
