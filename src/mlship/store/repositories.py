"""What the tracking side of the metadata store offers, as interfaces: datasets, runs, the model
catalogue and tuning journals.

Two classes implement them: the SQL store (:class:`~mlship.store.metadata.MetadataStore`) and a
tracking server's client (:class:`~mlship.remote.metadata.RemoteMetadata`). Domain code asks for
the narrowest interface it needs (a function that only reads runs takes :class:`Runs`), so it
cannot tell which one it holds, and one behavioural suite runs against both. Everything handed
out is a frozen entity of :mod:`mlship.store.entities`, never an ORM row.

Nobody says who they are in a call: the SQL store acts as the user it was opened for (or the
request's, on a server), a client as its token's user. A name passed along could be anyone's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from mlship.errors import MlshipError
from mlship.store.entities import Dataset, IngestMarks, ModelVersion, Note, RegisteredModel, Run
from mlship.store.liveness import Worker
from mlship.store.run_search import RunFields, RunPage, RunQuery


@dataclass(frozen=True, kw_only=True)
class NewCandidate:
    """One estimator a finishing run tried; its run and id are the store's to assign."""

    name: str
    estimator: str
    params: dict[str, Any]
    cv_mean: float
    cv_std: float
    fit_seconds: float
    rank: int
    selected: bool = False
    train_mean: float | None = None
    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None
    cost: float | None = None
    predict_ms: float | None = None
    trials: int = 0
    tuning: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class NewMetric:
    """One figure of a finishing run: a candidate's (or the selected model's) score on a split."""

    split: str
    name: str
    value: float
    candidate: str | None = None


@dataclass(frozen=True, kw_only=True)
class NewVersion:
    """What registering a model version needs; the store assigns the number, and its acting user
    is the version's creator."""

    name: str
    dataset_hash: str
    estimator: str
    params: dict[str, Any]
    artifact_sha256: str
    artifact_size: int
    artifact_signature: str
    """The artifact's signature; a tracking server signs with its own key and ignores this."""
    signature: dict[str, Any]
    metrics: dict[str, Any]


RUN_OUTCOME = frozenset({"cpu_seconds", "peak_memory_bytes", "cost", "details", "report_sha256"})
"""The run totals ``finish_run``'s ``outcome`` may set."""


class Datasets(Protocol):
    """Validated tables, named by the hash of their content."""

    def get_or_add_dataset(
        self,
        data_hash: str,
        artifact_sha256: str,
        n_rows: int,
        columns: list[dict[str, Any]],
        sources: list[dict[str, Any]],
        **details: Any,
    ) -> tuple[Dataset, bool]:
        """The dataset with this content hash, recorded first if new (then True). Its artifact
        must already be in the artifact store (:class:`~mlship.errors.NotFoundError` if not).
        ``details`` fills the optional columns (pipeline, spec_hash, code_version, validation,
        n_quarantined, quarantine_sha256, profile_sha256)."""
        ...

    def cached_dataset(self, key: str) -> Dataset | None:
        """The dataset an earlier ingest with the same inputs produced, if any."""
        ...

    def remember_ingest(self, key: str, dataset_id: int) -> None:
        """Remember that ingesting the inputs ``key`` stands for gave ``dataset_id``."""
        ...

    def list_datasets(self, limit: int = 50) -> list[Dataset]:
        """Datasets newest first."""
        ...

    def get_dataset(self, ref: str) -> Dataset:
        """A dataset by its content hash, an unambiguous prefix of it, or ``PIPELINE[~N]``."""
        ...


class MarksMoved(MlshipError):
    """The marks of a pipeline moved between reading them and moving them: another ingest of it
    committed first."""


class Marks(Protocol):
    """The high-water marks of incremental pipelines: where their growing sources were read up
    to, and the dataset that holds what was read. The marks of a pipeline move only once its new
    dataset is stored, so a crash in between reads the same rows again, never skips them."""

    def ingest_marks(self, pipeline: str) -> IngestMarks | None:
        """The pipeline's marks, or None before its first incremental ingest."""
        ...

    def advance_marks(
        self, pipeline: str, *, serial: int, dataset_id: int, marks: dict[str, Any]
    ) -> IngestMarks:
        """Move the pipeline's marks to ``marks``, held by ``dataset_id``, if they are still at
        ``serial`` (0: none yet); the new marks have ``serial + 1``. Asked again with the same
        values after they moved (a retry of a move whose answer was lost), it answers the same;
        moved by anyone else, :class:`MarksMoved`. An unknown dataset is
        :class:`~mlship.errors.NotFoundError`."""
        ...


class Runs(Protocol):
    """Training runs: their life from start to finish, and what people add to them."""

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
        """Record a new ``running`` run of the acting user; returns its id."""
        ...

    def reopen_run(
        self,
        pipeline: str,
        spec_hash: str,
        *,
        run_id: str | None = None,
        worker: Worker | None = None,
    ) -> tuple[str, int] | None:
        """Reopen the acting user's newest unfinished run of ``pipeline`` made from the same
        spec: its id and attempt number, or None when there is nothing to resume. With
        ``run_id``, that run, or :class:`~mlship.store.liveness.RunStateError` saying why not."""
        ...

    def heartbeat(self, run_id: str) -> bool:
        """Renew a running run's heartbeat; False when it is not running any more."""
        ...

    def fail_run(self, run_id: str, error: str, started: datetime) -> None:
        """Record that a run stopped with ``error`` (a succeeded run keeps its results)."""
        ...

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
        """Record a run's results, and register its model, all or nothing."""
        ...

    def abandon_run(self, ref: str, *, reason: str, force: bool = False) -> Run:
        """Close a ``running`` run whose process is gone."""
        ...

    def list_runs(
        self, limit: int = 50, owner: str | None = None, tags: dict[str, str] | None = None
    ) -> list[Run]:
        """Runs newest first, filtered by owner and tags when given."""
        ...

    def search_runs(self, query: RunQuery) -> RunPage:
        """One page of the runs ``query`` finds (filtered, sorted and paginated by the store),
        with how many it finds in all; a filter the store cannot apply raises
        :class:`~mlship.store.run_search.FilterError`."""
        ...

    def run_fields(self, most: int = 200) -> RunFields:
        """The metric and param names runs recorded (at most ``most`` of each, sorted), and the
        metrics of the newest run that recorded any: what a list of runs offers to filter, sort
        and show by."""
        ...

    def get_run(self, run_id: str) -> Run:
        """A run by id, unambiguous id prefix, or pipeline name (its newest run)."""
        ...

    def tag_run(self, run_id: str, tags: dict[str, str | None]) -> Run:
        """Set (or, with None, remove) tags of a run."""
        ...

    def set_run_owner(self, run_id: str, owner: str) -> Run:
        """Hand a run over to ``owner``."""
        ...

    def add_run_note(self, run_id: str, body: str, reply_to: int | None = None) -> Note:
        """Append a markdown note of the acting user to a run, in answer to the run's note
        ``reply_to`` when given (threads)."""
        ...

    def notes(self, target_kind: str, target_id: str) -> list[Note]:
        """The notes on a run (``run``, full id) or a version (``version``, row id), oldest
        first."""
        ...


class Catalogue(Protocol):
    """What the model registry holds, read only: its models and their versions."""

    def list_models(
        self, owner: str | None = None, tags: dict[str, str] | None = None
    ) -> list[RegisteredModel]:
        """Registered models by name, each with its versions."""
        ...

    def get_version(self, name: str, version: int | None = None) -> ModelVersion:
        """A model version by number, or the newest one when ``version`` is None."""
        ...


class Journals(Protocol):
    """The tuning journals of runs (Optuna's journal format), shared by a run's workers."""

    def read_journal(self, run_id: str, start: int = 0) -> list[dict[str, Any]]:
        """Entries ``start`` onwards, in the order they were appended."""
        ...

    def append_journal(self, run_id: str, entries: Sequence[dict[str, Any]]) -> None:
        """Append ``entries``, in order, after everything already there."""
        ...


class Tracking(Datasets, Marks, Runs, Catalogue, Journals, Protocol):
    """All of the above: what one backend (SQL or a tracking server) provides."""
