"""The audit log reads the same on every backend: SQLite, PostgreSQL, and a server on each.

Newest entries first, filters by user, action, table, time and outcome, a limit, aware UTC
times. Two legitimate differences, said where they matter: an entry's ``origin`` and ``action``
name where the change came from (``local HOST`` and the command line here, ``http ADDRESS`` and
the request on a server), and only a server refuses requests, so only a server has ``denied``
entries; reading the log takes an admin there, while a local store has no roles.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mlship.errors import MlshipError
from mlship.store import entities
from tests.backends import Backend, unique
from tests.contract import People, is_utc, register_model

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", "postgresql", "http-sqlite", "http-postgresql"], indirect=True
)


@pytest.fixture
def people(backend: Backend) -> People:
    return People.of(backend)


def test_a_change_is_logged_with_its_user_and_tables(people: People, backend: Backend) -> None:
    name = register_model(people.alice, versions=1)
    people.alice.registry.set_owner(name, "bob")
    [entry] = people.admin.audit.list(user="alice", table="model_events", limit=1)
    assert isinstance(entry, entities.AuditEntry)
    assert (entry.user, entry.outcome) == ("alice", "ok")
    assert is_utc(entry.at)
    assert entry.changes["registered_models"]["update"]
    if backend.remote:  # where it came from: the request on a server, the command line here
        assert entry.origin.startswith("http ") and entry.role == "scientist"
        assert entry.action.startswith("POST /api/v1/models/")
    else:
        assert entry.origin.startswith("local ") and entry.role is None


def test_entries_come_newest_first_and_the_filters_combine(people: People) -> None:
    for _ in range(3):
        people.admin.users.add(unique("log"), "viewer")
    entries = people.admin.audit.list(user="admin", table="users", limit=3)
    assert len(entries) == 3
    assert [e.id for e in entries] == sorted((e.id for e in entries), reverse=True)
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)
    assert all("users" in e.changes and e.user == "admin" for e in entries)
    assert len(people.admin.audit.list(user="admin", limit=2)) == 2
    since = entries[-1].at
    newer = people.admin.audit.list(since=since, table="users", user="admin", limit=1000)
    assert {e.id for e in entries} <= {e.id for e in newer}  # ``since`` is inclusive
    assert all(e.at >= since for e in newer)
    later = datetime.now(UTC) + timedelta(days=1)
    assert people.admin.audit.list(since=later) == []
    assert people.admin.audit.list(user="nobody-ever") == []
    assert people.admin.audit.list(outcome="ok", limit=5)
    assert all(e.outcome == "ok" for e in people.admin.audit.list(outcome="ok", limit=5))
    assert people.admin.audit.list(action="%_no_such_action_%") == []  # a substring, escaped


def test_a_since_in_another_zone_means_the_same_instant(people: People) -> None:
    people.admin.users.add(unique("zone"), "viewer")
    [entry] = people.admin.audit.list(user="admin", table="users", limit=1)
    for hours in (2, -5):
        since = entry.at.astimezone(timezone(timedelta(hours=hours)))
        found = people.admin.audit.list(since=since, user="admin", table="users", limit=1000)
        assert entry.id in {e.id for e in found}
        later = people.admin.audit.list(since=since + timedelta(seconds=1), user="admin")
        assert entry.id not in {e.id for e in later}


def test_refusals_are_logged_on_a_server_and_reading_takes_an_admin(
    people: People, backend: Backend
) -> None:
    if not backend.remote:  # a local store refuses nobody and has no roles to check
        assert people.alice.audit.list(limit=1)
        return
    with pytest.raises(MlshipError, match="alice is a scientist; this needs the admin role"):
        people.alice.users.add(unique("nope"), "viewer")
    [denied] = people.admin.audit.list(user="alice", outcome="denied", limit=1)
    assert denied.changes == {
        "reason": "403: alice is a scientist; this needs the admin role or above"
    }
    with pytest.raises(MlshipError, match="alice is a scientist; this needs the admin role"):
        people.alice.audit.list(limit=1)
