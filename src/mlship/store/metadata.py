"""The metadata repository in SQL: the only place that writes or reads rows.

Every method runs in one transaction. A failure inside it rolls everything back, so a crash never
leaves half a record: either a run's results and its model version are all there, or none are.
What a method returns is a frozen entity (:mod:`mlship.store.entities`) built before its
transaction ends, so no caller ever holds a row, and :class:`MetadataStore` implements the
interfaces of :mod:`mlship.store.repositories` exactly as a tracking server's client does.

On PostgreSQL a method whose connection was lost (the primary died and a standby is taking over)
runs again on a fresh connection (:mod:`mlship.store.retry`): ``@_retried`` marks the methods
that give the same result when run twice (reads; adds that look for what they would add or use
a key chosen before the first attempt), which are run again even when the loss came during the
commit; ``@_retried_before_commit`` the others, run again only when the loss came before it.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import ColumnElement, Engine, exists, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from mlship.errors import MlshipError, NotFoundError
from mlship.store import entities
from mlship.store.audit import ACTOR, Actor, local_actor
from mlship.store.audit import install as install_audit
from mlship.store.entities import from_row
from mlship.store.liveness import ABANDONED, FINISHED, RunStateError, Worker, judge, shown
from mlship.store.marks import move_marks, read_marks
from mlship.store.repositories import (
    RUN_OUTCOME,
    MarksMoved,
    NewCandidate,
    NewMetric,
    NewVersion,
)
from mlship.store.retry import (
    NO_RETRY,
    RetryPolicy,
    commit_in_doubt,
    lost_before_commit,
    run_retrying,
)
from mlship.store.run_queries import run_fields, search
from mlship.store.run_search import NamedValue, RunFields, RunPage, RunQuery, run_values
from mlship.store.shared_transaction import SHARED, SharedTransaction
from mlship.store.tables import (
    Candidate,
    Dataset,
    IngestCache,
    JournalEntry,
    Metric,
    ModelEvent,
    ModelVersion,
    Note,
    RegisteredModel,
    Run,
    RunValue,
    as_utc,
    utcnow,
)

__all__ = ["NOTE_KINDS", "MetadataStore", "NewVersion", "note_text"]

NOTE_KINDS = ("run", "version", "request")
"""What a note can be written on."""

P = ParamSpec("P")
T = TypeVar("T")


def _retrying(
    idempotent: bool,
) -> Callable[
    [Callable[Concatenate[MetadataStore, P], T]], Callable[Concatenate[MetadataStore, P], T]
]:
    def decorate(
        method: Callable[Concatenate[MetadataStore, P], T],
    ) -> Callable[Concatenate[MetadataStore, P], T]:
        @functools.wraps(method)
        def run(self: MetadataStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
            return self.retrying(lambda: method(self, *args, **kwargs), idempotent=idempotent)

        return run

    return decorate


_retried = _retrying(idempotent=True)
"""Run the method again after a lost connection, even one lost while committing."""
_retried_before_commit = _retrying(idempotent=False)
"""Run the method again after a connection lost before its commit was sent."""


class MetadataStore:
    """Runs, datasets and model versions in one SQL database."""

    def __init__(
        self,
        engine: Engine,
        actor: Actor | None = None,
        *,
        holds: Callable[[str], bool] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        """``actor`` is who acts when no request sets one (see :mod:`mlship.store.audit`): the
        user runs, notes and versions are recorded for, and the audit log's. ``holds`` tells
        whether the artifact store has an artifact: a dataset or version whose artifact it does
        not hold is refused (a workspace always gives it; a bare store over an engine, for
        maintenance, checks nothing). ``retry`` bounds how long work is tried again after the
        server went away (never, by default)."""
        self.engine = engine
        self.retry = retry or NO_RETRY
        self.shown_url = engine.url.render_as_string(hide_password=True)
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._actor = actor or local_actor("unknown")
        self._holds = holds
        install_audit(self._sessions, self._actor)

    def retrying(self, work: Callable[[], T], *, idempotent: bool) -> T:
        """Run ``work``, a unit of work in this store's transactions, again on a fresh
        connection after the server went away (see the module docstring): repositories over
        this store use it for their own methods. Inside a request's shared transaction the work
        runs once: a savepoint cannot be run again alone, and the client retries the whole
        request under its idempotency key."""
        shared = SHARED.get()
        if shared is not None and shared.sessions is self._sessions:
            return work()
        return run_retrying(work, policy=self.retry, database=self.shown_url, idempotent=idempotent)

    @property
    def acting_user(self) -> str:
        """Who the current change is made by: the request's user on a server, else the store's."""
        return (ACTOR.get() or self._actor).user

    def _tagged(self, tags: Any, key: str, value: str) -> ColumnElement[bool]:
        """Whether the JSON object ``tags`` maps ``key`` to the string ``value``, for any key.

        SQLite's JSON paths cannot name every key (one with a double quote, a backslash or a
        non-ASCII letter is not found), so there the object's entries are searched instead;
        PostgreSQL takes the key as a bound parameter.
        """
        if self.engine.dialect.name != "sqlite":
            found: ColumnElement[bool] = tags[key].as_string() == value
            return found
        entries = func.json_each(tags).table_valued("key", "value", "type")
        match = (entries.c.key == key) & (entries.c.value == value) & (entries.c.type == "text")
        return exists(select(1).select_from(entries).where(match))

    def _require_artifact(self, sha256: str) -> None:
        if self._holds is not None and not self._holds(sha256):
            raise NotFoundError(
                f"artifact {sha256} is not in the artifact store; store it before recording "
                "what refers to it"
            )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed at the end of the block or rolled back on error.

        A connection lost during the commit raises
        :class:`~mlship.store.retry.CommitInDoubt`: the caller cannot know whether the change
        was kept, and must not take it for a failure that left nothing behind. One lost before
        raises :class:`~mlship.store.retry.DatabaseUnavailable`, saying nothing was saved,
        unless a retry is running the work (then the retry sees the driver's error).

        Inside a request's :class:`SharedTransaction` of this store, the block is a savepoint of
        it instead: rolled back alone on error, committed only with the whole request."""
        shared = SHARED.get()
        if shared is not None and shared.sessions is self._sessions:
            with shared.session.begin_nested():
                yield shared.session
            return
        with self._sessions() as session:
            session.begin()
            try:
                yield session
            except DBAPIError as exc:
                session.rollback()
                lost = lost_before_commit(self.shown_url, exc)
                if lost is None:
                    raise
                raise lost from exc
            except BaseException:
                session.rollback()
                raise
            try:
                session.commit()
            except DBAPIError as exc:
                session.rollback()
                in_doubt = commit_in_doubt(self.shown_url, exc)
                if in_doubt is None:
                    raise
                raise in_doubt from exc

    def shared_transaction(self) -> SharedTransaction:
        """A transaction that the work of every repository over this store joins while it is
        current (:func:`~mlship.store.shared_transaction.sharing`)."""
        return SharedTransaction(self._sessions)

    # -- datasets -------------------------------------------------------------------------

    @_retried
    def get_or_add_dataset(
        self,
        /,
        data_hash: str,
        artifact_sha256: str,
        n_rows: int,
        columns: list[dict[str, Any]],
        sources: list[dict[str, Any]],
        **details: Any,
    ) -> tuple[entities.Dataset, bool]:
        """Return the dataset with this content hash, recording it first if it is new.

        ``details`` fills the optional columns (pipeline, spec_hash, code_version, validation,
        n_quarantined, quarantine_sha256, profile_sha256); an unknown key is refused.
        """
        unknown = sorted(set(details) - _DATASET_DETAILS)
        if unknown:
            raise MlshipError(
                f"unknown dataset field {unknown[0]!r}; expected one of "
                f"{', '.join(sorted(_DATASET_DETAILS))}"
            )
        with self.transaction() as session:
            found = session.scalar(select(Dataset).where(Dataset.data_hash == data_hash))
            if found is not None:
                return from_row(entities.Dataset, found), False
            self._require_artifact(artifact_sha256)
            dataset = Dataset(
                data_hash=data_hash,
                artifact_sha256=artifact_sha256,
                n_rows=n_rows,
                n_columns=len(columns),
                columns=columns,
                sources=sources,
                **details,
            )
            session.add(dataset)
            session.flush()
            return from_row(entities.Dataset, dataset), True

    @_retried
    def cached_dataset(self, key: str) -> entities.Dataset | None:
        """The dataset an earlier ingest with the same inputs produced, if any."""
        with self.transaction() as session:
            entry = session.get(IngestCache, key[:_KEY_CHARS])
            found = None if entry is None else session.get(Dataset, entry.dataset_id)
            return None if found is None else from_row(entities.Dataset, found)

    @_retried
    def remember_ingest(self, key: str, dataset_id: int) -> None:
        """Remember that the inputs ``key`` stands for gave ``dataset_id`` (the first answer
        stays: remembering again changes nothing)."""
        key = key[:_KEY_CHARS]
        with self.transaction() as session:
            if session.get(Dataset, dataset_id) is None:
                raise NotFoundError(f"no dataset with id {dataset_id}")
            if session.get(IngestCache, key) is None:
                session.add(IngestCache(key=key, dataset_id=dataset_id))

    @_retried
    def list_datasets(self, limit: int = 50) -> list[entities.Dataset]:
        with self.transaction() as session:
            query = select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id.desc())
            return [from_row(entities.Dataset, d) for d in session.scalars(query.limit(limit))]

    @_retried
    def get_dataset(self, ref: str) -> entities.Dataset:
        """A dataset by its content hash, an unambiguous prefix of it, or ``PIPELINE[~N]``.

        ``churn`` is the newest dataset of pipeline churn and ``churn~1`` the one before it, so
        the usual comparison needs no hashes: ``mlship data diff churn~1 churn``.
        """
        name, _, back = ref.partition("~")
        with self.transaction() as session:
            if not back or back.isdigit():
                by_pipeline = (
                    select(Dataset)
                    .where(Dataset.pipeline == name)
                    .order_by(Dataset.created_at.desc(), Dataset.id.desc())
                    .offset(int(back or 0))
                    .limit(1)
                )
                newest = session.scalars(by_pipeline).first()
                if newest is not None:
                    return from_row(entities.Dataset, newest)
            query = select(Dataset).where(
                Dataset.data_hash.startswith(ref.lower(), autoescape=True)
            )
            found = [from_row(entities.Dataset, d) for d in session.scalars(query.limit(2))]
        if not found:
            raise NotFoundError(
                f"no dataset {ref!r} (a hash prefix, or a pipeline name with an optional ~N); "
                "`mlship data list` shows them"
            )
        if len(found) > 1:
            raise MlshipError(f"dataset hash prefix {ref!r} is ambiguous; give more characters")
        return found[0]

    # -- ingest marks ---------------------------------------------------------------------

    @_retried
    def ingest_marks(self, pipeline: str) -> entities.IngestMarks | None:
        """The pipeline's high-water marks, or None before its first incremental ingest."""
        with self.transaction() as session:
            return read_marks(session, pipeline)

    @_retried
    def advance_marks(
        self, pipeline: str, *, serial: int, dataset_id: int, marks: dict[str, Any]
    ) -> entities.IngestMarks:
        """Move the pipeline's marks if they are still at ``serial`` (see
        :mod:`mlship.store.marks`); running it again after a lost commit answers the same."""
        try:
            with self.transaction() as session:
                return move_marks(
                    session,
                    storable(pipeline, "a pipeline's name"),
                    serial=serial,
                    dataset_id=dataset_id,
                    marks=marks,
                    user=self.acting_user,
                )
        except DBIntegrityError:  # another ingest recorded the first marks at the same time
            raise MarksMoved(
                f"the marks of {pipeline} were recorded by another ingest while this one ran; "
                "run this one again to read what is new since"
            ) from None

    # -- runs -----------------------------------------------------------------------------

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
        """Record a new ``running`` run of the acting user; ``worker`` is the process that works
        on it (None when not known: then only its heartbeat tells whether it is alive)."""
        run_id = uuid.uuid4().hex  # chosen once: an attempt after a lost commit finds its run
        user = self.acting_user
        self._add_run(
            {
                "id": run_id,
                "pipeline": pipeline,
                "status": "running",
                "user": user,
                "owner": user,
                "task": task,
                "metric": metric,
                "spec_path": spec_path,
                "spec_hash": spec_hash,
                "spec": spec,
                "git_commit": git_commit,
                "environment": environment,
                "executor": executor,
                "host": worker.host if worker else None,
                "pid": worker.pid if worker else None,
            }
        )
        return run_id

    @_retried
    def _add_run(self, fields: dict[str, Any]) -> None:
        """Add the run ``fields`` describe unless a run with its id is there already."""
        with self.transaction() as session:
            if session.get(Run, fields["id"]) is None:
                session.add(Run(**fields, heartbeat_at=utcnow()))

    @_retried_before_commit
    def reopen_run(
        self,
        pipeline: str,
        spec_hash: str,
        *,
        run_id: str | None = None,
        worker: Worker | None = None,
    ) -> tuple[str, int] | None:
        """Reopen the newest run of ``pipeline`` if it did not finish, has the same spec and was
        started by the acting user (a shared store resumes only your own).
        ``worker`` is the process that takes it over.

        Returns the run id and its attempt number, or None when there is nothing to resume (the
        newest run succeeded, or was made from a different spec). A run whose process is still
        alive is refused (:class:`RunStateError`): two processes would write the same run.

        With ``run_id`` (an id or unambiguous prefix) that run is reopened instead, whether or
        not it is the newest; as it was asked for by name, a run that cannot be resumed is an
        error that says why, never a silent fresh start.
        """
        with self.transaction() as session:
            newest: Run | None
            if run_id is not None:
                newest = _find_run(session, run_id)
                _resumable(newest, pipeline, spec_hash, self.acting_user)
            else:
                newest = session.scalar(
                    select(Run)
                    .where(Run.pipeline == pipeline)
                    .order_by(Run.started_at.desc())
                    .limit(1)
                )
                if newest is None or newest.status == "succeeded" or newest.spec_hash != spec_hash:
                    return None
                if newest.user != self.acting_user:
                    return None
            found = judge(newest)
            if found is not None and found.alive:
                raise RunStateError(
                    f"run {newest.id[:8]} of {pipeline} is still running ({found.reason}); "
                    f"wait for it, stop it, or close it with `mlship runs abandon {newest.id[:8]}`"
                )
            newest.status = "running"
            newest.host = worker.host if worker else None
            newest.pid = worker.pid if worker else None
            newest.heartbeat_at = utcnow()
            newest.error = None
            newest.finished_at = None
            newest.attempts = (newest.attempts or 1) + 1
            return newest.id, newest.attempts

    @_retried
    def fail_run(self, run_id: str, error: str, started: datetime) -> None:
        """Record that a run stopped with ``error``; a run that already succeeded keeps its
        results (the failure came after they were committed)."""
        with self.transaction() as session:
            run = _find_run(session, run_id)
            if run.status == "succeeded":
                return
            run.status = "failed"
            run.error = error
            run.finished_at = utcnow()
            run.wall_seconds = (run.finished_at - as_utc(started)).total_seconds()

    @_retried
    def heartbeat(self, run_id: str) -> bool:
        """Renew the heartbeat of a ``running`` run; False when it is not running any more (it
        was abandoned by hand, say), so whoever beats can stop."""
        with self.transaction() as session:
            run = _find_run(session, run_id)
            if run.status != "running":
                return False
            run.heartbeat_at = utcnow()
            return True

    @_retried_before_commit
    def abandon_run(self, ref: str, *, reason: str, force: bool = False) -> entities.Run:
        """Close a ``running`` run whose process is gone (``ref`` as for :meth:`get_run`).

        A run whose process looks alive (it is on this host, or its heartbeat is fresh) is refused
        unless ``force``; a finished run is always refused.
        """
        with self.transaction() as session:
            run = _find_run(session, ref)
            if run.status in FINISHED:
                when = run.finished_at.strftime("%Y-%m-%d %H:%M:%S") if run.finished_at else "?"
                raise RunStateError(
                    f"run {run.id[:8]} already finished ({run.status} at {when} UTC); only a "
                    "running run can be abandoned"
                )
            found = judge(run)
            if found is not None and found.alive and not force:
                raise RunStateError(
                    f"run {run.id[:8]} looks alive: {found.reason}. Stop that process first "
                    "(it marks the run failed), or pass --force to close the record anyway"
                )
            why = reason.strip() or (found.reason if found is not None else "closed by hand")
            run.status = ABANDONED
            run.error = f"abandoned by {self.acting_user}: {why}"
            run.finished_at = utcnow()
            run.wall_seconds = (run.finished_at - as_utc(run.started_at)).total_seconds()
            session.flush()
            return from_row(entities.Run, run, depth=0)

    @_retried_before_commit
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
    ) -> entities.ModelVersion | None:
        """Record a run's results, and register its model, in one transaction.

        ``outcome`` sets the run's totals (CPU-seconds, peak memory, cost, details, report).
        ``register`` is a :class:`NewVersion` (or None); the version number is allocated inside
        the same transaction so two runs finishing together cannot take the same number.
        """
        unknown = sorted(set(outcome or {}) - RUN_OUTCOME)
        if unknown:
            expected = ", ".join(sorted(RUN_OUTCOME))
            raise MlshipError(f"unknown run field {unknown[0]!r}; expected one of {expected}")
        if register is not None:
            self._require_artifact(register.artifact_sha256)
        with self.transaction() as session:
            run = _find_run(session, run_id)
            if run.status == "succeeded":  # a retried request must not register twice
                raise RunStateError(
                    f"run {run.id[:8]} already succeeded; its results cannot be recorded again"
                )
            if session.get(Dataset, dataset_id) is None:
                raise NotFoundError(f"no dataset with id {dataset_id}")
            run.dataset_id = dataset_id
            run.best_candidate = best_candidate
            run.candidates.extend(Candidate(**asdict(c)) for c in candidates)
            run.metrics.extend(Metric(**asdict(m)) for m in metrics)
            run.values.extend(
                RunValue(kind=v.kind, key=v.key, number=v.number, text=v.text)
                for v in searched(candidates, metrics, best_candidate)
            )
            run.status = "succeeded"
            run.finished_at = utcnow()
            run.wall_seconds = wall_seconds
            for key, value in (outcome or {}).items():
                setattr(run, key, value)
            if register is None:
                return None
            version = self._add_version(session, run_id=run.id, new=register)
            return from_row(entities.ModelVersion, version)

    def _add_version(self, session: Session, *, run_id: str, new: NewVersion) -> ModelVersion:
        creator = self.acting_user
        model = _locked_model(session, new.name, owner=creator)
        latest = session.scalar(
            select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)
        )
        version = ModelVersion(
            model=model,
            version=(latest or 0) + 1,
            run_id=run_id,
            dataset_hash=new.dataset_hash,
            estimator=new.estimator,
            params=new.params,
            artifact_sha256=new.artifact_sha256,
            artifact_size=new.artifact_size,
            artifact_signature=new.artifact_signature,
            signature=new.signature,
            metrics=new.metrics,
            created_by=creator,
        )
        session.add(version)
        session.add(
            ModelEvent(
                model_id=model.id,
                version=version.version,
                action="registered",
                to_stage="none",
                user=creator,
                details={"run": run_id},
            )
        )
        session.flush()
        return version

    # -- tuning journals ------------------------------------------------------------------

    @_retried
    def read_journal(self, run_id: str, start: int = 0) -> list[dict[str, Any]]:
        """Entries ``start`` onwards of a run's tuning journal (Optuna's journal format)."""
        with self.transaction() as session:
            query = (
                select(JournalEntry.entry)
                .where(JournalEntry.run_id == run_id, JournalEntry.seq >= start)
                .order_by(JournalEntry.seq)
            )
            return list(session.scalars(query))

    @_retried_before_commit
    def append_journal(self, run_id: str, entries: Sequence[dict[str, Any]]) -> None:
        """Append ``entries`` to a run's journal, in order and after everything already there.

        Several workers of one run may append at once: each takes the next numbers inside its
        transaction, and one that loses the race to the same numbers retries from a fresh read.
        """
        with self.transaction() as session:
            if session.get(Run, run_id) is None:
                raise NotFoundError(f"no run with id {run_id!r}; `mlship runs list` shows the runs")
        for attempt in range(_JOURNAL_RETRIES):
            try:
                with self.transaction() as session:
                    last = session.scalar(
                        select(func.max(JournalEntry.seq)).where(JournalEntry.run_id == run_id)
                    )
                    first = -1 if last is None else last
                    session.add_all(
                        JournalEntry(run_id=run_id, seq=first + 1 + i, entry=entry)
                        for i, entry in enumerate(entries)
                    )
                return
            except DBIntegrityError:
                if attempt == _JOURNAL_RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))

    @_retried
    def list_runs(
        self, limit: int = 50, owner: str | None = None, tags: dict[str, str] | None = None
    ) -> list[entities.Run]:
        """Runs newest first; only those of ``owner`` and carrying every one of ``tags`` (each
        key with that value) when given."""
        with self.transaction() as session:
            query = select(Run)
            if owner is not None:
                query = query.where(Run.owner == owner)
            for key, value in (tags or {}).items():
                query = query.where(self._tagged(Run.tags, key, value))
            query = query.order_by(Run.started_at.desc()).limit(limit)
            found = session.scalars(query.options(selectinload(Run.candidates)))
            return [shown(from_row(entities.Run, run)) for run in found]

    @_retried
    def search_runs(self, query: RunQuery) -> RunPage:
        """One page of the runs ``query`` finds, filtered, sorted and cut by the database
        (:mod:`mlship.store.run_queries`), with how many it finds in all."""
        with self.transaction() as session:
            return search(session, query, self._tagged)

    @_retried
    def run_fields(self, most: int = 200) -> RunFields:
        """The names runs recorded, each kind read along its index (:func:`run_fields`)."""
        with self.transaction() as session:
            return run_fields(session, most)

    @_retried
    def get_run(self, run_id: str) -> entities.Run:
        """Find a run by its id or an unambiguous prefix of it (as git does for commits), or by
        a pipeline name for that pipeline's newest run."""
        with self.transaction() as session:
            return shown(from_row(entities.Run, _find_run(session, run_id, everything=True)))

    @_retried
    def tag_run(self, run_id: str, tags: dict[str, str | None]) -> entities.Run:
        """Set tags of a run (a ``None`` value removes the tag); ``run_id`` as for
        :meth:`get_run`. Returns the run with its tags after the change."""
        with self.transaction() as session:
            run = _find_run(session, run_id)
            updated = dict(run.tags or {})
            for key, value in tags.items():
                if not key:
                    raise MlshipError("a tag needs a key")
                if "=" in key:  # filters are KEY=VALUE, on the command line and over HTTP
                    raise MlshipError(f"a tag key cannot contain '=': {key!r}")
                storable(key, "a tag key")
                if value is None:
                    updated.pop(key, None)
                else:
                    updated[key] = storable(value, "a tag value")
            run.tags = updated
            session.flush()
            return from_row(entities.Run, run, depth=0)

    @_retried
    def set_run_owner(self, run_id: str, owner: str) -> entities.Run:
        """Hand a run over to ``owner`` (``run_id`` as for :meth:`get_run`)."""
        if not owner.strip():
            raise MlshipError("an owner needs a name")
        storable(owner, "an owner's name")
        with self.transaction() as session:
            run = _find_run(session, run_id)
            run.owner = owner.strip()
            session.flush()
            return from_row(entities.Run, run, depth=0)

    @_retried_before_commit
    def add_run_note(self, run_id: str, body: str, reply_to: int | None = None) -> entities.Note:
        """Append a markdown note of the acting user to a run (``run_id`` as for
        :meth:`get_run`), in answer to the run's note ``reply_to`` when given."""
        text = note_text(body)
        with self.transaction() as session:
            run = _find_run(session, run_id)
            if (
                reply_to is not None
                and session.scalar(
                    select(Note.id).where(
                        Note.id == reply_to, Note.target_kind == "run", Note.target_id == run.id
                    )
                )
                is None
            ):
                raise NotFoundError(f"run {run.id[:8]} has no note #{reply_to} to reply to")
            note = Note(
                target_kind="run",
                target_id=run.id,
                author=self.acting_user,
                body=text,
                reply_to=reply_to,
            )
            session.add(note)
            session.flush()
            return from_row(entities.Note, note)

    @_retried
    def notes(self, target_kind: str, target_id: str) -> list[entities.Note]:
        """The notes on one target, oldest first: ``run`` and a full run id, or ``version`` and
        a version's row id (``Registry.version_notes`` finds it from a model and number)."""
        if target_kind not in NOTE_KINDS:
            raise MlshipError(
                f"unknown note target {target_kind!r}; expected one of {', '.join(NOTE_KINDS)}"
            )
        with self.transaction() as session:
            query = (
                select(Note)
                .where(Note.target_kind == target_kind, Note.target_id == target_id)
                .order_by(Note.id)
            )
            return [from_row(entities.Note, note) for note in session.scalars(query)]

    # -- models ---------------------------------------------------------------------------

    @_retried
    def list_models(
        self, owner: str | None = None, tags: dict[str, str] | None = None
    ) -> list[entities.RegisteredModel]:
        """Registered models by name, each with its versions; only those of ``owner`` and
        carrying every one of the model tags ``tags`` when given."""
        with self.transaction() as session:
            query = select(RegisteredModel)
            if owner is not None:
                query = query.where(RegisteredModel.owner == owner)
            for key, value in (tags or {}).items():
                query = query.where(self._tagged(RegisteredModel.tags, key, value))
            query = query.order_by(RegisteredModel.name)
            found = session.scalars(query.options(selectinload(RegisteredModel.versions)))
            return [from_row(entities.RegisteredModel, model) for model in found]

    @_retried
    def get_version(self, name: str, version: int | None = None) -> entities.ModelVersion:
        """A model version by number, or the newest one when ``version`` is None."""
        with self.transaction() as session:
            model = session.scalar(select(RegisteredModel).where(RegisteredModel.name == name))
            if model is None:
                known = ", ".join(session.scalars(select(RegisteredModel.name))) or "none yet"
                raise NotFoundError(f"no model named {name!r} (registered models: {known})")
            query = select(ModelVersion).where(ModelVersion.model_id == model.id)
            if version is None:
                query = query.order_by(ModelVersion.version.desc()).limit(1)
            else:
                query = query.where(ModelVersion.version == version)
            found = session.scalar(query.options(selectinload(ModelVersion.model)))
            if found is None:
                raise NotFoundError(f"model {name!r} has no version {version}")
            return from_row(entities.ModelVersion, found)


_JOURNAL_RETRIES = 20


def searched(
    candidates: Sequence[NewCandidate], metrics: Sequence[NewMetric], best: str
) -> list[NamedValue]:
    """What a finished run is searched by: its selected candidate's params and the scores of
    that candidate (:func:`~mlship.store.run_search.run_values`)."""
    chosen = next((c for c in candidates if c.selected), None) or next(
        (c for c in candidates if c.name == best), None
    )
    scores = [(m.split, m.name, m.value) for m in metrics if m.candidate in (None, best)]
    return run_values(chosen.params if chosen else {}, scores)


def _locked_model(session: Session, name: str, *, owner: str) -> RegisteredModel:
    """The model called ``name``, created if new, locked for the rest of the transaction.

    The lock serialises registrations of one model, so two runs finishing at once on PostgreSQL
    take versions one after the other instead of both reading the same newest number. Creating the
    model is a savepoint: if another transaction creates it first, the name's unique constraint
    fails this insert alone and the existing row is read and locked instead.
    """
    query = select(RegisteredModel).where(RegisteredModel.name == name).with_for_update()
    model = session.scalar(query)
    if model is not None:
        return model
    if session.get_bind().dialect.name == "sqlite":  # one writer at a time: no race to lose
        model = RegisteredModel(name=name, owner=owner)
        session.add(model)
        session.flush()
        return model
    try:
        with session.begin_nested():
            session.add(RegisteredModel(name=name, owner=owner))
    except DBIntegrityError:
        pass
    return session.scalars(query).one()


def _find_run(session: Session, ref: str, *, everything: bool = False) -> Run:
    """The run ``ref`` names (an id, an unambiguous id prefix, or a pipeline for its newest
    run); with ``everything``, its candidates, metrics and dataset are loaded too."""
    newest = session.scalar(
        select(Run.id).where(Run.pipeline == ref).order_by(Run.started_at.desc()).limit(1)
    )
    query = select(Run).where(Run.id.startswith((newest or ref).lower(), autoescape=True))
    if everything:
        query = query.options(
            selectinload(Run.candidates), selectinload(Run.metrics), selectinload(Run.dataset)
        )
    found = list(session.scalars(query.limit(2)))
    if not found:
        raise NotFoundError(f"no run with id {ref!r}; `mlship runs list` shows the runs")
    if len(found) > 1:
        raise MlshipError(f"run id prefix {ref!r} is ambiguous; give more characters")
    return found[0]


def _resumable(run: Run, pipeline: str, spec_hash: str, user: str) -> None:
    """Refuse to resume ``run`` with a spec of ``pipeline`` hashing to ``spec_hash``, saying why,
    when it is not an unfinished run of that spec started by ``user``."""
    short = run.id[:8]
    if run.pipeline != pipeline:
        raise RunStateError(
            f"run {short} is a run of {run.pipeline}, not of {pipeline}; "
            f"resume it with the spec it was made from"
        )
    if run.status == "succeeded":
        raise RunStateError(f"run {short} of {pipeline} already succeeded; nothing to resume")
    if run.spec_hash != spec_hash:
        raise RunStateError(
            f"run {short} of {pipeline} was made from a different spec (spec hash "
            f"{(run.spec_hash or '?')[:12]}, this one {spec_hash[:12]}); a resumed run must "
            f"train what it started with: restore that spec, or start a new run without --resume"
        )
    if run.user != user:
        raise RunStateError(f"run {short} of {pipeline} belongs to {run.user}; only they resume it")


def note_text(body: str) -> str:
    """A note's text without surrounding blank lines; an empty note is refused."""
    text = body.strip("\n").rstrip()
    if not text.strip():
        raise MlshipError("a note needs some text")
    return storable(text, "a note")


def storable(text: str, what: str) -> str:
    """``text`` if every backend can store it: PostgreSQL refuses the NUL character in text
    (SQLite does not), so it is refused everywhere, with a message rather than a database error."""
    if "\x00" in text:
        raise MlshipError(f"{what} cannot contain the NUL character (\\x00)")
    return text


_DATASET_DETAILS = frozenset(
    {
        "pipeline",
        "spec_hash",
        "code_version",
        "validation",
        "n_quarantined",
        "quarantine_sha256",
        "profile_sha256",
    }
)
"""The optional columns ``get_or_add_dataset``'s ``details`` may fill."""

_KEY_CHARS = 64
"""An ingest cache key's length in the table (a sha256 in hex)."""
