"""Reviews between people behave the same on every backend: SQLite, PostgreSQL, and a server on
each.

Comments in threads, requests for changes, objections that block approval until withdrawn or
overruled, and the rules between people around them (the requester neither reviews nor overrules
on their own request). As in the registry's contract, roles are the one difference: a local store
has no roles, while a server refuses a viewer's comment and a reviewer's overrule with 403.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlship.errors import MlshipError, NotFoundError
from mlship.store import entities
from mlship.store.registry import Change, ReviewError
from mlship.workspace import Workspace
from tests.backends import Backend
from tests.contract import People, is_utc, register_model

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", "postgresql", "http-sqlite", "http-postgresql"], indirect=True
)


@pytest.fixture
def people(backend: Backend) -> People:
    return People.of(backend)


@pytest.fixture
def carol(backend: Backend, people: People) -> Workspace:
    """A second scientist, who objects."""
    found: Workspace | None = getattr(people, "carol", None)
    if found is None:
        found = backend.workspace_as("carol", "scientist")
        people.carol = found  # type: ignore[attr-defined]
    return found


def _stage(people: People, name: str, version: int) -> str:
    return str(people.admin.catalogue.get_version(name, version).stage)


def _actions(people: People, name: str, last: int) -> list[tuple[str, str]]:
    return [(e.action, e.user) for e in people.vera.registry.history(name)][-last:]


def test_comments_make_threads_on_a_version_and_its_request(people: People) -> None:
    name = register_model(people.alice, versions=2)
    first = people.alice.registry.comment(name, 1, "\nWhy **gradient boosting**?\n")
    assert isinstance(first, entities.Note)
    assert (first.author, first.body, first.target_kind, first.reply_to) == (
        "alice",
        "Why **gradient boosting**?",
        "version",
        None,
    )
    assert is_utc(first.created_at)
    with pytest.raises(ReviewError, match=f"^{name}:1 has no promotion request to comment on;"):
        people.bob.registry.comment(name, 1, "on the request", on_request=True)

    asked = people.alice.registry.request_promotion(name, 1, "better recall")
    on_request = people.bob.registry.comment(name, 1, "Seen the drift report?", on_request=True)
    assert (on_request.target_kind, on_request.target_id) == ("request", str(asked.request_id))
    reply = people.alice.registry.comment(name, 1, "Yes, green.", reply_to=on_request.id)
    assert (reply.target_kind, reply.target_id, reply.reply_to) == (
        "request",
        str(asked.request_id),
        on_request.id,
    )
    answer = people.bob.registry.comment(name, 1, "It wins on recall.", reply_to=first.id)
    assert (answer.target_kind, answer.reply_to) == ("version", first.id)
    people.bob.registry.comment(name, 2, "another version")

    thread = people.vera.registry.comments(name, 1)
    assert [c.id for c in thread] == [first.id, on_request.id, reply.id, answer.id]
    assert people.vera.registry.version_notes(name, 1) == [first, answer]
    [*_, event] = people.vera.registry.history(name)
    assert (event.action, event.user, event.version) == ("commented", "bob", 2)
    people.bob.registry.approve(name, 1)  # decided: a comment on the request goes to the newest
    late = people.bob.registry.comment(name, 1, "Approved, thanks.", on_request=True)
    assert (late.target_kind, late.target_id) == ("request", str(asked.request_id))
    commented = [e for e in people.vera.registry.history(name) if e.action == "commented"]
    assert commented[2].details == {
        "comment": reply.id,
        "reply_to": on_request.id,
        "request": asked.request_id,
    }


def test_a_reply_must_answer_a_comment_on_the_same_version(people: People) -> None:
    name = register_model(people.alice, versions=2)
    elsewhere = people.alice.registry.comment(name, 2, "on version 2")
    with pytest.raises(NotFoundError, match=rf"^{name}:1 has no comment #{elsewhere.id} to reply"):
        people.bob.registry.comment(name, 1, "answer", reply_to=elsewhere.id)
    with pytest.raises(NotFoundError, match=rf"^{name}:1 has no comment #999999 to reply to$"):
        people.bob.registry.comment(name, 1, "answer", reply_to=999999)
    with pytest.raises(MlshipError, match=r"^a note needs some text$"):
        people.bob.registry.comment(name, 1, "  \n ")
    expected = "the comment has 10001 characters; at most 10000 are allowed"
    with pytest.raises(MlshipError, match=f"^{expected}$"):
        people.bob.registry.comment(name, 1, "x" * 10_001)
    assert people.vera.registry.comments(name, 1) == []


def test_changes_requested_hold_approval_until_the_requester_asks_again(people: People) -> None:
    name = register_model(people.alice, versions=1)
    with pytest.raises(ReviewError, match=f"^{name}:1 has no pending promotion request to review$"):
        people.bob.registry.request_changes(name, 1, "add the fairness slices")
    asked = people.alice.registry.request_promotion(name, 1)
    with pytest.raises(MlshipError, match=r"^a request needs a reason: say what should change"):
        people.bob.registry.request_changes(name, 1, "   ")
    own = f"^alice requested the promotion of {name}:1 and cannot also review it;"
    with pytest.raises(ReviewError, match=own):
        people.alice.registry.request_changes(name, 1, "my own")

    review = people.bob.registry.request_changes(name, 1, " add the fairness slices ")
    assert isinstance(review, entities.Review)
    assert (review.verdict, review.author, review.reason, review.status, review.request_id) == (
        "changes requested",
        "bob",
        "add the fairness slices",
        "open",
        asked.request_id,
    )
    with pytest.raises(ReviewError, match=rf"^bob already asked for changes to {name}:1 \(#"):
        people.bob.registry.request_changes(name, 1, "again")
    blocked = (
        f"{name}:1 cannot be approved yet: bob asked for changes (#{review.id}): add the fairness "
        f"slices. alice answers and asks for a review again with `mlship models rerequest {name}:1`"
    )
    with pytest.raises(ReviewError, match=f"^{re.escape(blocked)}$"):
        people.bob.registry.approve(name, 1)
    with pytest.raises(ReviewError, match=f"^only alice, who requested the promotion of {name}:1"):
        people.bob.registry.request_review_again(name, 1)

    again = people.alice.registry.request_review_again(name, 1, "slices added to the card")
    assert again == Change(name, 1, "review requested again", request_id=asked.request_id)
    with pytest.raises(ReviewError, match=f"^nobody asked for changes to {name}:1;"):
        people.alice.registry.request_review_again(name, 1)
    assert people.bob.registry.approve(name, 1).action == "promoted"
    [answered] = people.vera.registry.reviews(name)
    assert (answered.status, answered.closed_by, answered.closing_note) == (
        "answered",
        "alice",
        "slices added to the card",
    )
    assert is_utc(answered.closed_at)
    assert _actions(people, name, 5) == [
        ("promotion requested", "alice"),
        ("changes requested", "bob"),
        ("review requested again", "alice"),
        ("approved", "bob"),
        ("promoted", "bob"),
    ]


def test_an_objection_blocks_approval_until_its_author_withdraws_it(
    people: People, carol: Workspace
) -> None:
    name = register_model(people.alice, versions=1)
    people.alice.registry.request_promotion(name, 1)
    with pytest.raises(MlshipError, match=r"^an objection needs a reason"):
        carol.registry.raise_objection(name, 1, "")
    objection = carol.registry.raise_objection(name, 1, "the holdout overlaps the training weeks")
    assert (objection.verdict, objection.author, objection.status) == ("objection", "carol", "open")
    with pytest.raises(ReviewError, match=rf"^carol already objects to {name}:1 \(#{objection.id}"):
        carol.registry.raise_objection(name, 1, "again")
    blocked = (
        f"{name}:1 cannot be approved while an objection is open: carol objects "
        f"(#{objection.id}): the holdout overlaps the training weeks. The objector withdraws it "
        f"with `mlship models objection withdraw {name}:1`, or an admin overrules it with "
        f"`mlship models objection overrule {name}:1 --reason TEXT`"
    )
    with pytest.raises(ReviewError, match=f"^{re.escape(blocked)}$"):
        people.bob.registry.approve(name, 1)
    assert _stage(people, name, 1) == "none"
    not_hers = rf"^alice has no open objection to {name}:1 \(open: #{objection.id} by carol\)$"
    with pytest.raises(ReviewError, match=not_hers):
        people.alice.registry.withdraw_objection(name, 1)

    [withdrawn] = carol.registry.withdraw_objection(name, 1, "the split was fixed in v1")
    assert (withdrawn.id, withdrawn.status, withdrawn.closed_by) == (
        objection.id,
        "withdrawn",
        "carol",
    )
    with pytest.raises(ReviewError, match=f"^carol has no open objection to {name}:1$"):
        carol.registry.withdraw_objection(name, 1)
    assert people.bob.registry.approve(name, 1).action == "promoted"
    assert _actions(people, name, 5) == [
        ("promotion requested", "alice"),
        ("objected", "carol"),
        ("objection withdrawn", "carol"),
        ("approved", "bob"),
        ("promoted", "bob"),
    ]


def test_an_objection_outlives_a_new_request_until_an_admin_overrules_it(
    people: People, carol: Workspace, backend: Backend
) -> None:
    name = register_model(people.alice, versions=1)
    people.alice.registry.request_promotion(name, 1)
    objection = carol.registry.raise_objection(name, 1, "latency doubles")
    people.alice.registry.withdraw(name, 1)
    people.alice.registry.request_promotion(name, 1)  # a new request does not clear it
    with pytest.raises(ReviewError, match=f"^{name}:1 cannot be approved while an objection"):
        people.bob.registry.approve(name, 1)
    with pytest.raises(MlshipError, match=r"^an overrule needs a reason"):
        people.admin.registry.overrule_objections(name, 1, " ")
    if backend.remote:
        refused = re.escape("bob is a reviewer; this needs the admin role or above")
        with pytest.raises(MlshipError, match=refused):
            people.bob.registry.overrule_objections(name, 1, "I say so")

    [overruled] = people.admin.registry.overrule_objections(name, 1, "the p99 budget allows it")
    assert (overruled.id, overruled.status, overruled.closed_by, overruled.closing_note) == (
        objection.id,
        "overruled",
        "admin",
        "the p99 budget allows it",
    )
    with pytest.raises(ReviewError, match=f"^{name}:1 has no open objection$"):
        people.admin.registry.overrule_objections(name, 1, "again")
    people.bob.registry.approve(name, 1)
    [*_, overrule, approved, promoted] = people.vera.registry.history(name)
    assert (overrule.action, overrule.user) == ("objection overruled", "admin")
    assert overrule.details == {
        "objection": objection.id,
        "objector": "carol",
        "reason": "the p99 budget allows it",
    }
    assert (approved.action, promoted.action) == ("approved", "promoted")


def test_the_requester_can_neither_review_nor_overrule_on_their_own_request(
    people: People, carol: Workspace
) -> None:
    name = register_model(people.admin, versions=1)
    people.admin.registry.request_promotion(name, 1)
    objection = carol.registry.raise_objection(name, 1, "no load test yet")
    own = (
        f"admin requested the promotion of {name}:1 that carol objects to (#{objection.id}) and "
        "cannot overrule the objection: another admin decides"
    )
    with pytest.raises(ReviewError, match=f"^{re.escape(own)}$"):
        people.admin.registry.overrule_objections(name, 1, "I know better")
    with pytest.raises(ReviewError, match=r"^admin requested the promotion .* cannot also review"):
        people.admin.registry.raise_objection(name, 1, "objecting to myself")
    [still] = [r for r in people.vera.registry.reviews(name) if r.id == objection.id]
    assert still.status == "open"


def test_an_admin_who_objected_withdraws_rather_than_overrules(people: People) -> None:
    name = register_model(people.alice, versions=1)
    people.alice.registry.request_promotion(name, 1)
    mine = people.admin.registry.raise_objection(name, 1, "wait for the audit")
    expected = f"^the only open objection to {name}:1 is admin's own \\(#{mine.id}\\);"
    with pytest.raises(ReviewError, match=expected):
        people.admin.registry.overrule_objections(name, 1, "never mind")


def test_every_review_step_is_in_the_audit_log(people: People, carol: Workspace) -> None:
    name = register_model(people.alice, versions=1)
    people.alice.registry.request_promotion(name, 1)
    objection = carol.registry.raise_objection(name, 1, "audited")
    entries = people.admin.audit.list(table="reviews", limit=5)
    inserted = next(
        e for e in entries if str(objection.id) in e.changes["reviews"].get("insert", [])
    )
    assert inserted.user == "carol"
    assert "model_events" in inserted.changes  # the history row, in the same transaction
    carol.registry.withdraw_objection(name, 1)
    [withdrawn, *_] = people.admin.audit.list(table="reviews", limit=1)
    assert withdrawn.user == "carol"
    assert withdrawn.changes["reviews"]["update"][str(objection.id)]["status"] == [
        "open",
        "withdrawn",
    ]


def test_a_viewer_reads_the_thread_but_comments_only_locally(
    people: People, backend: Backend
) -> None:
    name = register_model(people.alice, versions=1)
    people.alice.registry.comment(name, 1, "hello")
    if backend.remote:
        refused = re.escape("vera is a viewer; this needs the scientist role or above")
        with pytest.raises(MlshipError, match=refused):
            people.vera.registry.comment(name, 1, "me too")
    else:  # no roles locally
        people.vera.registry.comment(name, 1, "me too")
    assert people.vera.registry.comments(name, 1)[0].author == "alice"


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@settings(
    derandomize=True,
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=_TEXT, reason=_TEXT)
def test_any_comment_and_reason_come_back_as_given_or_are_refused_alike(
    people: People, body: str, reason: str
) -> None:
    name = _shared_request(people)
    if not body.strip():
        with pytest.raises(MlshipError, match=r"^a note needs some text$"):
            people.bob.registry.comment(name, 1, body, on_request=True)
    elif "\x00" in body:
        with pytest.raises(MlshipError, match=r"^a note cannot contain the NUL character"):
            people.bob.registry.comment(name, 1, body, on_request=True)
    else:
        found = people.bob.registry.comment(name, 1, body, on_request=True)
        assert found.body == body.strip("\n").rstrip()
        assert people.vera.registry.comments(name, 1)[-1] == found
    if "\x00" in reason:
        with pytest.raises(MlshipError, match=r"^the reason contains a NUL character"):
            people.bob.registry.request_changes(name, 1, reason)
    elif not reason.strip():
        with pytest.raises(MlshipError, match=r"^a request needs a reason"):
            people.bob.registry.request_changes(name, 1, reason)
    else:
        review = people.bob.registry.request_changes(name, 1, reason)
        assert review.reason == reason.strip()
        people.alice.registry.request_review_again(name, 1)


def _shared_request(people: People) -> str:
    """One pending request for the generated examples of a backend."""
    found: str | None = getattr(people, "fuzzed_request", None)
    if found is None:
        found = register_model(people.alice, versions=1)
        people.alice.registry.request_promotion(name=found, version=1)
        people.fuzzed_request = found  # type: ignore[attr-defined]
    return found


def test_an_objection_and_an_approval_at_once_never_both_land(
    people: People, carol: Workspace, backend: Backend
) -> None:
    """Each review step locks the model: the objection sees the approval (nothing pending any
    more) or the approval sees the objection, never neither."""
    if backend.remote:
        pytest.skip("the server runs the same code on the same store: the local backends tell")
    for _ in range(4):
        name = register_model(people.alice, versions=1)
        people.alice.registry.request_promotion(name, 1)
        outcomes = _at_once(
            objection=partial(carol.registry.raise_objection, name, 1, "no"),
            approval=partial(people.bob.registry.approve, name, 1),
        )
        assert list(outcomes.values()).count("done") == 1, outcomes
        if outcomes["approval"] == "done":
            assert outcomes["objection"] == f"{name}:1 has no pending promotion request to review"
            assert _stage(people, name, 1) == "production"
        else:
            assert "cannot be approved while an objection is open" in outcomes["approval"]
            assert _stage(people, name, 1) == "none"


def _at_once(**steps: Callable[[], object]) -> dict[str, str]:
    """Run ``steps`` in threads released together: each one's ``done`` or refusal."""
    barrier = threading.Barrier(len(steps))
    outcomes: dict[str, str] = {}

    def act(who: str, step: Callable[[], object]) -> None:
        barrier.wait()
        try:
            step()
            outcomes[who] = "done"
        except ReviewError as refused:
            outcomes[who] = str(refused)

    threads = [threading.Thread(target=act, args=item) for item in steps.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
