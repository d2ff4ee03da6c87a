"""What the review pages read: one promotion request with everything a reviewer weighs (the
version's metrics against production, the verdicts, what holds the approval, the comments in
threads), and one page of the open requests of every model with what blocks each.

The pages only read here; every step a form sends goes through the registry
(:mod:`mlship.registry.reviews`, :mod:`mlship.registry.lifecycle`), which decides, records the
history and writes the audit log. :meth:`RequestView.steps` says which forms to show a viewer,
from the same rules by name and the API's roles, so nobody is offered a step the registry would
refuse them for who they are; what the registry refuses for the state of the review (an open
objection) is still offered to those who may take it, and refused with the reason.

Every query is by primary key or an index: requests by ``(status, id)``, reviews by
``(model_id, version)``, comments by their target, versions by ``(model_id, version)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from mlship.errors import MlshipError, NotFoundError
from mlship.registry.reviews import CHANGES, OBJECTION
from mlship.store import entities
from mlship.store.accounts import Role
from mlship.store.entities import ModelVersion, Note, PromotionRequest, Review
from mlship.store.tables import ModelEvent as EventRow
from mlship.store.tables import ModelVersion as VersionRow
from mlship.store.tables import Note as NoteRow
from mlship.store.tables import PromotionRequest as RequestRow
from mlship.store.tables import RegisteredModel as ModelRow
from mlship.store.tables import Review as ReviewRow
from mlship.ui.access import Viewer
from mlship.workspace import Workspace

PAGE_SIZE = 50
MAX_METRICS = 12
"""The metrics compared on a request's page (the holdout split's, else cross-validation's)."""

STEPS: dict[str, Role] = {
    "comment": "scientist",
    "changes": "scientist",
    "object": "scientist",
    "withdraw-objection": "scientist",
    "rerequest": "scientist",
    "withdraw": "scientist",
    "approve": "reviewer",
    "reject": "reviewer",
    "overrule": "admin",
}
"""Each step a form of the request page sends, and the role the API asks for it."""


@dataclass(frozen=True)
class MetricRow:
    """One metric of the requested version beside the production version's."""

    name: str
    value: float | None
    production: float | None

    @property
    def delta(self) -> float | None:
        if self.value is None or self.production is None:
            return None
        return self.value - self.production


@dataclass(frozen=True)
class Thread:
    """A comment and the replies to it, each a thread of its own."""

    note: Note
    replies: tuple[Thread, ...] = ()


@dataclass(frozen=True)
class RequestView:
    """A promotion request as its page shows it."""

    model: str
    request: PromotionRequest
    version: ModelVersion
    production: ModelVersion | None
    """What the version is weighed against: the one in production now when it is another, or
    for an approved request the version its approval replaced."""
    replaced: bool
    metrics: list[MetricRow]
    split: str | None
    reviews: list[Review]
    """The verdicts given on this request, and the objections to the version from earlier
    requests that are still open (they hold this one too)."""
    thread: list[Thread]
    version_thread: list[Thread]
    newest: bool
    """Whether this is the version's newest request (where new comments on a request go)."""

    @property
    def pending(self) -> bool:
        return self.request.status == "pending"

    @property
    def objections(self) -> list[Review]:
        """The open objections to the version: each blocks the approval."""
        return [r for r in self.reviews if r.verdict == OBJECTION and r.status == "open"]

    @property
    def changes(self) -> list[Review]:
        """The open requests for changes on this request: the approval waits for the answer."""
        return [
            r
            for r in self.reviews
            if r.verdict == CHANGES and r.status == "open" and r.request_id == self.request.id
        ]

    @property
    def blocked(self) -> bool:
        return self.pending and bool(self.objections or self.changes)

    def steps(self, viewer: Viewer) -> frozenset[str]:
        """The forms to show ``viewer``: their role allows the step and the rules by name do
        not exclude them (the requester neither reviews nor decides their own request)."""
        user = viewer.identity.user
        allowed = {step for step, role in STEPS.items() if viewer.may(role)}
        shown: set[str] = set()
        if self.pending or self.newest:
            shown.add("comment")
        if self.pending:
            requester = self.request.requested_by == user
            if requester:
                shown.add("withdraw")
                if self.changes:
                    shown.add("rerequest")
            else:
                shown.update(("approve", "reject"))
                if not any(r.author == user for r in self.changes):
                    shown.add("changes")
                if not any(r.author == user for r in self.objections):
                    shown.add("object")
        if any(r.author == user for r in self.objections):
            shown.add("withdraw-objection")
        if any(r.author != user for r in self.objections) and not (
            self.pending and self.request.requested_by == user
        ):
            shown.add("overrule")
        return frozenset(shown & allowed)


@dataclass(frozen=True)
class OpenRequest:
    """One line of the list of open requests."""

    model: str
    request: PromotionRequest
    objections: list[Review]
    changes: list[Review]

    @property
    def blocked(self) -> bool:
        return bool(self.objections or self.changes)


@dataclass(frozen=True)
class ReviewQuery:
    """The list's filters, as its form sends them."""

    model: str | None = None
    page: int = 1

    @classmethod
    def parse(cls, values: dict[str, str]) -> ReviewQuery:
        """The query of a request's parameters; a bad value is a clear error naming it."""
        page_text = values.get("page") or "1"
        if not page_text.isdigit() or int(page_text) < 1 or len(page_text) > 9:
            raise MlshipError(f"page: expected a page number from 1, got {page_text!r}")
        model = (values.get("model") or "").strip() or None
        if model is not None and (len(model) > 200 or "\x00" in model):
            raise MlshipError("model: expected a model's name (at most 200 characters, no NUL)")
        return cls(model=model, page=int(page_text))

    def params(self, **changes: str | int) -> dict[str, str]:
        values = {"model": self.model or "", "page": str(self.page)}
        values.update({key: str(value) for key, value in changes.items()})
        return {key: value for key, value in values.items() if value and value != "1"}


@dataclass(frozen=True)
class OpenPage:
    """One page of open requests and where it sits among all of them."""

    rows: list[OpenRequest]
    total: int
    page: int
    pages: int
    models: list[str] = field(default_factory=list)


def parse_id(text: str) -> int:
    """A request's number from a path; anything else is a 404 naming it."""
    if not text.isdigit() or len(text) > 12 or int(text) < 1:
        raise NotFoundError(f"no promotion request #{text[:40]!r}: expected a request number")
    return int(text)


def request_view(workspace: Workspace, name: str, request_id: int) -> RequestView:
    """Promotion request ``request_id`` of model ``name``; 404 if the model has no such one."""
    if len(name) > 200 or "\x00" in name:  # no model has such a name; PostgreSQL refuses NUL
        raise NotFoundError(f"no model named {name[:200]!r}")
    with workspace.metadata.transaction() as session:
        model = session.scalar(select(ModelRow).where(ModelRow.name == name))
        if model is None:
            raise NotFoundError(f"no model named {name[:200]!r}")
        row = session.get(RequestRow, request_id)
        if row is None or row.model_id != model.id:
            raise NotFoundError(f"model {name!r} has no promotion request #{request_id}")
        request = entities.from_row(PromotionRequest, row)
        version_row = _version(session, model.id, request.version)
        serving = session.scalar(
            select(VersionRow).where(
                VersionRow.model_id == model.id, VersionRow.stage == "production"
            )
        )
        replaced = None
        if request.status == "approved":
            serving = None
            replaced = _replaced(session, model.id, request)
            if replaced is not None:
                serving = session.scalar(
                    select(VersionRow).where(
                        VersionRow.model_id == model.id, VersionRow.version == replaced
                    )
                )
        version = entities.from_row(ModelVersion, version_row, depth=0)
        production = (
            None
            if serving is None or serving.id == version_row.id
            else entities.from_row(ModelVersion, serving, depth=0)
        )
        reviews = [
            entities.from_row(Review, r)
            for r in session.scalars(
                select(ReviewRow)
                .where(ReviewRow.model_id == model.id, ReviewRow.version == request.version)
                .order_by(ReviewRow.id)
            )
            if r.request_id == request.id or (r.verdict == OBJECTION and r.status == "open")
        ]
        newest = session.scalar(
            select(func.max(RequestRow.id)).where(
                RequestRow.model_id == model.id, RequestRow.version == request.version
            )
        )
        on_request = _notes(session, "request", str(request.id))
        on_version = _notes(session, "version", str(version_row.id))
    split, metrics = compare_metrics(version, production)
    return RequestView(
        model=name,
        request=request,
        version=version,
        production=production,
        replaced=replaced is not None and production is not None,
        metrics=metrics,
        split=split,
        reviews=reviews,
        thread=threads(on_request),
        version_thread=threads(on_version),
        newest=newest == request.id,
    )


def open_requests(workspace: Workspace, query: ReviewQuery) -> OpenPage:
    """One page of pending requests (across models, or of ``query.model``), the longest
    waiting first, each with the open objections and requests for changes that hold it."""
    with workspace.metadata.transaction() as session:
        where = [RequestRow.status == "pending"]
        if query.model is not None:
            model_id = session.scalar(select(ModelRow.id).where(ModelRow.name == query.model))
            if model_id is None:
                raise NotFoundError(f"model: no model named {query.model!r}")
            where.append(RequestRow.model_id == model_id)
        total = session.scalar(select(func.count()).select_from(RequestRow).where(*where)) or 0
        pages = max(1, math.ceil(total / PAGE_SIZE))
        found = session.execute(
            select(RequestRow, ModelRow.name)
            .join(ModelRow, ModelRow.id == RequestRow.model_id)
            .where(*where)
            .order_by(RequestRow.id)
            .offset((query.page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
        requests = [(entities.from_row(PromotionRequest, row), name) for row, name in found]
        holding = _open_reviews(session, [request for request, _ in requests])
        models = sorted(
            set(
                session.scalars(
                    select(ModelRow.name)
                    .join(RequestRow, RequestRow.model_id == ModelRow.id)
                    .where(RequestRow.status == "pending")
                    .distinct()
                    .limit(200)
                )
            )
        )
    rows = []
    for request, name in requests:
        on_version = holding.get((request.model_id, request.version), [])
        rows.append(
            OpenRequest(
                model=name,
                request=request,
                objections=[r for r in on_version if r.verdict == OBJECTION],
                changes=[
                    r for r in on_version if r.verdict == CHANGES and r.request_id == request.id
                ],
            )
        )
    return OpenPage(rows, total, query.page, pages, models)


def compare_metrics(
    version: ModelVersion, production: ModelVersion | None
) -> tuple[str | None, list[MetricRow]]:
    """The version's key metrics (holdout, else cross-validation) beside production's."""
    mine = version.metrics or {}
    split = next((s for s in ("holdout", "cv") if isinstance(mine.get(s), dict) and mine[s]), None)
    if split is None:
        return None, []
    theirs_all = {} if production is None else (production.metrics or {})
    theirs = theirs_all.get(split) if isinstance(theirs_all.get(split), dict) else {}
    rows = [
        MetricRow(str(key), _float(value), _float((theirs or {}).get(key)))
        for key, value in sorted(mine[split].items())[:MAX_METRICS]
    ]
    return split, rows


def threads(notes: list[Note]) -> list[Thread]:
    """Comments as threads: each reply under the comment it answers, in the order written; a
    reply whose parent is not among ``notes`` starts a thread of its own."""
    children: dict[int | None, list[Note]] = {}
    ids = {note.id for note in notes}
    for note in notes:
        parent = note.reply_to if note.reply_to in ids else None
        children.setdefault(parent, []).append(note)

    def build(note: Note, depth: int) -> Thread:
        below = children.get(note.id, []) if depth < 50 else []
        return Thread(note, tuple(build(child, depth + 1) for child in below))

    return [build(note, 0) for note in children.get(None, [])]


def _version(session: Session, model_id: int, number: int) -> VersionRow:
    found = session.scalar(
        select(VersionRow).where(VersionRow.model_id == model_id, VersionRow.version == number)
    )
    if found is None:
        raise NotFoundError(f"version {number} of the request is not registered")
    return found


def _replaced(session: Session, model_id: int, request: PromotionRequest) -> int | None:
    """The version the approval of ``request`` archived, as the history recorded it."""
    promoted = session.scalars(
        select(EventRow)
        .where(EventRow.model_id == model_id, EventRow.version == request.version)
        .where(EventRow.action == "promoted")
        .order_by(EventRow.id.desc())
    )
    for event in promoted:
        if (event.details or {}).get("request") == request.id:
            replaced = (event.details or {}).get("replaced")
            return replaced if isinstance(replaced, int) else None
    return None


def _notes(session: Session, kind: str, target: str) -> list[Note]:
    query = (
        select(NoteRow)
        .where(NoteRow.target_kind == kind, NoteRow.target_id == target)
        .order_by(NoteRow.id)
    )
    return [entities.from_row(Note, row) for row in session.scalars(query)]


def _open_reviews(
    session: Session, requests: list[PromotionRequest]
) -> dict[tuple[int, int], list[Review]]:
    """The open verdicts on the versions of ``requests``, by (model, version)."""
    pairs = {(r.model_id, r.version) for r in requests}
    if not pairs:
        return {}
    query = (
        select(ReviewRow)
        .where(or_(*(and_(ReviewRow.model_id == m, ReviewRow.version == v) for m, v in pairs)))
        .where(ReviewRow.status == "open")
        .order_by(ReviewRow.id)
    )
    found: dict[tuple[int, int], list[Review]] = {}
    for row in session.scalars(query):
        found.setdefault((row.model_id, row.version), []).append(entities.from_row(Review, row))
    return found


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
