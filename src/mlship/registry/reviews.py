"""Reviews between people: comments in threads, requests for changes, objections and overrules.

A promotion to production is a conversation before it is a decision. Anyone who may change the
registry comments on a version or on its promotion request, and answers another comment (a
thread). A reviewer other than the requester gives a verdict short of deciding:

- *changes requested* (with a reason): the request stays open and cannot be approved until the
  requester answers and asks for a review again, which closes the requests for changes;
- *objection* (with a reason): it holds against the version, across withdrawn and new requests,
  and blocks every approval until its author withdraws it or an admin overrules it with a reason
  of their own. The requester can neither object to nor overrule on their own request: the four
  eyes of production stay four.

Approving and rejecting stay in :mod:`mlship.registry.lifecycle`, which asks
:func:`approval_block` before anything moves. Every step appends to the model's history in the
transaction of the change (and so to the audit log, which the same transaction writes), by the
acting user, never a name the caller gives.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from mlship.errors import MlshipError, NotFoundError
from mlship.registry.rows import (
    model_row,
    pending_request,
    record,
    storable_texts,
    version_row,
)
from mlship.store import entities
from mlship.store.audit import acting_user
from mlship.store.metadata import MetadataStore, note_text
from mlship.store.registry import Change, ReviewError
from mlship.store.tables import (
    ModelVersion,
    Note,
    PromotionRequest,
    RegisteredModel,
    Review,
    utcnow,
)
from mlship.text import shorten

MAX_TEXT = 10_000
"""Characters a comment or a reason may have: a review is read by people, not a log."""

CHANGES = "changes requested"
OBJECTION = "objection"


class SqlReviews:
    """The review steps of :class:`~mlship.registry.lifecycle.SqlRegistry`; each is one
    transaction that also appends to the model's history."""

    metadata: MetadataStore
    user: str

    @property
    def _acting(self) -> str:
        return acting_user(self.user)

    # -- comments -------------------------------------------------------------------------------

    def comment(
        self,
        name: str,
        version: int,
        body: str,
        reply_to: int | None = None,
        on_request: bool = False,
    ) -> entities.Note:
        """Comment on ``name:version`` (on its promotion request with ``on_request``: the
        pending one, else the newest); a reply (``reply_to``) is on its parent's target."""
        user = self._acting
        text = bounded(note_text(body), "comment")
        with self.metadata.transaction() as session:
            model = model_row(session, name, lock=True)
            found = version_row(session, model, version)
            request: PromotionRequest | None = None
            if reply_to is not None:
                parent = _parent(session, model, found, reply_to)
                kind, target = parent.target_kind, parent.target_id
                request = session.get(PromotionRequest, int(target)) if kind == "request" else None
            elif on_request:
                request = pending_request(session, model, version) or _newest_request(
                    session, model, version
                )
                if request is None:
                    raise ReviewError(
                        f"{name}:{version} has no promotion request to comment on; "
                        f"`mlship models promote {name}:{version} --to production` makes one"
                    )
                kind, target = "request", str(request.id)
            else:
                kind, target = "version", str(found.id)
            note = Note(
                target_kind=kind, target_id=target, author=user, body=text, reply_to=reply_to
            )
            session.add(note)
            session.flush()
            record(
                session,
                model,
                version,
                "commented",
                user,
                comment=note.id,
                reply_to=reply_to,
                request=None if request is None else request.id,
            )
            return entities.from_row(entities.Note, note)

    def comments(self, name: str, version: int) -> list[entities.Note]:
        """The comments on ``name:version`` and on its promotion requests, oldest first."""
        with self.metadata.transaction() as session:
            model = model_row(session, name)
            found = version_row(session, model, version)
            query = select(Note).where(_on_version(session, model, found)).order_by(Note.id)
            return [entities.from_row(entities.Note, row) for row in session.scalars(query)]

    # -- verdicts -------------------------------------------------------------------------------

    def request_changes(self, name: str, version: int, reason: str) -> entities.Review:
        """Ask the requester of ``name:version``'s pending promotion for changes; approval
        waits until they ask for a review again."""
        return self._verdict(name, version, CHANGES, reason)

    def raise_objection(self, name: str, version: int, reason: str) -> entities.Review:
        """Object to ``name:version`` going to production: no approval until the objection is
        withdrawn by its author or overruled by an admin."""
        return self._verdict(name, version, OBJECTION, reason)

    def _verdict(self, name: str, version: int, verdict: str, reason: str) -> entities.Review:
        user = self._acting
        why = required_reason(reason, "an objection" if verdict == OBJECTION else "a request")
        ref = f"{name}:{version}"
        with self.metadata.transaction() as session:
            model = model_row(session, name, lock=True)
            version_row(session, model, version)
            request = pending_request(session, model, version)
            if request is None:
                raise ReviewError(f"{ref} has no pending promotion request to review")
            if request.requested_by == user:
                raise ReviewError(
                    f"{user} requested the promotion of {ref} and cannot also review it; "
                    f"`mlship models withdraw {ref}` takes the request back"
                )
            same = [
                r
                for r in _open(session, model, version, verdict)
                if r.author == user and (verdict == OBJECTION or r.request_id == request.id)
            ]
            if same:
                what = "objects to" if verdict == OBJECTION else "asked for changes to"
                raise ReviewError(f"{user} already {what} {ref} (#{same[0].id})")
            review = Review(
                model_id=model.id,
                version=version,
                request_id=request.id,
                verdict=verdict,
                author=user,
                reason=why,
                status="open",
            )
            session.add(review)
            session.flush()
            action = "objected" if verdict == OBJECTION else CHANGES
            record(
                session, model, version, action, user, reason=why, review=review.id,
                request=request.id,
            )  # fmt: skip
            return entities.from_row(entities.Review, review)

    def request_review_again(self, name: str, version: int, note: str | None = None) -> Change:
        """The requester answers the requests for changes on their pending request and asks
        for a review again: they close, and approval no longer waits for them."""
        user = self._acting
        note = None if note is None else bounded(note.strip(), "note") or None
        storable_texts(note=note)
        ref = f"{name}:{version}"
        with self.metadata.transaction() as session:
            model = model_row(session, name, lock=True)
            version_row(session, model, version)
            request = pending_request(session, model, version)
            if request is None:
                raise ReviewError(f"{ref} has no pending promotion request")
            if request.requested_by != user:
                raise ReviewError(
                    f"only {request.requested_by}, who requested the promotion of {ref}, asks "
                    "for a review again"
                )
            answered = [
                r for r in _open(session, model, version, CHANGES) if r.request_id == request.id
            ]
            if not answered:
                raise ReviewError(f"nobody asked for changes to {ref}; it waits for a review")
            for review in answered:
                _close(review, "answered", user, note)
            record(
                session, model, version, "review requested again", user, note=note,
                answered=[r.id for r in answered], request=request.id,
            )  # fmt: skip
            return Change(name, version, "review requested again", request_id=request.id)

    # -- objections -----------------------------------------------------------------------------

    def withdraw_objection(
        self, name: str, version: int, note: str | None = None
    ) -> list[entities.Review]:
        """Take back one's own open objection to ``name:version``."""
        user = self._acting
        note = None if note is None else bounded(note.strip(), "note") or None
        storable_texts(note=note)
        ref = f"{name}:{version}"
        with self.metadata.transaction() as session:
            model = model_row(session, name, lock=True)
            version_row(session, model, version)
            objections = _open(session, model, version, OBJECTION)
            mine = [r for r in objections if r.author == user]
            if not mine:
                others = ", ".join(f"#{r.id} by {r.author}" for r in objections)
                open_ones = f" (open: {others})" if others else ""
                raise ReviewError(f"{user} has no open objection to {ref}{open_ones}")
            for review in mine:
                _close(review, "withdrawn", user, note)
                record(
                    session, model, version, "objection withdrawn", user, objection=review.id,
                    note=note,
                )  # fmt: skip
            return [entities.from_row(entities.Review, r) for r in mine]

    def overrule_objections(self, name: str, version: int, reason: str) -> list[entities.Review]:
        """Overrule the open objections of others to ``name:version`` with a reason (an admin's
        step on a server; the requester of the promotion objected to may not)."""
        user = self._acting
        why = required_reason(reason, "an overrule")
        ref = f"{name}:{version}"
        with self.metadata.transaction() as session:
            model = model_row(session, name, lock=True)
            version_row(session, model, version)
            objections = _open(session, model, version, OBJECTION)
            if not objections:
                raise ReviewError(f"{ref} has no open objection")
            others = [r for r in objections if r.author != user]
            if not others:
                raise ReviewError(
                    f"the only open objection to {ref} is {user}'s own (#{objections[0].id}); "
                    f"`mlship models objection withdraw {ref}` takes it back"
                )
            for review in others:
                request = session.get(PromotionRequest, review.request_id)
                if request is not None and request.requested_by == user:
                    raise ReviewError(
                        f"{user} requested the promotion of {ref} that {review.author} objects "
                        f"to (#{review.id}) and cannot overrule the objection: another admin "
                        "decides"
                    )
            for review in others:
                _close(review, "overruled", user, why)
                record(
                    session, model, version, "objection overruled", user, objection=review.id,
                    objector=review.author, reason=why,
                )  # fmt: skip
            return [entities.from_row(entities.Review, r) for r in others]

    def reviews(self, name: str) -> list[entities.Review]:
        """The requests for changes and objections of a model, oldest first."""
        with self.metadata.transaction() as session:
            model = model_row(session, name)
            query = select(Review).where(Review.model_id == model.id).order_by(Review.id)
            return [entities.from_row(entities.Review, row) for row in session.scalars(query)]


def approval_block(
    session: Session, model: RegisteredModel, version: int, request: PromotionRequest
) -> str | None:
    """Why ``request`` cannot be approved now (open objections to the version, open requests
    for changes on the request), or None."""
    ref = f"{model.name}:{version}"
    objections = _open(session, model, version, OBJECTION)
    if objections:
        said = "; ".join(
            f"{r.author} objects (#{r.id}): {shorten(r.reason, 200)}" for r in objections
        )
        return (
            f"{ref} cannot be approved while an objection is open: {said}. The objector "
            f"withdraws it with `mlship models objection withdraw {ref}`, or an admin overrules "
            f"it with `mlship models objection overrule {ref} --reason TEXT`"
        )
    changes = [r for r in _open(session, model, version, CHANGES) if r.request_id == request.id]
    if changes:
        said = "; ".join(
            f"{r.author} asked for changes (#{r.id}): {shorten(r.reason, 200)}" for r in changes
        )
        return (
            f"{ref} cannot be approved yet: {said}. {request.requested_by} answers and asks for "
            f"a review again with `mlship models rerequest {ref}`"
        )
    return None


def bounded(text: str, what: str) -> str:
    """``text`` if it has at most :data:`MAX_TEXT` characters."""
    if len(text) > MAX_TEXT:
        raise MlshipError(f"the {what} has {len(text)} characters; at most {MAX_TEXT} are allowed")
    return text


def required_reason(reason: str | None, what: str) -> str:
    """The stripped reason of a review step, which may be neither missing nor empty."""
    storable_texts(reason=reason)
    text = (reason or "").strip()
    if not text:
        raise MlshipError(f"{what} needs a reason: say what should change or what is wrong")
    return bounded(text, "reason")


def _open(session: Session, model: RegisteredModel, version: int, verdict: str) -> list[Review]:
    query = (
        select(Review)
        .where(Review.model_id == model.id, Review.version == version)
        .where(Review.verdict == verdict, Review.status == "open")
        .order_by(Review.id)
    )
    return list(session.scalars(query))


def _close(review: Review, status: str, user: str, note: str | None) -> None:
    review.status, review.closed_by = status, user
    review.closed_at, review.closing_note = utcnow(), note


def _newest_request(
    session: Session, model: RegisteredModel, version: int
) -> PromotionRequest | None:
    return session.scalar(
        select(PromotionRequest)
        .where(PromotionRequest.model_id == model.id, PromotionRequest.version == version)
        .order_by(PromotionRequest.id.desc())
        .limit(1)
    )


def _on_version(
    session: Session, model: RegisteredModel, found: ModelVersion
) -> ColumnElement[bool]:
    """The notes on a version and on its promotion requests."""
    requests = session.scalars(
        select(PromotionRequest.id).where(
            PromotionRequest.model_id == model.id, PromotionRequest.version == found.version
        )
    )
    return or_(
        and_(Note.target_kind == "version", Note.target_id == str(found.id)),
        and_(Note.target_kind == "request", Note.target_id.in_([str(i) for i in requests])),
    )


def _parent(session: Session, model: RegisteredModel, found: ModelVersion, reply_to: int) -> Note:
    """The comment ``reply_to`` answers, which must be on ``found`` or on one of its requests."""
    on_version = _on_version(session, model, found)
    parent = session.scalar(select(Note).where(Note.id == reply_to, on_version))
    if parent is None:
        raise NotFoundError(f"{model.name}:{found.version} has no comment #{reply_to} to reply to")
    return parent
