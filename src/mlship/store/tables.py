"""ORM tables of the metadata store.

The schema is owned by the Alembic migrations in ``mlship/store/migrations``; these classes must
match them (a test compares the two), and ``create_all`` is never used on a real database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Re-exported: modules that read rows name the clock here.
from mlship.store.clock import as_utc as as_utc  # noqa: PLC0414
from mlship.store.clock import utcnow as utcnow  # noqa: PLC0414


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Dataset(Base):
    """A validated table, stored once as Parquet and named by the hash of its content."""

    __tablename__ = "datasets"
    __table_args__ = (Index("ix_datasets_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    data_hash: Mapped[str] = mapped_column(String(64), unique=True)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    n_rows: Mapped[int] = mapped_column(Integer)
    n_columns: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[Any]] = mapped_column(JSON)
    sources: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    pipeline: Mapped[str | None] = mapped_column(String(200), index=True)
    spec_hash: Mapped[str | None] = mapped_column(String(64))
    code_version: Mapped[str | None] = mapped_column(String(60))
    n_quarantined: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    quarantine_sha256: Mapped[str | None] = mapped_column(String(64))
    profile_sha256: Mapped[str | None] = mapped_column(String(64))
    validation: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class IngestCache(Base):
    """Which dataset an ingest produced from given inputs (spec, source bytes, code)."""

    __tablename__ = "ingest_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IngestMark(Base):
    """Where an incremental pipeline's sources were read up to (their high-water marks), and the
    dataset that holds everything read so far. One row per pipeline, moved only together with a
    committed dataset; ``serial`` counts the moves, so two ingests cannot both move it."""

    __tablename__ = "ingest_marks"

    pipeline: Mapped[str] = mapped_column(String(200), primary_key=True)
    serial: Mapped[int] = mapped_column(Integer)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    marks: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Run(Base):
    """One execution of a pipeline spec."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_started_at", "started_at"),
        Index("ix_runs_dataset_id", "dataset_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    user: Mapped[str] = mapped_column(String(200))
    """Who started the run; it never changes."""
    owner: Mapped[str] = mapped_column(String(200), index=True, server_default="")
    """Who answers for the run now: the user who started it, until it is handed over."""
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    task: Mapped[str] = mapped_column(String(40))
    metric: Mapped[str] = mapped_column(String(60))
    spec_path: Mapped[str] = mapped_column(Text)
    spec_hash: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))
    best_candidate: Mapped[str | None] = mapped_column(String(200))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    environment: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    wall_seconds: Mapped[float | None] = mapped_column(Float)
    cpu_seconds: Mapped[float | None] = mapped_column(Float)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    cost: Mapped[float | None] = mapped_column(Float)
    executor: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    report_sha256: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    host: Mapped[str | None] = mapped_column(String(255))
    """The machine whose process works on the run (the newest attempt's)."""
    pid: Mapped[int | None] = mapped_column(Integer)
    """That process's id on ``host``."""
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When that process last said it was alive; see :mod:`mlship.store.liveness`."""

    dataset: Mapped[Dataset | None] = relationship()
    candidates: Mapped[list[Candidate]] = relationship(
        back_populates="run", order_by="Candidate.rank", cascade="all, delete-orphan"
    )
    metrics: Mapped[list[Metric]] = relationship(back_populates="run", cascade="all, delete-orphan")
    values: Mapped[list[RunValue]] = relationship(cascade="all, delete-orphan")


class RunValue(Base):
    """A param or metric of a finished run, one row each, for searching and sorting runs by it.

    What :func:`mlship.store.run_search.run_values` makes of the selected candidate's params and
    the selected model's scores, written with the run's results. A number is in ``number`` (and,
    for a param, its spelling in ``text``); anything else in ``text``. The indexes lead with the
    kind and key, so ``metric.auc > 0.8`` and a sort by it read one range of one index.
    """

    __tablename__ = "run_values"
    __table_args__ = (
        Index("ix_run_values_number", "kind", "key", "number"),
        Index("ix_run_values_text", "kind", "key", "text"),
    )

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    number: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str | None] = mapped_column(String(500))


class Candidate(Base):
    """A model configuration scored during a run."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    estimator: Mapped[str] = mapped_column(String(300))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    cv_mean: Mapped[float] = mapped_column(Float)
    cv_std: Mapped[float] = mapped_column(Float)
    fit_seconds: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)
    selected: Mapped[bool] = mapped_column(Boolean, default=False)
    train_mean: Mapped[float | None] = mapped_column(Float)
    cpu_seconds: Mapped[float | None] = mapped_column(Float)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    cost: Mapped[float | None] = mapped_column(Float)
    predict_ms: Mapped[float | None] = mapped_column(Float)
    trials: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tuning: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    run: Mapped[Run] = relationship(back_populates="candidates")


class Metric(Base):
    """A named score of a run: per candidate for CV, for the selected model on the holdout."""

    __tablename__ = "metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    candidate: Mapped[str | None] = mapped_column(String(200))
    split: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(60))
    value: Mapped[float] = mapped_column(Float)

    run: Mapped[Run] = relationship(back_populates="metrics")


class RegisteredModel(Base):
    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    owner: Mapped[str] = mapped_column(String(200), server_default="")
    """Who answers for the model: whoever registered its first version, until handed over."""

    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", order_by="ModelVersion.version"
    )


class ModelVersion(Base):
    """A trained model artifact with everything needed to trust and serve it."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    dataset_hash: Mapped[str] = mapped_column(String(64))
    estimator: Mapped[str] = mapped_column(String(300))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    artifact_size: Mapped[int] = mapped_column(Integer)
    artifact_signature: Mapped[str | None] = mapped_column(String(200))
    """HMAC of the artifact's sha256 under the workspace's signing key (see security.signing)."""
    signature: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    stage: Mapped[str] = mapped_column(String(20), default="none", server_default="none")
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")

    model: Mapped[RegisteredModel] = relationship(back_populates="versions")
    run: Mapped[Run] = relationship()


class ModelEvent(Base):
    """One change to a model or a version, appended and never edited: the registry's history."""

    __tablename__ = "model_events"
    __table_args__ = (Index("ix_model_events_model_id_id", "model_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"))
    version: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str | None] = mapped_column(String(20))
    user: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Note(Base):
    """A markdown note (a comment) on a run, a model version or a promotion request, appended
    and never edited.

    ``target_kind`` is ``run`` (``target_id`` is the run id), ``version`` (``target_id`` is the
    version's row id, which stays the same whatever happens to the version's stage or tags) or
    ``request`` (the promotion request's id). ``reply_to`` makes threads: the note it answers,
    always on the same target.
    """

    __tablename__ = "notes"
    __table_args__ = (Index("ix_notes_target", "target_kind", "target_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_kind: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    body: Mapped[str] = mapped_column(Text)
    reply_to: Mapped[int | None] = mapped_column(Integer)


class PromotionRequest(Base):
    """A request to put a version in production, waiting for someone else's approval."""

    __tablename__ = "promotion_requests"
    # The open requests of every model, oldest first, a page at a time (the review list).
    __table_args__ = (Index("ix_promotion_requests_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)


class Review(Base):
    """A reviewer's verdict short of a decision on a promotion request: ``changes requested``
    or ``objection``, with its reason, and how it ended.

    A request for changes is answered when the requester asks for a review again; an objection
    holds against the version (whatever request comes next) until its author withdraws it or an
    admin overrules it. ``status`` is ``open``, ``answered``, ``withdrawn`` or ``overruled``.
    """

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_model_version", "model_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"))
    version: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[int] = mapped_column(ForeignKey("promotion_requests.id"))
    verdict: Mapped[str] = mapped_column(String(20))
    author: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="open")
    closed_by: Mapped[str | None] = mapped_column(String(200))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closing_note: Mapped[str | None] = mapped_column(Text)


class Alert(Base):
    """An alert rule that held for a model: delivered (``fired``) or held back by its cool-down
    (``suppressed``). Rules that did not hold leave no row."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_model_rule_at", "model", "rule", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    model: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)
    condition: Mapped[str] = mapped_column(String(60))
    severity: Mapped[str] = mapped_column(String(20))
    window: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(20))
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    """At least one action succeeded: the firing that starts the rule's cool-down."""
    deliveries: Mapped[list[Any]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class User(Base):
    """Someone who may use a shared mlship server, with one role."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))

    tokens: Mapped[list[Token]] = relationship(back_populates="user", order_by="Token.id")


class Token(Base):
    """An API token of a user. Only the SHA-256 of the secret is kept: it is shown once."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    """The first characters of the secret, to recognise a token in lists and logs."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(back_populates="tokens")


class AuditEntry(Base):
    """One committed change to the metadata store: who, from where, what, and the rows it touched.

    Appended in the transaction of the change itself and never edited: the migration puts
    triggers on the table that refuse UPDATE and DELETE, and no code path issues either.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_user_at", "user", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    user: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(20))
    origin: Mapped[str] = mapped_column(String(300))
    """Where the change came from: ``http 10.0.0.7`` through the server, ``local <host>`` else."""
    action: Mapped[str] = mapped_column(String(300))
    """What was asked: the HTTP method and path, or the command line."""
    request_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20), default="ok")
    """``ok`` for a committed change, ``denied`` for a refused mutation (no rows touched)."""
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Per table: ids inserted and deleted, and before/after values of updated columns."""


class JournalEntry(Base):
    """One entry of a run's tuning journal (Optuna's journal format), kept by a shared server so
    that clients of it tune without a database connection of their own."""

    __tablename__ = "tuning_journal"

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry: Mapped[dict[str, Any]] = mapped_column(JSON)


class IdempotencyKey(Base):
    """A write the tracking server applied, under the key its client sent with it, and the answer
    it gave: written in the transaction of the write itself, so the two exist together or not at
    all, and a retry of the same request is answered from here instead of being applied again."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user", "key", name="uq_idempotency_keys_user_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    request_sha256: Mapped[str] = mapped_column(String(64))
    """The hash of the method, path, query and body: the key with another request is refused."""
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class UiSession(Base):
    """A signed-in browser of the web UI: a random id whose SHA-256 is kept, never the id itself,
    bound to the API token it was exchanged for (revoking the token ends the session)."""

    __tablename__ = "ui_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)

    token: Mapped[Token] = relationship()


class RateBucket(Base):
    """The token bucket of one API token, shared by every server process on the database."""

    __tablename__ = "rate_buckets"

    token_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    level: Mapped[float] = mapped_column(Float)
    """Requests the token may still make at once."""
    at: Mapped[float] = mapped_column(Float)
    """When ``level`` was computed, in epoch seconds (the newest of the servers' clocks)."""
    granted: Mapped[bool] = mapped_column(Boolean)
    """Whether the last request was let through."""


class Rollout(Base):
    """A progressive rollout of a candidate version against the model's production version: its
    plan (from the deployment file) and where it stands. Rows are kept after the rollout ends;
    the model's newest row is its current rollout. Every move also appends a
    :class:`ModelEvent`, in the same transaction."""

    __tablename__ = "rollouts"
    __table_args__ = (Index("ix_rollouts_model_id", "model_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"))
    candidate: Mapped[int] = mapped_column(Integer)
    control: Mapped[int] = mapped_column(Integer)
    """The version in production when the rollout started, which the candidate is judged against."""
    deployment: Mapped[str] = mapped_column(String(200))
    steps: Mapped[list[Any]] = mapped_column(JSON)
    hold_seconds: Mapped[float] = mapped_column(Float)
    alpha: Mapped[float] = mapped_column(Float)
    effect: Mapped[float | None] = mapped_column(Float)
    checks: Mapped[dict[str, Any]] = mapped_column(JSON)
    step: Mapped[int] = mapped_column(Integer)
    """Index in ``steps`` of the current step."""
    weight: Mapped[float] = mapped_column(Float)
    """Percentage of the traffic routed to the candidate now."""
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """When the current step began: its traffic is what judges it."""
    status: Mapped[str] = mapped_column(String(20))
    reasons: Mapped[list[Any]] = mapped_column(JSON)
    started_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
