"""The registry behaves the same on every backend: SQLite, PostgreSQL, and a server on each.

Method by method: what it returns (entities, never ORM rows; times aware UTC), what it refuses
and with which message (the same on every backend), who it records as acting (the workspace's
user locally, the token's user on a server; never a name the caller passes), and the rules between
people. Roles are the one legitimate difference: a local store has no roles (whoever can open the
database can change anything, so the settings' user acts unchecked), while a server refuses a
scientist's approval with 403 before its rules are consulted. Those places say so.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlship.errors import MlshipError, NotFoundError
from mlship.store import entities
from mlship.store.registry import Change, ReviewError
from tests.backends import Backend
from tests.contract import People, is_utc, register_model

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", "postgresql", "http-sqlite", "http-postgresql"], indirect=True
)


@pytest.fixture
def people(backend: Backend) -> People:
    return People.of(backend)


def _stage(people: People, name: str, version: int) -> str:
    return str(people.admin.catalogue.get_version(name, version).stage)


def _refused_role(user: str, role: str, needed: str) -> str:
    return re.escape(f"{user} is a {role}; this needs the {needed} role or above")


def test_set_stage_moves_at_once_and_is_recorded_as_the_acting_user(people: People) -> None:
    name = register_model(people.alice)
    change = people.alice.registry.set_stage(name, 1, "staging", "ready for shadow traffic")
    assert change == Change(name, 1, "stage", "none", "staging")
    assert _stage(people, name, 1) == "staging"
    [*_, event] = people.vera.registry.history(name)
    assert isinstance(event, entities.ModelEvent)
    assert (event.action, event.user, event.from_stage, event.to_stage) == (
        "stage",
        "alice",
        "none",
        "staging",
    )
    assert event.details == {"reason": "ready for shadow traffic"}
    assert is_utc(event.at)


def test_set_stage_refuses_with_the_same_messages_everywhere(people: People) -> None:
    name = register_model(people.alice, versions=1)
    registry = people.alice.registry
    registry.set_stage(name, 1, "staging")
    with pytest.raises(MlshipError, match=f"^{name}:1 is already in staging$"):
        registry.set_stage(name, 1, "staging")
    with pytest.raises(ReviewError, match=f"^{name}:1 needs a review to reach production"):
        registry.set_stage(name, 1, "production")
    with pytest.raises(MlshipError, match=r"^unknown stage 'live'; expected one of none, staging"):
        registry.set_stage(name, 1, "live")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match=f"^model '{name}' has no version 9$"):
        registry.set_stage(name, 9, "archived")
    with pytest.raises(NotFoundError, match=r"^no model named 'nobody-here' \(registered models"):
        registry.set_stage("nobody-here", 1, "archived")


def test_production_takes_a_request_and_another_persons_approval(people: People) -> None:
    name = register_model(people.alice)
    asked = people.alice.registry.request_promotion(name, 1, "better recall")
    assert (asked.action, asked.version) == ("promotion requested", 1)
    assert asked.request_id is not None
    assert _stage(people, name, 1) == "none"  # nothing moves before the approval
    with pytest.raises(ReviewError, match=f"^{name}:1 already has a pending request"):
        people.bob.registry.request_promotion(name, 1)

    done = people.bob.registry.approve(name, 1, "checked the diff")
    assert done == Change(name, 1, "promoted", "none", "production", None, asked.request_id)
    assert _stage(people, name, 1) == "production"
    with pytest.raises(ReviewError, match=f"^{name}:1 has no pending promotion request"):
        people.bob.registry.approve(name, 1)
    with pytest.raises(MlshipError, match=f"^{name}:1 is already in production$"):
        people.alice.registry.request_promotion(name, 1)

    [request] = people.vera.registry.requests(name)
    assert isinstance(request, entities.PromotionRequest)
    assert (request.status, request.requested_by, request.decided_by, request.note) == (
        "approved",
        "alice",
        "bob",
        "checked the diff",
    )
    assert request.reason == "better recall"
    assert is_utc(request.requested_at) and is_utc(request.decided_at)
    actions = [(e.action, e.user) for e in people.vera.registry.history(name)][-3:]
    assert actions == [("promotion requested", "alice"), ("approved", "bob"), ("promoted", "bob")]


def test_the_requester_may_not_approve_their_own_request(people: People) -> None:
    name = register_model(people.bob)
    people.bob.registry.request_promotion(name, 1)
    expected = f"^bob requested the promotion of {name}:1 and cannot also approve it"
    with pytest.raises(ReviewError, match=expected):
        people.bob.registry.approve(name, 1)
    assert _stage(people, name, 1) == "none"


def test_only_a_reviewer_approves_on_a_server_while_a_local_store_has_no_roles(
    people: People, backend: Backend
) -> None:
    name = register_model(people.bob)
    people.bob.registry.request_promotion(name, 1)
    if backend.remote:
        with pytest.raises(MlshipError, match=_refused_role("alice", "scientist", "reviewer")):
            people.alice.registry.approve(name, 1)
        assert _stage(people, name, 1) == "none"
    else:  # no roles locally: the settings' user is trusted
        assert people.alice.registry.approve(name, 1).action == "promoted"


def test_the_requester_withdraws_and_a_reviewer_rejects(people: People) -> None:
    name = register_model(people.alice)
    people.alice.registry.request_promotion(name, 1)
    with pytest.raises(
        ReviewError,
        match=rf"^bob has no pending promotion request for {name}:1 \(#\d+ is alice's\)$",
    ):
        people.bob.registry.withdraw(name, 1)
    withdrawn = people.alice.registry.withdraw(name, 1, "not yet")
    assert withdrawn.action == "withdrawn"
    with pytest.raises(ReviewError, match=f"^alice has no pending promotion request for {name}:1$"):
        people.alice.registry.withdraw(name, 1)  # a second time: nothing left to withdraw

    people.alice.registry.request_promotion(name, 1)
    rejected = people.bob.registry.reject(name, 1, "the drift report is red")
    assert rejected.action == "rejected"
    with pytest.raises(ReviewError, match=f"^{name}:1 has no pending promotion request$"):
        people.bob.registry.reject(name, 1)
    decided = [
        (r.status, r.requested_by, r.decided_by) for r in people.vera.registry.requests(name)
    ]
    assert decided == [("withdrawn", "alice", "alice"), ("rejected", "alice", "bob")]
    assert _stage(people, name, 1) == "none"


def test_a_requester_rejecting_their_own_request_is_told_to_withdraw_it(people: People) -> None:
    name = register_model(people.bob)
    people.bob.registry.request_promotion(name, 2)
    expected = (
        f"bob requested the promotion of {name}:2 and cannot also reject it; "
        f"`mlship models withdraw {name}:2` takes the request back"
    )
    with pytest.raises(ReviewError, match=f"^{re.escape(expected)}$"):
        people.bob.registry.reject(name, 2)
    [request] = people.vera.registry.requests(name)
    assert request.status == "pending"


def test_a_new_production_version_archives_the_old_and_rollback_restores_it(
    people: People,
) -> None:
    name = register_model(people.alice, versions=3)
    with pytest.raises(MlshipError, match=f"^{name} has no version in production to roll back$"):
        people.bob.registry.rollback(name)
    for version in (1, 2):
        people.alice.registry.request_promotion(name, version)
        approved = people.bob.registry.approve(name, version)
    assert approved.replaced == 1
    assert [_stage(people, name, v) for v in (1, 2, 3)] == ["archived", "production", "none"]

    back = people.bob.registry.rollback(name, "v2 times out")
    assert back == Change(name, 1, "rollback", "archived", "production", 2)
    assert [_stage(people, name, v) for v in (1, 2, 3)] == ["production", "archived", "none"]
    assert people.vera.registry.in_stage(name, "production").version == 1
    [*_, archived, rolled] = people.vera.registry.history(name)
    assert (archived.action, archived.version, archived.user) == ("archived", 2, "bob")
    assert (rolled.action, rolled.version, rolled.details["reason"]) == (
        "rollback",
        1,
        "v2 times out",
    )


def test_rollback_with_nothing_before_is_refused(people: People) -> None:
    name = register_model(people.alice, versions=1)
    people.alice.registry.request_promotion(name, 1)
    people.bob.registry.approve(name, 1)
    expected = f"^{name}:1 is the first version {name} had in production; there is nothing"
    with pytest.raises(MlshipError, match=expected):
        people.bob.registry.rollback(name)


def test_tags_are_set_and_removed_on_a_model_and_a_version(people: People) -> None:
    name = register_model(people.alice, versions=1)
    registry = people.alice.registry
    assert registry.tag(name, None, {"team": "growth", "tier": "1"}) == Change(name, None, "tagged")
    assert registry.tag(name, 1, {"candidate": "yes"}) == Change(name, 1, "tagged")
    registry.tag(name, None, {"tier": None, "absent": None})  # removing a missing tag is fine
    version = people.admin.catalogue.get_version(name, 1)
    assert version.tags == {"candidate": "yes"}
    assert version.model is not None and version.model.tags == {"team": "growth"}
    tagged = [e for e in people.vera.registry.history(name) if e.action == "tagged"]
    assert [(e.version, e.user, e.details["tags"]) for e in tagged] == [
        (None, "alice", {"team": "growth", "tier": "1"}),
        (1, "alice", {"candidate": "yes"}),
        (None, "alice", {"tier": None, "absent": None}),
    ]


def test_descriptions_of_a_model_and_a_version(people: People) -> None:
    name = register_model(people.alice, versions=1)
    assert people.alice.registry.describe(name, None, "Churn, monthly") == Change(
        name, None, "described"
    )
    people.alice.registry.describe(name, 1, "first *try*")
    version = people.admin.catalogue.get_version(name, 1)
    assert version.description == "first *try*"
    assert version.model is not None and version.model.description == "Churn, monthly"
    with pytest.raises(NotFoundError, match=f"^model '{name}' has no version 7$"):
        people.alice.registry.describe(name, 7, "x")


def test_a_model_changes_owner_once_per_request(people: People) -> None:
    name = register_model(people.alice, versions=1)
    assert people.alice.registry.set_owner(name, " bob ") == Change(name, None, "owner")
    with pytest.raises(MlshipError, match=f"^{name} is already owned by bob$"):
        people.alice.registry.set_owner(name, "bob")
    with pytest.raises(MlshipError, match=r"^an owner needs a name$"):
        people.alice.registry.set_owner(name, "   ")
    with pytest.raises(MlshipError, match=r"^owner 'oooo.*\.\.\.: at most 200 characters$"):
        people.alice.registry.set_owner(name, "o" * 201)
    [*_, event] = people.vera.registry.history(name)
    assert (event.action, event.user, event.details["owner"]) == ("owner", "alice", "bob")
    assert event.details["previous"] == "alice"


def test_a_signed_version_is_never_signed_again(people: People) -> None:
    name = register_model(people.admin, versions=1)
    with pytest.raises(MlshipError, match=f"^{name}:1 is already signed$"):
        people.admin.registry.record_signature(name, 1, "hmac-sha256:" + "1" * 64)
    with pytest.raises(NotFoundError, match=f"^model '{name}' has no version 4$"):
        people.admin.registry.record_signature(name, 4, "hmac-sha256:" + "1" * 64)


def test_notes_are_kept_in_order_by_their_authors(people: People) -> None:
    name = register_model(people.alice, versions=2)
    first = people.alice.registry.add_note(name, 1, "\n\nLooks **good**.\n\n")
    second = people.bob.registry.add_note(name, 1, "Agreed.")
    people.bob.registry.add_note(name, 2, "Other version.")
    assert isinstance(first, entities.Note)
    assert (first.author, first.body, first.target_kind) == ("alice", "Looks **good**.", "version")
    assert is_utc(first.created_at)
    assert people.vera.registry.version_notes(name, 1) == [first, second]
    with pytest.raises(MlshipError, match=r"^a note needs some text$"):
        people.alice.registry.add_note(name, 1, " \n ")
    with pytest.raises(NotFoundError, match=f"^model '{name}' has no version 3$"):
        people.alice.registry.version_notes(name, 3)
    [*_, event] = people.vera.registry.history(name)
    assert (event.action, event.user, event.details) == (
        "noted",
        "bob",
        {"note": event.details["note"]},
    )


def test_history_is_oldest_first_and_requests_too(people: People) -> None:
    name = register_model(people.alice, versions=2)
    people.alice.registry.set_stage(name, 2, "staging")
    people.alice.registry.request_promotion(name, 2)
    people.alice.registry.withdraw(name, 2)
    people.alice.registry.request_promotion(name, 2)
    events = people.vera.registry.history(name)
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert all(is_utc(e.at) for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)
    requests = people.vera.registry.requests(name)
    assert [r.status for r in requests] == ["withdrawn", "pending"]
    assert [r.id for r in requests] == sorted(r.id for r in requests)
    with pytest.raises(NotFoundError, match=r"^no model named 'nothing-such'"):
        people.vera.registry.history("nothing-such")
    with pytest.raises(NotFoundError, match=r"^no model named 'nothing-such'"):
        people.vera.registry.requests("nothing-such")


def test_in_stage_gives_the_newest_version_in_that_stage(people: People) -> None:
    name = register_model(people.alice, versions=3)
    with pytest.raises(NotFoundError, match=f"^model '{name}' has no version in staging$"):
        people.vera.registry.in_stage(name, "staging")
    for version in (1, 2):
        people.alice.registry.set_stage(name, version, "staging")
    found = people.vera.registry.in_stage(name, "staging")
    assert isinstance(found, entities.ModelVersion)
    assert (found.version, found.stage, found.created_by) == (2, "staging", "alice")
    assert found.model is not None and found.model.name == name
    assert is_utc(found.created_at)
    assert people.vera.registry.in_stage(name, "none").version == 3
    with pytest.raises(MlshipError, match=r"^unknown stage 'live'; expected one of none, staging"):
        people.vera.registry.in_stage(name, "live")  # type: ignore[arg-type]


def test_a_viewer_reads_but_changes_nothing_on_a_server(people: People, backend: Backend) -> None:
    name = register_model(people.alice, versions=1)
    if backend.remote:
        with pytest.raises(MlshipError, match=_refused_role("vera", "viewer", "scientist")):
            people.vera.registry.tag(name, 1, {"x": "y"})
        assert people.admin.catalogue.get_version(name, 1).tags == {}
    else:  # no roles locally
        people.vera.registry.tag(name, 1, {"x": "y"})
        assert people.admin.catalogue.get_version(name, 1).tags == {"x": "y"}


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
"""Any text JSON can carry (lone surrogates cannot be encoded), NUL and control characters too."""


@settings(
    derandomize=True,
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(tags=st.dictionaries(_TEXT, st.none() | _TEXT, max_size=4), text=_TEXT)
def test_any_tags_and_description_come_back_as_given_or_are_refused_alike(
    people: People, tags: dict[str, str | None], text: str
) -> None:
    name = _shared_model(people)
    before = people.admin.catalogue.get_version(name, 1)
    nul = "contains a NUL character, which cannot be stored"  # PostgreSQL cannot: refused alike
    if any("\x00" in f"{key}{value or ''}" for key, value in tags.items()):
        with pytest.raises(MlshipError, match=f"^the tag .* {nul}$"):
            people.alice.registry.tag(name, 1, tags)
        expected = before.tags
    else:
        people.alice.registry.tag(name, 1, tags)
        [*_, tagged] = people.vera.registry.history(name)
        assert (tagged.action, tagged.details) == ("tagged", {"tags": tags})
        expected = {k: v for k, v in {**before.tags, **tags}.items() if v is not None}
    if "\x00" in text:
        with pytest.raises(MlshipError, match=f"^the description {nul}$"):
            people.alice.registry.describe(name, 1, text)
    else:
        people.alice.registry.describe(name, 1, text)
    found = people.admin.catalogue.get_version(name, 1)
    assert found.tags == expected
    assert found.description == (before.description if "\x00" in text else text)


def _shared_model(people: People) -> str:
    """One model for the generated examples of a backend (registering one each would be slow)."""
    found: str | None = getattr(people, "fuzzed", None)
    if found is None:
        found = register_model(people.alice, versions=1)
        people.fuzzed = found  # type: ignore[attr-defined]
    return found
