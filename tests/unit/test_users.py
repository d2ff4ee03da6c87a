"""Users and API tokens: a token is shown once and stored only as a hash; expired, revoked and
disabled-user tokens stop working; the command line manages both."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mlship.errors import MlshipError, NotFoundError
from mlship.security.users import SqlUsers, token_digest
from mlship.store.tables import Token, utcnow
from mlship.workspace import Workspace
from tests.conftest import invoke_cli

TOKEN = re.compile(r"mls_[A-Za-z0-9_-]{43}")


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def test_a_token_authenticates_its_user_and_only_its_hash_is_kept(workspace: Workspace) -> None:
    users = SqlUsers(workspace.metadata, "admin")
    users.add("alice", "reviewer")
    token = users.create_token("alice", "laptop")
    assert TOKEN.fullmatch(token.secret)
    identity = users.authenticate(token.secret)
    assert identity is not None and (identity.user, identity.role) == ("alice", "reviewer")
    with workspace.metadata.transaction() as session:
        stored = session.scalars(select(Token)).one()
        assert stored.secret_sha256 == token_digest(token.secret)
        assert stored.prefix == token.secret[:12] and stored.last_used_at is not None
    for path in files_under(workspace.settings.home_resolved):  # the database included
        assert token.secret.encode() not in path.read_bytes(), path
    assert users.authenticate(token.secret[:-1] + "x") is None
    assert users.authenticate("not-a-token") is None


def test_expired_revoked_and_disabled_tokens_stop_working(workspace: Workspace) -> None:
    users = SqlUsers(workspace.metadata, "admin")
    users.add("bob", "scientist")
    short = users.create_token("bob", "ci", timedelta(hours=1))
    assert users.authenticate(short.secret) is not None
    assert users.authenticate(short.secret, now=utcnow() + timedelta(hours=2)) is None
    kept = users.create_token("bob", "laptop")
    users.revoke(kept.id)
    assert users.authenticate(kept.secret) is None
    other = users.create_token("bob", "notebook")
    users.set_disabled("bob", True)
    assert users.authenticate(other.secret) is None
    with pytest.raises(MlshipError, match="user 'bob' is disabled"):
        users.create_token("bob", "more")
    users.set_disabled("bob", False)
    assert users.authenticate(other.secret) is not None
    with pytest.raises(NotFoundError, match="no token #99"):
        users.revoke(99)


def test_bad_users_and_roles_are_refused(workspace: Workspace) -> None:
    users = SqlUsers(workspace.metadata, "admin")
    with pytest.raises(MlshipError, match="unknown role 'owner'; expected one of viewer, "):
        users.add("carol", "owner")
    with pytest.raises(MlshipError, match="user name 'carol smith'"):
        users.add("carol smith", "viewer")
    users.add("carol", "viewer")
    with pytest.raises(MlshipError, match="user 'carol' already exists"):
        users.add("carol", "admin")
    with pytest.raises(NotFoundError, match=r"no user named 'dave' \(users: carol\)"):
        users.create_token("dave", "x")
    with pytest.raises(MlshipError, match="must expire in the future"):
        users.create_token("carol", "x", timedelta(0))


def test_the_command_line_manages_users_and_tokens(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    invoke_cli("users", "add", "alice", "--role", "admin", home=home)
    created = invoke_cli("tokens", "create", "alice", "--name", "ci", "--expires", "30d", home=home)
    (secret,) = TOKEN.findall(created.stdout)
    assert "Shown this once" in created.stdout
    listed = invoke_cli("tokens", "list", home=home).stdout
    assert secret[:12] in listed and secret not in listed and "live" in listed
    users = invoke_cli("users", "list", home=home).stdout
    assert "alice" in users and "admin" in users and "active" in users
    invoke_cli("tokens", "revoke", "1", home=home)
    assert "revoked" in invoke_cli("tokens", "list", "--user", "alice", home=home).stdout
    invoke_cli("users", "disable", "alice", home=home)
    assert "disabled" in invoke_cli("users", "list", home=home).stdout
    bad = invoke_cli("users", "add", "bob", "--role", "owner", home=home, check=False)
    assert bad.returncode == 1 and "unknown role 'owner'" in bad.stderr
    bad = invoke_cli("tokens", "create", "alice", "--expires", "soon", home=home, check=False)
    assert bad.returncode == 1 and "--expires: expected a duration" in bad.stderr
