"""What the metadata repositories hand out: frozen dataclasses, never ORM rows.

An ORM row is tied to the session that loaded it (touch an unloaded relationship after the
session closed and it raises), can be changed by whoever holds it, and cannot travel over HTTP
as it is. These classes are plain values: the SQL repositories build them from rows before their
transaction ends, the HTTP repositories build them from the server's JSON with the same pydantic
adapter the server wrote it with (:func:`adapter`), and domain code only ever reads them. Each
has the name of the table it mirrors, its columns, and the relationships the repositories load,
one level deep (a run with its candidates, a candidate without its run again).

Secrets never appear here: a token's hash stays in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import TypeAdapter

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """A validated table, stored once as Parquet and named by the hash of its content."""

    id: int
    data_hash: str
    artifact_sha256: str
    n_rows: int
    n_columns: int
    columns: list[Any]
    sources: list[Any]
    created_at: datetime
    pipeline: str | None = None
    spec_hash: str | None = None
    code_version: str | None = None
    n_quarantined: int = 0
    quarantine_sha256: str | None = None
    profile_sha256: str | None = None
    validation: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class IngestMarks:
    """Where the growing sources of a pipeline were read up to, each source's mark as its kind
    records it (a byte offset and prefix hash, a largest key, a newest change time), and the
    dataset holding every row read so far; ``serial`` counts how often the marks moved."""

    pipeline: str
    serial: int
    dataset_id: int
    marks: dict[str, Any]
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One estimator a run tried, with its cross-validated score and what it cost."""

    id: int
    run_id: str
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
class Metric:
    """One figure of a run: a candidate's (or the selected model's) score on one split."""

    id: int
    run_id: str
    candidate: str | None
    split: str
    name: str
    value: float


@dataclass(frozen=True, kw_only=True)
class Run:
    """One training run: what was asked, on which data, by whom, and how it ended."""

    id: str
    pipeline: str
    status: str
    user: str
    owner: str
    tags: dict[str, Any]
    task: str
    metric: str
    spec_path: str
    spec_hash: str
    spec: dict[str, Any]
    environment: dict[str, Any]
    started_at: datetime
    dataset_id: int | None = None
    best_candidate: str | None = None
    git_commit: str | None = None
    error: str | None = None
    finished_at: datetime | None = None
    wall_seconds: float | None = None
    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None
    cost: float | None = None
    executor: str | None = None
    attempts: int = 1
    report_sha256: str | None = None
    details: dict[str, Any] | None = None
    host: str | None = None
    pid: int | None = None
    heartbeat_at: datetime | None = None
    dataset: Dataset | None = None
    candidates: tuple[Candidate, ...] = ()
    metrics: tuple[Metric, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RegisteredModel:
    """A name under which versions of a model are registered, with its owner and tags."""

    id: int
    name: str
    created_at: datetime
    tags: dict[str, Any]
    owner: str
    description: str | None = None
    versions: tuple[ModelVersion, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ModelVersion:
    """One registered model file: where it came from, its signed artifact and its stage."""

    id: int
    model_id: int
    version: int
    run_id: str
    dataset_hash: str
    estimator: str
    params: dict[str, Any]
    artifact_sha256: str
    artifact_size: int
    signature: dict[str, Any]
    metrics: dict[str, Any]
    created_by: str
    created_at: datetime
    stage: str
    tags: dict[str, Any]
    artifact_signature: str | None = None
    description: str | None = None
    model: RegisteredModel | None = None
    """The registered model, loaded with the version (its ``versions`` are not)."""


def model_of(version: ModelVersion) -> RegisteredModel:
    """The registered model of ``version``: every version a repository hands out on its own
    (not inside its model's ``versions``) carries it."""
    if version.model is None:
        raise ValueError(f"version {version.version} was read without its model")
    return version.model


@dataclass(frozen=True, kw_only=True)
class ModelEvent:
    """One change in a registered model's history: a stage move, a tag, a rollback."""

    id: int
    model_id: int
    version: int | None
    action: str
    user: str
    at: datetime
    from_stage: str | None = None
    to_stage: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Note:
    """A remark someone wrote on a run, a model version or a promotion request; ``reply_to``
    is the note it answers, on the same target."""

    id: int
    target_kind: str
    target_id: str
    author: str
    created_at: datetime
    body: str
    reply_to: int | None = None


@dataclass(frozen=True, kw_only=True)
class PromotionRequest:
    """A request that a version go to production, and the decision on it."""

    id: int
    model_id: int
    version: int
    requested_by: str
    requested_at: datetime
    status: str
    reason: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class Rollout:
    """A progressive rollout of ``model:candidate`` against ``model:control`` and where it
    stands: ``status`` ``running``, ``holding`` (at 100 %, ready for a human approval),
    ``rolled back`` or ``done`` (the candidate is in production)."""

    id: int
    model: str
    candidate: int
    control: int
    deployment: str
    steps: list[float]
    hold_seconds: float
    alpha: float
    checks: dict[str, Any]
    step: int
    """Index in ``steps`` of the current step."""
    weight: float
    """Percentage of the traffic routed to the candidate now."""
    since: datetime
    status: str
    started_by: str
    started_at: datetime
    updated_at: datetime
    effect: float | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Whether steps still judge it (running, or holding at 100 until approved)."""
        return self.status in ("running", "holding")


@dataclass(frozen=True, kw_only=True)
class Review:
    """A verdict on a promotion request short of deciding it (``changes requested`` or
    ``objection``) and how it ended (``open``, ``answered``, ``withdrawn``, ``overruled``)."""

    id: int
    model_id: int
    version: int
    request_id: int
    verdict: str
    author: str
    reason: str
    created_at: datetime
    status: str
    closed_by: str | None = None
    closed_at: datetime | None = None
    closing_note: str | None = None


@dataclass(frozen=True, kw_only=True)
class Alert:
    """An alert rule that held for a model, delivered (``fired``) or held back (``suppressed``)."""

    id: int
    at: datetime
    model: str
    rule: str
    metric: str
    value: float
    condition: str
    severity: str
    window: str
    status: str
    delivered: bool = False
    deliveries: list[Any] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Token:
    """An API token of a user, without its secret (only the secret's hash is kept, server-side)."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    user: User | None = None
    """Its user, when loaded with the token (the user's ``tokens`` are not)."""


@dataclass(frozen=True, kw_only=True)
class User:
    """Someone who may use a shared mlship server, with one role."""

    id: int
    name: str
    role: str
    created_at: datetime
    created_by: str
    disabled: bool = False
    tokens: tuple[Token, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One committed (or refused) change to the metadata store: who, from where, what."""

    id: int
    at: datetime
    user: str
    origin: str
    action: str
    outcome: str
    changes: dict[str, Any]
    role: str | None = None
    request_id: str | None = None


ENTITIES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        Dataset,
        IngestMarks,
        Candidate,
        Metric,
        Run,
        RegisteredModel,
        ModelVersion,
        ModelEvent,
        Note,
        PromotionRequest,
        Alert,
        Token,
        User,
        AuditEntry,
    )
}
"""Every entity by name: the ORM table class of the same name maps onto it."""


def from_row(cls: type[T], row: Any, *, depth: int = 1) -> T:
    """``row`` (an ORM instance, inside its session) as the frozen ``cls``.

    Columns are copied; a relationship is copied when it was loaded with the row and ``depth``
    allows, else left at its default (None or empty), so reading it never reaches for a database.
    Times come back from SQLite without a zone; they are stored in UTC and returned aware.
    """
    from sqlalchemy import inspect

    from mlship.store.clock import as_utc

    state = inspect(row)
    relations = {rel.key: rel for rel in state.mapper.relationships}
    values: dict[str, Any] = {}
    for item in fields(cls):  # type: ignore[arg-type]
        if item.name in state.unloaded:
            continue
        if item.name in relations:
            if depth <= 0:
                continue
            target = ENTITIES[relations[item.name].mapper.class_.__name__]
            value = getattr(row, item.name)
            if value is None:
                values[item.name] = None
            elif isinstance(value, list):
                values[item.name] = tuple(from_row(target, v, depth=depth - 1) for v in value)
            else:
                values[item.name] = from_row(target, value, depth=depth - 1)
            continue
        value = getattr(row, item.name)
        values[item.name] = as_utc(value) if isinstance(value, datetime) else value
    return cls(**values)


def adapter(cls: type[T]) -> TypeAdapter[T]:
    """The pydantic adapter that writes ``cls`` as JSON on the server and reads it on a client."""
    found: TypeAdapter[T] = _ADAPTERS.get(cls) or _ADAPTERS.setdefault(cls, TypeAdapter(cls))
    return found


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def to_json(value: Any) -> Any:
    """An entity (or a list of them) as JSON-ready data, times in ISO 8601."""
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if not is_dataclass(value) or isinstance(value, type):
        raise TypeError(f"not an entity: {type(value).__name__}")
    return adapter(type(value)).dump_python(value, mode="json")


def parse(cls: type[T], data: Any) -> T:
    """The server's JSON for one ``cls``, as the entity."""
    return adapter(cls).validate_python(data)


def parse_list(cls: type[T], data: Any) -> list[T]:
    """The server's JSON for a list of ``cls``, as entities."""
    return [parse(cls, item) for item in data]
