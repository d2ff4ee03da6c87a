"""What the model pages read: one page of models, a model with a page of its versions and of its
history, and a version with its integrity, lineage, notes and a diff against another version.

Every list is cut on the server by the database (``LIMIT``/``OFFSET`` over an indexed order: a
model's versions by ``(model_id, version)``, its history by ``model_id``), and each page asks
the database a fixed number of questions whatever the number of versions, so a model with a
thousand versions costs what one with three does.

A version's signature is checked on every row shown (an HMAC or an Ed25519 check of the recorded
checksum: cheap); the stored bytes are hashed against that checksum on the version's own page
only, where reading the file once is worth it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from sqlalchemy import ColumnElement, func, select

from mlship.data.lineage import lineage_from_json
from mlship.data.readers.masking import mask_text
from mlship.errors import MlshipError
from mlship.registry.diff import VersionDiff, diff_versions
from mlship.store import entities, tables
from mlship.store.entities import ModelEvent, ModelVersion, Note, PromotionRequest, Run
from mlship.ui.charts import Chart
from mlship.workspace import Workspace

PAGE_SIZE = 50
T = TypeVar("T")


def page_number(values: dict[str, str], key: str) -> int:
    """The page number of parameter ``key`` (1 when absent); a bad one is a clear error."""
    text = values.get(key) or "1"
    if not text.isdigit() or int(text) < 1 or len(text) > 9:
        raise MlshipError(f"{key}: expected a page number from 1, got {text!r}")
    return int(text)


def version_number(text: str, what: str = "version") -> int:
    """A version number from a path or a query; anything else is a clear error naming it."""
    if not text.isdigit() or int(text) < 1 or len(text) > 9:
        raise MlshipError(f"{what}: expected a version number from 1, got {text!r}")
    return int(text)


def model_name(text: str) -> str:
    """A model name from a path; one no store could hold (a NUL character) is a clear error
    before any query sees it (PostgreSQL would refuse the query itself)."""
    if "\x00" in text:
        raise MlshipError(f"model name {text!r}: a name cannot contain the NUL character")
    return text


@dataclass(frozen=True)
class Paged(Generic[T]):
    """One page of a longer list, and where it sits in it."""

    items: list[T]
    total: int
    page: int
    pages: int


def _pages(total: int, asked: int) -> tuple[int, int]:
    """The number of pages of ``total`` items, and the page shown (the last one past the end)."""
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return pages, min(asked, pages)


# -- the list of models --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelQuery:
    """The models list's filters, as its form sends them."""

    text: str | None = None
    owner: str | None = None
    page: int = 1

    @classmethod
    def parse(cls, values: dict[str, str]) -> ModelQuery:
        text = (values.get("q") or "").strip() or None
        if text is not None and len(text) > 200:
            raise MlshipError(f"q: at most 200 characters, got {len(text)}")
        owner = (values.get("owner") or "").strip() or None
        for key, value in (("q", text), ("owner", owner)):
            if value is not None and "\x00" in value:
                raise MlshipError(f"{key}: cannot contain the NUL character")
        return cls(text, owner, page_number(values, "page"))

    def params(self, **changes: Any) -> dict[str, str]:
        """The query as request parameters (for the pager's links)."""
        values = {"q": self.text or "", "owner": self.owner or "", "page": str(self.page)}
        values.update({key: str(value) for key, value in changes.items()})
        return {key: value for key, value in values.items() if value and value != "1"}


@dataclass(frozen=True)
class ModelRow:
    """One line of the models list."""

    name: str
    owner: str
    tags: dict[str, Any]
    versions: int
    latest: int | None
    production: int | None
    staging: tuple[int, ...]
    last_change: datetime | None


@dataclass(frozen=True)
class ModelList:
    found: Paged[ModelRow]
    owners: list[str] = field(default_factory=list)


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find_models(workspace: Workspace, query: ModelQuery) -> ModelList:
    """The page of models ``query`` asks for, by name, with what each has in production and
    staging and when it last changed."""
    model = tables.RegisteredModel
    where: list[ColumnElement[bool]] = []
    if query.text:
        where.append(func.lower(model.name).like(_like(query.text), escape="\\"))
    if query.owner:
        where.append(model.owner == query.owner)
    with workspace.metadata.transaction() as session:
        total = session.scalar(select(func.count()).select_from(model).where(*where)) or 0
        pages, page = _pages(total, query.page)
        rows = session.execute(
            select(model.id, model.name, model.owner, model.tags)
            .where(*where)
            .order_by(model.name)
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
        ids = [row.id for row in rows]
        version = tables.ModelVersion
        counts = {
            model_id: (count, latest)
            for model_id, count, latest in session.execute(
                select(version.model_id, func.count(), func.max(version.version))
                .where(version.model_id.in_(ids))
                .group_by(version.model_id)
            )
        }
        staged: dict[int, list[tuple[int, str]]] = {}
        for model_id, number, stage in session.execute(
            select(version.model_id, version.version, version.stage)
            .where(version.model_id.in_(ids), version.stage.in_(("production", "staging")))
            .order_by(version.version.desc())
        ):
            staged.setdefault(model_id, []).append((number, stage))
        event = tables.ModelEvent
        changed = dict(
            session.execute(
                select(event.model_id, func.max(event.at))
                .where(event.model_id.in_(ids))
                .group_by(event.model_id)
            ).all()
        )
        owners = sorted(set(session.scalars(select(model.owner).distinct())))
    found = []
    for row in rows:
        count, latest = counts.get(row.id, (0, None))
        stages = staged.get(row.id, [])
        found.append(
            ModelRow(
                name=row.name,
                owner=row.owner,
                tags=dict(row.tags or {}),
                versions=count,
                latest=latest,
                production=next((n for n, s in stages if s == "production"), None),
                staging=tuple(n for n, s in stages if s == "staging"),
                last_change=changed.get(row.id),
            )
        )
    return ModelList(Paged(found, total, page, pages), [owner for owner in owners if owner])


# -- a model -------------------------------------------------------------------------------------

Check = Literal["verified", "unsigned", "fails", "unchecked"]


@dataclass(frozen=True)
class Integrity:
    """Whether a version's artifact is what was registered: its signature, and (on the version's
    page) its stored bytes against the recorded checksum."""

    signature: Check
    checksum: Check = "unchecked"
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.signature == "verified" and self.checksum in ("verified", "unchecked")


def signature_check(workspace: Workspace, version: ModelVersion, name: str) -> Integrity:
    """Whether the version's signature vouches for its recorded checksum under this
    workspace's keys."""
    if not version.artifact_signature:
        detail = "not signed; `mlship models sign` signs it after checking its checksum"
        return Integrity("unsigned", detail=detail)
    try:
        what = f"model {name}:{version.version}"
        workspace.signer.verify(version.artifact_sha256, version.artifact_signature, what)
    except MlshipError as exc:
        return Integrity("fails", detail=str(exc))
    return Integrity("verified")


def integrity(workspace: Workspace, version: ModelVersion, name: str) -> Integrity:
    """The signature check, and the stored artifact hashed against the recorded checksum."""
    signed = signature_check(workspace, version, name)
    try:
        data = workspace.artifacts.get_bytes(version.artifact_sha256)
    except (MlshipError, OSError) as exc:
        return Integrity(signed.signature, "fails", f"the artifact cannot be read: {exc}")
    if hashlib.sha256(data).hexdigest() != version.artifact_sha256:
        detail = "the stored artifact does not match its recorded checksum"
        return Integrity(signed.signature, "fails", detail)
    return Integrity(signed.signature, "verified", signed.detail)


@dataclass(frozen=True)
class VersionRow:
    version: ModelVersion
    check: Integrity


@dataclass(frozen=True)
class ModelPage:
    """Everything the model page shows."""

    model: entities.RegisteredModel
    versions: Paged[VersionRow]
    history: Paged[ModelEvent]
    pending: list[PromotionRequest]
    production: int | None
    staging: list[int]


def _model_row(session: Any, name: str) -> tables.RegisteredModel:
    from mlship.registry.rows import model_row

    return model_row(session, name)


def model_page(workspace: Workspace, name: str, versions_page: int, history_page: int) -> ModelPage:
    """The model ``name`` with one page of its versions (newest first) and one of its history
    (newest first), its pending promotion requests and what holds production and staging."""
    version, event = tables.ModelVersion, tables.ModelEvent
    with workspace.metadata.transaction() as session:
        row = _model_row(session, name)
        model = entities.from_row(entities.RegisteredModel, row, depth=0)
        count = session.scalar(select(func.count()).where(version.model_id == row.id)) or 0
        pages, page = _pages(count, versions_page)
        shown = [
            entities.from_row(ModelVersion, found, depth=0)
            for found in session.scalars(
                select(version)
                .where(version.model_id == row.id)
                .order_by(version.version.desc())
                .limit(PAGE_SIZE)
                .offset((page - 1) * PAGE_SIZE)
            )
        ]
        staged = session.execute(
            select(version.version, version.stage).where(
                version.model_id == row.id, version.stage.in_(("production", "staging"))
            )
        ).all()
        events = session.scalar(select(func.count()).where(event.model_id == row.id)) or 0
        history_pages, history_at = _pages(events, history_page)
        history = [
            entities.from_row(ModelEvent, found)
            for found in session.scalars(
                select(event)
                .where(event.model_id == row.id)
                .order_by(event.id.desc())
                .limit(PAGE_SIZE)
                .offset((history_at - 1) * PAGE_SIZE)
            )
        ]
        request = tables.PromotionRequest
        pending = [
            entities.from_row(PromotionRequest, found)
            for found in session.scalars(
                select(request)
                .where(request.model_id == row.id, request.status == "pending")
                .order_by(request.id)
            )
        ]
    rows = [VersionRow(v, signature_check(workspace, v, name)) for v in shown]
    production = next((n for n, stage in staged if stage == "production"), None)
    return ModelPage(
        model,
        Paged(rows, count, page, pages),
        Paged(history, events, history_at, history_pages),
        pending,
        production,
        sorted((n for n, stage in staged if stage == "staging"), reverse=True),
    )


def event_why(event: ModelEvent) -> str:
    """Why a change was made, as its author said (a reason or a note), if they did."""
    for key in ("reason", "note"):
        if event.details.get(key):
            return str(event.details[key])
    return ""


def event_details(event: ModelEvent) -> str:
    """The rest of an event's details, as ``key=value`` pairs (the page links the request)."""
    shown = {k: v for k, v in event.details.items() if k not in ("reason", "note", "request")}
    return ", ".join(f"{key}={value}" for key, value in shown.items())


# -- a version -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineageNode:
    """One step of where a version came from: a source, the dataset, the run, the version."""

    kind: Literal["source", "dataset", "run", "version"]
    label: str
    detail: str
    href: str | None = None


@dataclass(frozen=True)
class Lineage:
    """The version's lineage as a graph: its nodes, and edges between them by index."""

    nodes: list[LineageNode]
    edges: list[tuple[int, int]]


def _source_node(record: Any) -> LineageNode:
    if not isinstance(record, dict):
        return LineageNode("source", "source", mask_text(str(record)))
    try:
        source = lineage_from_json(record)
    except MlshipError:
        return LineageNode("source", str(record.get("name", "source")), mask_text(str(record)))
    rows = f"{source.rows:,} rows"
    if source.kind == "file":
        detail = f"{source.format} file {source.path}, {rows}, sha256 {source.sha256[:12]}"
    elif source.kind == "query":
        detail = f"query on {source.url}: {source.query} ({rows})"
    else:
        detail = f"stream {source.stream} at {source.where}, {rows} until {source.until}"
    return LineageNode("source", source.name, mask_text(detail))


def lineage(prefix: str, version: ModelVersion, name: str, run: Run) -> Lineage:
    """Sources -> dataset -> run -> version, from what the run recorded of its dataset."""
    nodes: list[LineageNode] = []
    edges: list[tuple[int, int]] = []
    dataset = run.dataset
    if dataset is not None:
        nodes.extend(_source_node(source) for source in dataset.sources or [])
        detail = (
            f"{dataset.n_rows:,} rows × {dataset.n_columns} columns, "
            f"{dataset.n_quarantined} quarantined, validated {dataset.created_at:%Y-%m-%d %H:%M}"
        )
        nodes.append(LineageNode("dataset", f"dataset {dataset.data_hash[:12]}", detail))
        edges.extend((index, len(nodes) - 1) for index in range(len(nodes) - 1))
    else:
        detail = "the run recorded no dataset row"
        nodes.append(LineageNode("dataset", f"dataset {version.dataset_hash[:12]}", detail))
    dataset_at = len(nodes) - 1
    run_detail = (
        f"{run.pipeline}, {run.status}, started {run.started_at:%Y-%m-%d %H:%M} by {run.user}"
    )
    nodes.append(LineageNode("run", f"run {run.id[:8]}", run_detail, f"{prefix}/runs/{run.id}"))
    edges.append((dataset_at, len(nodes) - 1))
    detail = f"{version.estimator.rsplit('.', 1)[-1]}, {version.stage}"
    href = f"{prefix}/models/{quote(name, safe='')}/versions/{version.version}"
    nodes.append(LineageNode("version", f"{name}:{version.version}", detail, href))
    edges.append((len(nodes) - 2, len(nodes) - 1))
    return Lineage(nodes, edges)


_COLUMNS = {"source": 0, "dataset": 1, "run": 2, "version": 3}
_COLOURS = {"source": "#5b8def", "dataset": "#2e9e6b", "run": "#c2781b", "version": "#8d5bd6"}


def lineage_chart(found: Lineage) -> Chart:
    """The lineage as an ECharts graph: one column per step, left to right."""
    heights: dict[str, int] = {}
    for node in found.nodes:
        heights[node.kind] = heights.get(node.kind, 0) + 1
    placed: dict[str, int] = {}
    data = []
    for index, node in enumerate(found.nodes):
        row = placed.get(node.kind, 0)
        placed[node.kind] = row + 1
        middle = (heights[node.kind] - 1) / 2
        data.append(
            {
                "id": str(index),
                "name": node.label,
                "x": _COLUMNS[node.kind] * 240,
                "y": (row - middle) * 70,
                "symbolSize": 18,
                "itemStyle": {"color": _COLOURS[node.kind]},
                "value": node.detail,
            }
        )
    options = {
        "animation": False,
        "tooltip": {"formatter": "{b}: {c}"},
        "series": [
            {
                "type": "graph",
                "layout": "none",
                "roam": False,
                "label": {"show": True, "position": "bottom"},
                "edgeSymbol": ["none", "arrow"],
                "edgeSymbolSize": 9,
                "lineStyle": {"width": 1.5, "opacity": 0.8},
                "data": data,
                "links": [{"source": str(a), "target": str(b)} for a, b in found.edges],
            }
        ],
    }
    sources = sum(1 for node in found.nodes if node.kind == "source")
    description = (
        f"{sources} source{'' if sources == 1 else 's'} into the dataset, "
        "the run that trained on it, and this version"
    )
    return Chart("Lineage", description, options)


@dataclass(frozen=True)
class VersionPage:
    """Everything the version page shows."""

    name: str
    version: ModelVersion
    run: Run
    notes: list[Note]
    check: Integrity
    lineage: Lineage
    pending: PromotionRequest | None
    production: int | None
    against: int | None = None
    diff: VersionDiff | None = None

    @property
    def metric_names(self) -> list[str]:
        return sorted({key for values in self.version.metrics.values() for key in values})

    @property
    def splits(self) -> list[str]:
        return sorted(self.version.metrics)


def version_page(
    workspace: Workspace, prefix: str, name: str, number: int, against: int | None
) -> VersionPage:
    """The version ``name:number``, and its diff against version ``against`` when asked."""
    version = workspace.catalogue.get_version(name, number)
    run = workspace.runs.get_run(version.run_id)
    notes = workspace.registry.version_notes(name, number)
    request = tables.PromotionRequest
    with workspace.metadata.transaction() as session:
        row = _model_row(session, name)
        production = session.scalar(
            select(tables.ModelVersion.version).where(
                tables.ModelVersion.model_id == row.id,
                tables.ModelVersion.stage == "production",
            )
        )
        waiting = session.scalar(
            select(request).where(
                request.model_id == row.id,
                request.version == number,
                request.status == "pending",
            )
        )
        pending = None if waiting is None else entities.from_row(PromotionRequest, waiting)
    diff = None
    if against is not None:
        other = workspace.catalogue.get_version(name, against)
        diff = diff_versions(workspace.runs, other, version)
    return VersionPage(
        name=name,
        version=version,
        run=run,
        notes=notes,
        check=integrity(workspace, version, name),
        lineage=lineage(prefix, version, name, run),
        pending=pending,
        production=production,
        against=against,
        diff=diff,
    )


def changed_rows(diff: VersionDiff, everything: bool) -> Sequence[Any]:
    """The rows of a diff to show: those that differ, or all of them."""
    return diff.rows if everything else diff.changed()
