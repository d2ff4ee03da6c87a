"""The audit log: every committed change leaves one entry, in its own transaction, that nothing
can edit; a rolled-back change leaves none."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from mlship.config import Settings
from mlship.errors import MlshipError
from mlship.security.users import SqlUsers
from mlship.store.audit import Actor, acting
from mlship.workspace import Workspace
from tests.services import create_database


def test_changes_are_attributed_to_the_local_user_and_command(workspace: Workspace) -> None:
    workspace.users.add("bob", "viewer")
    workspace.users.set_disabled("bob", True)
    entries = workspace.audit.list()
    assert [e.user for e in entries] == ["tester", "tester"]
    assert entries[0].origin.startswith("local ") and entries[0].outcome == "ok"
    assert entries[0].changes == {"users": {"update": {"1": {"disabled": [False, True]}}}}
    assert entries[1].changes == {"users": {"inserted": 1, "insert": ["1"]}}


def test_the_actor_of_a_request_wins_over_the_default(workspace: Workspace) -> None:
    with acting(Actor("carol", "http 10.0.0.7", "POST /api/v1/users", "admin", "r1")):
        added = workspace.users.add("dave", "scientist")
    assert added.created_by == "carol"  # the request's user creates, not the settings' one
    (entry,) = workspace.audit.list()
    assert (entry.user, entry.role, entry.origin, entry.action, entry.request_id) == (
        "carol", "admin", "http 10.0.0.7", "POST /api/v1/users", "r1"
    )  # fmt: skip


def test_a_failed_change_leaves_no_entry_and_reads_leave_none(workspace: Workspace) -> None:
    workspace.users.add("erin", "viewer")
    with pytest.raises(MlshipError):
        workspace.users.add("erin", "viewer")
    workspace.users.all()
    token = workspace.users.create_token("erin", "cli")
    users = SqlUsers(workspace.metadata, "tester")
    assert users.authenticate(token.secret) is not None  # writes last_used_at
    assert [sorted(e.changes) for e in workspace.audit.list()] == [["tokens"], ["users"]]


def _refuses_updates_and_deletes(workspace: Workspace) -> None:
    workspace.users.add("frank", "viewer")
    engine = workspace.metadata.engine
    statements = ("UPDATE audit_log SET \"user\" = 'x'", "DELETE FROM audit_log")
    for statement in statements:
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as c:
            c.execute(sa.text(statement))
    assert len(workspace.audit.list()) == 1


def test_the_table_refuses_updates_and_deletes(workspace: Workspace) -> None:
    _refuses_updates_and_deletes(workspace)


def test_the_table_refuses_updates_and_deletes_on_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    database = create_database(postgres_url, "mlship_audit_append_only")
    workspace = Workspace.open(Settings(home=tmp_path / "ws", database_url=database, user="t"))
    try:
        assert workspace.metadata.engine.dialect.name == "postgresql"
        _refuses_updates_and_deletes(workspace)
    finally:
        workspace.close()


def test_filters(workspace: Workspace) -> None:
    workspace.users.add("gina", "viewer")
    workspace.users.create_token("gina", "cli")
    assert len(workspace.audit.list(table="tokens")) == 1
    assert workspace.audit.list(user="nobody") == []
    assert len(workspace.audit.list(limit=1)) == 1
