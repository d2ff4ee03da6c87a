"""Users and tokens behave the same on every backend: SQLite, PostgreSQL, and a server on each.

Results are entities without any secret's hash, times are aware UTC, refusals carry the same
message everywhere, and who created a user is the acting user (the workspace's locally, the
token's on a server), never an argument. Roles differ legitimately: a local store has none (the
settings' user manages users, as on the server's own host), a server refuses non-admins with 403.
"""

from __future__ import annotations

import re
from dataclasses import fields
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlship.errors import MlshipError, NotFoundError
from mlship.store import entities
from mlship.store.accounts import ROLES
from tests.backends import Backend, unique
from tests.contract import People, is_utc

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", "postgresql", "http-sqlite", "http-postgresql"], indirect=True
)


@pytest.fixture
def people(backend: Backend) -> People:
    return People.of(backend)


def test_add_gives_the_user_created_by_the_acting_user(people: People) -> None:
    name = unique("dana")
    added = people.admin.users.add(name, "scientist")
    assert isinstance(added, entities.User)
    assert (added.name, added.role, added.disabled, added.created_by) == (
        name,
        "scientist",
        False,
        "admin",
    )
    assert is_utc(added.created_at)
    assert name in [u.name for u in people.admin.users.all()]


def test_add_refuses_duplicates_bad_names_and_unknown_roles(people: People) -> None:
    name = unique("erin")
    people.admin.users.add(name, "viewer")
    with pytest.raises(MlshipError, match=f"^user '{name}' already exists$"):
        people.admin.users.add(name, "viewer")
    with pytest.raises(MlshipError, match=r"^user name 'no spaces': letters, digits and \. _ @ -"):
        people.admin.users.add("no spaces", "viewer")
    with pytest.raises(
        MlshipError, match=r"^unknown role 'boss'; expected one of viewer, scientist"
    ):
        people.admin.users.add(unique("fred"), "boss")


def test_all_lists_users_by_name_with_their_tokens_and_no_secrets(people: People) -> None:
    name = unique("gail")
    people.admin.users.add(name, "reviewer")
    made = people.admin.users.create_token(name, "laptop")
    found = people.admin.users.all()
    assert [u.name for u in found] == sorted(u.name for u in found)
    [user] = [u for u in found if u.name == name]
    assert [(t.id, t.name, t.prefix) for t in user.tokens] == [
        (made.id, "laptop", made.secret[:12])
    ]
    assert "secret_sha256" not in {f.name for f in fields(entities.Token)}


def test_tokens_are_created_listed_and_revoked(people: People) -> None:
    name = unique("hank")
    people.admin.users.add(name, "scientist")
    forever = people.admin.users.create_token(name, "ci")
    brief = people.admin.users.create_token(name, "demo", timedelta(hours=1))
    assert forever.secret.startswith("mls_") and len(forever.secret) == 47
    assert (forever.user, forever.name, forever.expires_at) == (name, "ci", None)
    assert brief.expires_at is not None and is_utc(brief.expires_at)

    listed = people.admin.users.tokens(name)
    assert [t.id for t in listed] == [forever.id, brief.id]
    assert all(t.user is not None and t.user.name == name for t in listed)
    assert all(is_utc(t.created_at) and t.revoked_at is None for t in listed)
    assert {forever.id, brief.id} <= {t.id for t in people.admin.users.tokens()}

    revoked = people.admin.users.revoke(forever.id)
    assert isinstance(revoked, entities.Token) and is_utc(revoked.revoked_at)
    again = people.admin.users.revoke(forever.id)  # revoking twice changes nothing
    assert again.revoked_at == revoked.revoked_at


def test_token_refusals_say_what_is_wrong(people: People) -> None:
    name = unique("iris")
    people.admin.users.add(name, "viewer")
    with pytest.raises(MlshipError, match=r"^a token must expire in the future$"):
        people.admin.users.create_token(name, "x", timedelta(seconds=-5))
    for bad in ("", "n" * 201, "a\x00b"):
        with pytest.raises(MlshipError, match=r"^token name .*: 1 to 200 characters, no NUL$"):
            people.admin.users.create_token(name, bad)
    with pytest.raises(NotFoundError, match=r"^no user named 'nobody-at-all' \(users: "):
        people.admin.users.create_token("nobody-at-all", "x")
    with pytest.raises(NotFoundError, match=r"^no user named 'nobody-at-all'"):
        people.admin.users.tokens("nobody-at-all")
    with pytest.raises(
        NotFoundError, match=r"^no token #987654 \(`mlship tokens list` shows them\)$"
    ):
        people.admin.users.revoke(987654)


def test_a_disabled_user_gets_no_new_token_until_enabled(people: People) -> None:
    name = unique("jack")
    people.admin.users.add(name, "viewer")
    disabled = people.admin.users.set_disabled(name, True)
    assert isinstance(disabled, entities.User) and disabled.disabled
    assert people.admin.users.set_disabled(name, True).disabled  # idempotent
    with pytest.raises(MlshipError, match=f"^user '{name}' is disabled$"):
        people.admin.users.create_token(name, "x")
    assert not people.admin.users.set_disabled(name, False).disabled
    assert people.admin.users.create_token(name, "x").user == name
    with pytest.raises(NotFoundError, match=r"^no user named 'nobody-at-all'"):
        people.admin.users.set_disabled("nobody-at-all", True)


def test_only_an_admin_manages_users_on_a_server_while_a_local_store_has_no_roles(
    people: People, backend: Backend
) -> None:
    name = unique("kate")
    if backend.remote:
        refused = r"^.* refused the request: alice is a scientist; this needs the admin role"
        with pytest.raises(MlshipError, match=refused):
            people.alice.users.add(name, "admin")
        with pytest.raises(MlshipError, match=refused):
            people.alice.users.all()
        assert name not in [u.name for u in people.admin.users.all()]
    else:  # whoever can open the database manages users; the settings' user is the creator
        assert people.alice.users.add(name, "viewer").created_by == "alice"


@settings(
    derandomize=True,
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    name=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12)
    | st.from_regex(r"[a-z][a-z0-9._@-]{0,10}", fullmatch=True),
    role=st.sampled_from(ROLES) | st.text(max_size=8),
)
@example(name="carl\n", role="viewer")  # ``$`` alone would let a final newline through
def test_generated_names_and_roles_are_added_or_refused_alike(
    people: People, name: str, role: str
) -> None:
    known = {u.name for u in people.admin.users.all()}
    valid = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,199}", name) is not None
    if not valid:
        with pytest.raises(MlshipError, match=r"^user name .*: letters, digits and \. _ @ -"):
            people.admin.users.add(name, role)
    elif role not in ROLES:
        with pytest.raises(MlshipError, match=r"^unknown role .*; expected one of viewer"):
            people.admin.users.add(name, role)
    elif name in known:
        with pytest.raises(MlshipError, match=f"^user {re.escape(repr(name))} already exists$"):
            people.admin.users.add(name, role)
    else:
        added = people.admin.users.add(name, role)
        assert (added.name, added.role) == (name, role)
        assert name in {u.name for u in people.admin.users.all()}
