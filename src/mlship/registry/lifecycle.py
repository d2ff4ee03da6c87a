"""The life of a model version: stages, review before production, rollback, tags and history.

A version is in one stage: ``none`` (just registered), ``staging``, ``production`` or
``archived``; a model has at most one version in production. Moving to staging or archiving is
immediate. Production takes two people: one *requests* the promotion, another *approves* it
(four eyes); the approval moves the version to production and archives the one it replaces.
``rollback`` puts back the version that was in production before the current one, in one
command and without review, because it is what someone does while production is failing; it is
recorded like everything else. Before an approval, people talk: comments, requests for changes
and objections (:mod:`mlship.registry.reviews`); an open objection or an unanswered request for
changes holds the approval.

Every change (registration, stage moves, requests and decisions, tags, descriptions) appends a
:class:`~mlship.store.tables.ModelEvent` with who and when, in the same transaction as the change
itself, so the history never disagrees with the state. The acting user is never an argument: it
is the workspace's user, or inside the tracking server the request's token's user
(:func:`~mlship.store.audit.acting_user`), so the rules between people below are decided here,
where the store is, and a client of the server cannot claim to be someone else.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mlship.errors import MlshipError, NotFoundError
from mlship.registry.reviews import SqlReviews, approval_block
from mlship.registry.rows import model_row as _model
from mlship.registry.rows import pending_request as _pending
from mlship.registry.rows import record as _record
from mlship.registry.rows import storable_texts as _storable
from mlship.registry.rows import version_row as _version
from mlship.store import entities
from mlship.store.audit import acting_user
from mlship.store.metadata import MetadataStore, note_text
from mlship.store.registry import STAGES, Change, ReviewError, Stage
from mlship.store.tables import (
    ModelEvent,
    ModelVersion,
    Note,
    PromotionRequest,
    RegisteredModel,
    utcnow,
)


class SqlRegistry(SqlReviews):
    """The :class:`~mlship.store.registry.Registry` over the metadata store's database;
    each command is a single transaction. The review steps (comments, requests for changes,
    objections) are :class:`~mlship.registry.reviews.SqlReviews`'."""

    def __init__(self, metadata: MetadataStore, user: str) -> None:
        """``user`` acts when no request of the tracking server names someone else."""
        self.metadata = metadata
        self.user = user

    @property
    def _user(self) -> str:
        return acting_user(self.user)

    # -- stages -------------------------------------------------------------------------------

    def set_stage(self, name: str, version: int, stage: Stage, reason: str | None = None) -> Change:
        """Move a version to ``staging``, ``archived`` or back to ``none`` at once.

        Production is refused here: it needs :meth:`request_promotion` and :meth:`approve`.
        """
        user = self._user
        _check_stage(stage)
        _storable(reason=reason)
        if stage == "production":
            raise ReviewError(
                f"{name}:{version} needs a review to reach production: `mlship models promote "
                f"{name}:{version} --to production` asks for it, and someone else approves"
            )
        with self.metadata.transaction() as session:
            model = _model(session, name, lock=True)
            found = _version(session, model, version)
            before = found.stage
            if before == stage:
                raise MlshipError(f"{name}:{version} is already in {stage}")
            found.stage = stage
            _record(session, model, version, "stage", user, before, stage, reason=reason)
            return Change(name, version, "stage", before, stage)

    def request_promotion(self, name: str, version: int, reason: str | None = None) -> Change:
        """Ask for ``name:version`` to go to production; someone else approves."""
        user = self._user
        _storable(reason=reason)
        with self.metadata.transaction() as session:
            model = _model(session, name, lock=True)
            found = _version(session, model, version)
            if found.stage == "production":
                raise MlshipError(f"{name}:{version} is already in production")
            if found.stage == "archived":
                raise MlshipError(
                    f"{name}:{version} is archived; move it to staging first if it should serve"
                )
            pending = _pending(session, model, version)
            if pending is not None:
                raise ReviewError(
                    f"{name}:{version} already has a pending request (#{pending.id}, by "
                    f"{pending.requested_by}); it waits for an approval"
                )
            request = PromotionRequest(
                model_id=model.id, version=version, requested_by=user, reason=reason
            )
            session.add(request)
            session.flush()
            _record(
                session,
                model,
                version,
                "promotion requested",
                user,
                found.stage,
                "production",
                reason=reason,
                request=request.id,
            )
            return Change(name, version, "promotion requested", request_id=request.id)

    def approve(self, name: str, version: int, note: str | None = None) -> Change:
        """Approve the pending request of ``name:version``: it goes to production and the
        version it replaces is archived. The approver must not be the requester."""
        user = self._user
        _storable(note=note)
        with self.metadata.transaction() as session:
            model = _model(session, name, lock=True)
            found = _version(session, model, version)
            request = _pending(session, model, version)
            if request is None:
                raise ReviewError(
                    f"{name}:{version} has no pending promotion request; "
                    f"`mlship models promote {name}:{version} --to production` makes one"
                )
            if request.requested_by == user:
                raise ReviewError(
                    f"{user} requested the promotion of {name}:{version} and cannot also approve "
                    "it: production needs a second person"
                )
            blocked = approval_block(session, model, version, request)
            if blocked is not None:
                raise ReviewError(blocked)
            request.status, request.decided_by = "approved", user
            request.decided_at, request.note = utcnow(), note
            _record(session, model, version, "approved", user, note=note, request=request.id)
            before = found.stage
            replaced = _to_production(session, model, found, user, "promoted", request.id)
            return Change(name, version, "promoted", before, "production", replaced, request.id)

    def reject(self, name: str, version: int, note: str | None = None) -> Change:
        """Turn down the pending request of ``name:version``: a decision on someone else's
        request (the requester withdraws instead, which says what happened)."""
        user = self._user
        _storable(note=note)
        with self.metadata.transaction() as session:
            model = _model(session, name, lock=True)
            _version(session, model, version)
            request = _pending(session, model, version)
            if request is None:
                raise ReviewError(f"{name}:{version} has no pending promotion request")
            if request.requested_by == user:
                raise ReviewError(
                    f"{user} requested the promotion of {name}:{version} and cannot also reject "
                    f"it; `mlship models withdraw {name}:{version}` takes the request back"
                )
            return _decide(session, model, version, request, "rejected", user, note)

    def withdraw(self, name: str, version: int, note: str | None = None) -> Change:
        """Take back one's own pending request of ``name:version``."""
        user = self._user
        _storable(note=note)
        with self.metadata.transaction() as session:
            model = _model(session, name, lock=True)
            _version(session, model, version)
            request = _pending(session, model, version)
            if request is None or request.requested_by != user:
                raise ReviewError(
                    f"{user} has no pending promotion request for {name}:{version}"
                    + ("" if request is None else f" (#{request.id} is {request.requested_by}'s)")
                )
            return _decide(session, model, version, request, "withdrawn", user, note)

    def rollback(self, name: str, reason: str | None = None) -> Change:
        """Put back the version that was in production before the current one."""
        user = self._user
        _storable(reason=reason)
        with self.metadata.transaction() as session:
            model = _model(session, name, lock=True)
            current = session.scalar(
                select(ModelVersion).where(
                    ModelVersion.model_id == model.id, ModelVersion.stage == "production"
                )
            )
            if current is None:
                raise MlshipError(f"{name} has no version in production to roll back")
            earlier = _previous_production(session, model, current.version)
            if earlier is None:
                raise MlshipError(
                    f"{name}:{current.version} is the first version {name} had in production; "
                    "there is nothing to roll back to"
                )
            target = _version(session, model, earlier)
            before = target.stage
            _to_production(session, model, target, user, "rollback", None, reason=reason)
            return Change(name, earlier, "rollback", before, "production", current.version)

    # -- tags, descriptions, history ------------------------------------------------------------

    def tag(self, name: str, version: int | None, tags: dict[str, str | None]) -> Change:
        """Set tags (a ``None`` value removes the tag) on a model or one of its versions."""
        user = self._user
        _storable(**{f"tag {key!r}": f"{key}{value or ''}" for key, value in tags.items()})
        with self.metadata.transaction() as session:
            model = _model(session, name, lock=True)
            target: RegisteredModel | ModelVersion = (
                model if version is None else _version(session, model, version)
            )
            updated = dict(target.tags or {})
            for key, value in tags.items():
                if value is None:
                    updated.pop(key, None)
                else:
                    updated[key] = value
            target.tags = updated
            _record(session, model, version, "tagged", user, tags=tags)
            return Change(name, version, "tagged")

    def describe(self, name: str, version: int | None, text: str) -> Change:
        """Set the description of a model or of one of its versions."""
        user = self._user
        _storable(description=text)
        with self.metadata.transaction() as session:
            model = _model(session, name, lock=True)
            target: RegisteredModel | ModelVersion = (
                model if version is None else _version(session, model, version)
            )
            target.description = text
            _record(session, model, version, "described", user)
            return Change(name, version, "described")

    def set_owner(self, name: str, owner: str) -> Change:
        """Hand model ``name`` over to ``owner``; the history says who did it and from whom."""
        user = self._user
        _storable(owner=owner)
        owner = owner.strip()
        if not owner:
            raise MlshipError("an owner needs a name")
        if len(owner) > 200:
            raise MlshipError(f"owner {owner[:40]!r}...: at most 200 characters")
        with self.metadata.transaction() as session:
            model = _model(session, name, lock=True)
            before = model.owner
            if before == owner:
                raise MlshipError(f"{name} is already owned by {owner}")
            model.owner = owner
            _record(session, model, None, "owner", user, previous=before, owner=owner)
            return Change(name, None, "owner")

    def add_note(self, name: str, version: int, body: str) -> entities.Note:
        """Append a markdown note by the acting user to ``name:version``."""
        user = self._user
        _storable(note=body)
        with self.metadata.transaction() as session:
            model = _model(session, name, lock=True)
            found = _version(session, model, version)
            note = Note(
                target_kind="version", target_id=str(found.id), author=user, body=note_text(body)
            )
            session.add(note)
            session.flush()
            _record(session, model, version, "noted", user, note=note.id)
            return entities.from_row(entities.Note, note)

    def version_notes(self, name: str, version: int) -> list[entities.Note]:
        """The notes on ``name:version``, oldest first."""
        with self.metadata.transaction() as session:
            found = _version(session, _model(session, name), version)
            query = (
                select(Note)
                .where(Note.target_kind == "version", Note.target_id == str(found.id))
                .order_by(Note.id)
            )
            return [entities.from_row(entities.Note, row) for row in session.scalars(query)]

    def record_signature(self, name: str, version: int, signature: str) -> Change:
        """Sign a version registered before artifacts were signed (never replaces a signature:
        a version whose signature fails is refused, not re-signed)."""
        user = self._user
        with self.metadata.transaction() as session:
            model = _model(session, name, lock=True)
            found = _version(session, model, version)
            if found.artifact_signature is not None:
                raise MlshipError(f"{name}:{version} is already signed")
            found.artifact_signature = signature
            _record(session, model, version, "signed", user)
        return Change(name, version, "signed")

    def history(self, name: str) -> list[entities.ModelEvent]:
        """Every change of a model, oldest first."""
        with self.metadata.transaction() as session:
            model = _model(session, name)
            query = (
                select(ModelEvent).where(ModelEvent.model_id == model.id).order_by(ModelEvent.id)
            )
            return [entities.from_row(entities.ModelEvent, row) for row in session.scalars(query)]

    def requests(self, name: str) -> list[entities.PromotionRequest]:
        """The promotion requests of a model and their decisions, oldest first."""
        with self.metadata.transaction() as session:
            model = _model(session, name)
            query = (
                select(PromotionRequest)
                .where(PromotionRequest.model_id == model.id)
                .order_by(PromotionRequest.id)
            )
            found = session.scalars(query)
            return [entities.from_row(entities.PromotionRequest, row) for row in found]

    def in_stage(self, name: str, stage: Stage) -> entities.ModelVersion:
        """The version of ``name`` in ``stage`` (the newest one, for stages that hold several)."""
        _check_stage(stage)
        with self.metadata.transaction() as session:
            model = _model(session, name)
            found = session.scalar(
                select(ModelVersion)
                .where(ModelVersion.model_id == model.id, ModelVersion.stage == stage)
                .order_by(ModelVersion.version.desc())
                .limit(1)
                .options(selectinload(ModelVersion.model))
            )
            if found is None:
                raise NotFoundError(f"model {name!r} has no version in {stage}")
            return entities.from_row(entities.ModelVersion, found)


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise MlshipError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")


def _decide(
    session: Session,
    model: RegisteredModel,
    version: int,
    request: PromotionRequest,
    action: str,
    user: str,
    note: str | None,
) -> Change:
    """Close ``request`` as ``action`` (rejected, withdrawn) by ``user``, in the history too."""
    request.status, request.decided_by = action, user
    request.decided_at, request.note = utcnow(), note
    _record(session, model, version, action, user, note=note, request=request.id)
    return Change(model.name, version, action, request_id=request.id)


def _to_production(
    session: Session,
    model: RegisteredModel,
    version: ModelVersion,
    user: str,
    action: str,
    request: int | None,
    reason: str | None = None,
) -> int | None:
    """Make ``version`` the production one; the current one is archived. Its number or None."""
    current = session.scalar(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.stage == "production"
        )
    )
    replaced = None
    if current is not None and current.id != version.id:
        current.stage = "archived"
        replaced = current.version
        _record(session, model, current.version, "archived", user, "production", "archived")
    before = version.stage
    version.stage = "production"
    _record(
        session,
        model,
        version.version,
        action,
        user,
        before,
        "production",
        reason=reason,
        request=request,
        replaced=replaced,
    )
    return replaced


def _previous_production(session: Session, model: RegisteredModel, current: int) -> int | None:
    """The version that entered production most recently before ``current`` did."""
    entries = session.scalars(
        select(ModelEvent)
        .where(ModelEvent.model_id == model.id, ModelEvent.to_stage == "production")
        .where(ModelEvent.action.in_(("promoted", "rollback")))
        .order_by(ModelEvent.id.desc())
    )
    seen_current = False
    for event in entries:
        if event.version == current and not seen_current:
            seen_current = True
            continue
        if seen_current and event.version != current:
            return event.version
    return None
