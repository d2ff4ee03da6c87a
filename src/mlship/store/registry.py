"""What the model registry does, whichever store keeps it: the :class:`Registry` protocol.

Two implementations: :class:`~mlship.registry.lifecycle.SqlRegistry` over the metadata store's
database, and :class:`~mlship.remote.registry.HttpRegistry` over a tracking server, which itself
runs the SQL one. Both hand out the frozen entities of :mod:`mlship.store.entities`, never ORM
rows, and neither takes a user: the SQL registry acts as the workspace's user (or, inside the
server, as the request's token's user), the HTTP one as its token's user. So who did something is
never a claim the caller makes, and the rules between people (the requester of a promotion may not
approve it, only the requester withdraws, a reviewer rejects, an open objection blocks approval
until its author withdraws it or an admin overrules it) are decided where the store is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from mlship.errors import MlshipError
from mlship.store.entities import ModelEvent, ModelVersion, Note, PromotionRequest, Review

Stage = Literal["none", "staging", "production", "archived"]
STAGES: tuple[Stage, ...] = ("none", "staging", "production", "archived")


class ReviewError(MlshipError):
    """A step that the review rules do not allow (self-approval, nothing pending, an open
    objection)."""


@dataclass(frozen=True)
class Change:
    """What one registry command did, for the command line to report."""

    model: str
    version: int | None
    action: str
    from_stage: str | None = None
    to_stage: str | None = None
    replaced: int | None = None
    """The version that left production because of this change, if any."""
    request_id: int | None = None


class Registry(Protocol):
    """Stages, reviews, rollback, tags, descriptions, owners, notes and history of models.

    Every change is one transaction and appends to the model's history, by the acting user.
    """

    def set_stage(self, name: str, version: int, stage: Stage, reason: str | None = None) -> Change:
        """Move a version to ``staging``, ``archived`` or back to ``none`` at once (production
        needs :meth:`request_promotion` and :meth:`approve`)."""
        ...

    def request_promotion(self, name: str, version: int, reason: str | None = None) -> Change:
        """Ask for ``name:version`` to go to production; someone else approves."""
        ...

    def approve(self, name: str, version: int, note: str | None = None) -> Change:
        """Approve someone else's pending request: the version goes to production and the one
        it replaces is archived."""
        ...

    def reject(self, name: str, version: int, note: str | None = None) -> Change:
        """Turn down someone else's pending request (a reviewer's decision)."""
        ...

    def withdraw(self, name: str, version: int, note: str | None = None) -> Change:
        """Take back one's own pending request."""
        ...

    def rollback(self, name: str, reason: str | None = None) -> Change:
        """Put back the version that was in production before the current one."""
        ...

    def tag(self, name: str, version: int | None, tags: dict[str, str | None]) -> Change:
        """Set tags (``None`` removes one) on a model (``version`` None) or a version."""
        ...

    def describe(self, name: str, version: int | None, text: str) -> Change:
        """Set the description of a model (``version`` None) or a version."""
        ...

    def set_owner(self, name: str, owner: str) -> Change:
        """Hand model ``name`` over to ``owner``."""
        ...

    def record_signature(self, name: str, version: int, signature: str) -> Change:
        """Sign a version registered before artifacts were signed (never replaces one)."""
        ...

    def add_note(self, name: str, version: int, body: str) -> Note:
        """Append a markdown note to ``name:version``."""
        ...

    def version_notes(self, name: str, version: int) -> list[Note]:
        """The notes on ``name:version``, oldest first."""
        ...

    def history(self, name: str) -> list[ModelEvent]:
        """Every change of a model, oldest first."""
        ...

    def requests(self, name: str) -> list[PromotionRequest]:
        """The promotion requests of a model and their decisions, oldest first."""
        ...

    def in_stage(self, name: str, stage: Stage) -> ModelVersion:
        """The version of ``name`` in ``stage`` (the newest, for stages that hold several)."""
        ...

    # -- reviews between people (see mlship.registry.reviews) ---------------------------------

    def comment(
        self,
        name: str,
        version: int,
        body: str,
        reply_to: int | None = None,
        on_request: bool = False,
    ) -> Note:
        """Comment on ``name:version`` (on its promotion request with ``on_request``); a reply
        (``reply_to``) is on the target of the comment it answers."""
        ...

    def comments(self, name: str, version: int) -> list[Note]:
        """The comments on ``name:version`` and on its promotion requests, oldest first."""
        ...

    def request_changes(self, name: str, version: int, reason: str) -> Review:
        """Ask for changes on someone else's pending request; approval waits for the answer."""
        ...

    def raise_objection(self, name: str, version: int, reason: str) -> Review:
        """Object to someone else's pending request; approval waits until the objection is
        withdrawn or overruled."""
        ...

    def request_review_again(self, name: str, version: int, note: str | None = None) -> Change:
        """The requester answers the requests for changes on their pending request."""
        ...

    def withdraw_objection(self, name: str, version: int, note: str | None = None) -> list[Review]:
        """Take back one's own open objection."""
        ...

    def overrule_objections(self, name: str, version: int, reason: str) -> list[Review]:
        """Overrule the open objections of others, with a reason (an admin's step)."""
        ...

    def reviews(self, name: str) -> list[Review]:
        """The requests for changes and objections of a model, oldest first."""
        ...
